"""A total over calls is unknown (NaN; JSON null; "n/a" on screen) as soon as one call sent to a
model without a price has an unknown cost -- never the sum of the priced part. Cache hits cost 0
(no request was billed), so they must not turn an unpriced total into $0."""

from __future__ import annotations

import math

import pandas as pd

from trials.llm.usage import total_cost
from trials.run.progress import Progress
from trials.run.rundir import RunDir


def _calls(costs: list[float], cached: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"purpose": "agent", "backend": "openai", "model": "fake", "tokens_in": 10,
                         "tokens_out": 5, "cached": cached, "retries": 0, "cost_usd": costs})


def test_total_cost_is_unknown_with_any_unknown_call():
    assert math.isnan(total_cost(pd.Series([0.0, math.nan])))  # a cache hit + an unpriced request
    assert total_cost(pd.Series([0.0, 0.25, 0.5])) == 0.75
    assert total_cost(pd.Series([], dtype=float)) == 0.0


def test_manifest_totals_of_a_resume_with_cached_calls_of_an_unpriced_model(tmp_path):
    # was: cost_usd 0.0 in manifest.json ("$0.0000"): sum(min_count=1) skipped the NaN costs
    run = RunDir(tmp_path)
    run.write_failed_calls("control", 0, _calls([math.nan, math.nan], [False, False]), attempt="a")
    run.write_failed_calls("control", 0, _calls([0.0, 0.0], [True, True]), attempt="b")
    assert run.collect([])["cost_usd"] is None


def test_progress_line_says_n_a_for_an_unpriced_model(capsys):
    # was: "$0.0000" for every job of a model without a price
    progress = Progress(total=2)
    summary = {"arm": "a", "replicate": 0, "session": "a-0", "status": "done", "calls": 2, "tokens_in": 1,
               "tokens_out": 1, "duration_s": 0.1, "cost_usd": 0.5}
    progress.update(summary)
    assert capsys.readouterr().err.rstrip().endswith("$0.5000")
    progress.update({**summary, "session": "a-1", "cost_usd": math.nan})
    assert capsys.readouterr().err.rstrip().endswith("tokens, n/a")
    progress.close()
