"""A total over calls is unknown (NaN; JSON null; "n/a" on screen) as soon as one call sent to a
model without a price has an unknown cost -- never the sum of the priced part. Cache hits cost 0
(no request was billed), so they must not turn an unpriced total into $0."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from trials.llm.usage import token_totals, total_cost, total_tokens
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


def test_a_call_cut_off_mid_request_has_unknown_tokens_and_the_totals_say_so(tmp_path):
    # was: tokens_in/tokens_out 0 for the cut-off call (int64 columns) and a silent undercount
    run = RunDir(tmp_path)
    journal = run.calls_journal("control", 0, "a")
    journal.parent.mkdir(parents=True)
    done = {"call": 1, "purpose": "action", "backend": "openai", "model": "fake", "tokens_in": 100,
            "tokens_out": 20, "latency_s": 0.5, "cached": False, "retries": 0, "cost_usd": 0.1,
            "prompt_chars": 400, "error": ""}
    started = [{"started": n, "purpose": "action", "backend": "openai", "model": "fake", "prompt_chars": 400}
               for n in (1, 2)]
    journal.write_text("\n".join(json.dumps(x) for x in (started[0], done, started[1])) + "\n")
    assert run.recover_calls() == {("control", 0): 2}
    calls = pd.read_parquet(next(tmp_path.glob("jobs/control/failed-calls/*.parquet")))
    cut = calls.loc[calls["error"] == "interrupted mid-call"]
    assert len(cut) == 1 and cut["tokens_in"].isna().all() and cut["tokens_out"].isna().all()
    assert calls.loc[calls["error"] == "", "tokens_in"].tolist() == [100]
    totals = run.collect([])
    assert totals["tokens_in"] is None and totals["tokens_out"] is None  # unknown, never 100 / 20
    assert "tokens unknown for 1 of 2 call(s)" in totals["tokens_note"] and "100 in, 20 out" in totals["tokens_note"]
    assert pd.read_parquet(tmp_path / "llm_calls.parquet")["tokens_in"].isna().sum() == 1


def test_token_totals_are_unknown_with_any_unknown_call():
    assert total_tokens(pd.Series([3, None], dtype="Int64")) is None
    assert total_tokens(pd.Series([3, 4], dtype="Int64")) == 7
    assert total_tokens(pd.Series([], dtype="Int64")) == 0
    known = token_totals(pd.DataFrame({"tokens_in": [1, 2], "tokens_out": [3, 4]}))
    assert known == {"tokens_in": 3, "tokens_out": 7, "tokens_note": "", "unknown_billing_attempts": 0, "billing_note": ""}


def test_progress_says_tokens_n_a_after_a_job_with_unknown_tokens(capsys):
    progress = Progress(total=2)
    summary = {"arm": "a", "replicate": 0, "session": "a-0", "status": "done", "calls": 2, "tokens_in": 10,
               "tokens_out": 5, "duration_s": 0.1, "cost_usd": 0.5}
    progress.update(summary)
    assert "15 tokens" in capsys.readouterr().err
    progress.update({**summary, "session": "a-1", "status": "failed", "tokens_in": None, "tokens_out": None})
    assert "n/a tokens" in capsys.readouterr().err
    progress.close()


def test_totals_state_the_attempts_that_may_have_been_billed(tmp_path):
    """Timed-out / malformed attempts were a silent undercount; the totals now say how many."""
    calls = _calls([0.001, 0.002], [False, False]).assign(unknown_billing_attempts=[2, 1])
    t = token_totals(calls)
    assert t["unknown_billing_attempts"] == 3
    assert t["billing_note"] == ("3 attempt(s) may have been billed (timed out / malformed reply); "
                                 "not included in the tokens and cost")
    assert token_totals(_calls([0.001], [False]))["billing_note"] == ""  # a table without the column: none
    run = RunDir(tmp_path)
    run.write_failed_calls("control", 0, calls, attempt="a")
    totals = run.collect([])
    assert totals["unknown_billing_attempts"] == 3 and "3 attempt(s) may have been billed" in totals["billing_note"]
    assert totals["cost_usd"] == 0.003  # the known cost, with the note beside it
    assert pd.read_parquet(tmp_path / "llm_calls.parquet")["unknown_billing_attempts"].tolist() == [2, 1]


def test_a_job_of_unknown_cost_still_counts_against_the_budget():
    """An endpoint without `usage` gives NaN costs; the cap once ignored them and never stopped."""
    from trials.run.budget import Budget

    b = Budget(1.0, per_job_estimate=0.4)
    assert b.try_reserve() and b.try_reserve() and not b.try_reserve()
    b.settle(math.nan)
    b.settle(math.nan)
    assert b.spent == 0.8 and b.reserved == 0.0 and not b.try_reserve()  # its estimate stands in for it


def test_a_job_of_partly_unknown_cost_counts_the_larger_of_known_part_and_estimate(tmp_path):
    """A job with a call of unknown cost counts max(known part, estimate), running or on resume;
    possibly-billed attempts make a job's cost unknown too."""
    from trials.run.budget import Budget

    b = Budget(10.0, per_job_estimate=0.4)
    assert b.try_reserve() and b.try_reserve() and b.try_reserve()
    b.settle(math.nan, known=1.5)  # the known part exceeds the estimate: it counts
    b.settle(math.nan, known=0.1)  # the estimate exceeds the known part
    b.settle(0.2, known=0.2, unknown_billing=1)  # known cost, but an attempt may have been billed
    assert b.spent == pytest.approx(1.5 + 0.4 + 0.4)
    run = RunDir(tmp_path)
    calls = _calls([0.001, math.nan], [False, False])
    run.write_failed_calls("control", 0, calls, attempt="a")
    run.write_failed_calls("control", 1, _calls([0.3], [False]), attempt="b")
    assert sorted(run.attempt_costs()) == [(0.001, True), (0.3, False)]
    r = Budget(1.0, per_job_estimate=0.2)
    line = r.count_earlier(run.attempt_costs())
    # the mean of known-cost jobs (0.3) is the estimate, as while running
    assert r.spent == pytest.approx(0.3 + 0.3) and "1 of unknown cost" in line and "$0.6000" in line
