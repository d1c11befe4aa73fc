"""`trials export`: a blank metric value keeps its missing reason beside it; the format follows
--to or the --out extension and a mismatch is refused (the tester's cases)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from runner_support import run

from trials.cli import main


@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export") / "run"
    assert run(root, "experiment=market_research", "run.replicates=1", "run.report=false", "run.analyze=false") == 0
    return root


def test_a_missing_metric_value_is_exported_with_its_reason_and_detail(market_run, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(market_run, root)
    metrics = pd.read_parquet(root / "metrics.parquet")
    events = pd.read_json(root / "transcript.jsonl", lines=True)
    acting = events[events["kind"] == "action"].iloc[0]
    hit = (metrics["metric"] == "vote") & (metrics["agent"] == acting["agent"]) & (metrics["session"] == acting["session"])
    assert hit.sum() == 1
    # the tester's run: 18 blank metric_vote cells that lost their "no answer"
    metrics.loc[hit, ["value", "missing_reason", "missing_detail"]] = [float("nan"), "unparseable", "two answers: 'Vote: 3 or 4'"]
    metrics.to_parquet(root / "metrics.parquet", index=False)
    assert main(["export", str(root), "--to", "parquet"]) == 0
    table = pd.read_parquet(root / "export" / "actions.parquet")
    cols = list(table.columns)
    assert cols.index("metric_vote_missing_reason") == cols.index("metric_vote") + 1
    assert cols.index("metric_vote_missing_detail") == cols.index("metric_vote") + 2
    assert "metric_positive_share_missing_reason" in cols  # session-level metrics too
    mine = table[(table["agent"] == acting["agent"]) & (table["session"] == acting["session"])]
    assert mine["metric_vote"].isna().all() and (mine["metric_vote_missing_reason"] == "unparseable").all()
    assert (mine["metric_vote_missing_detail"] == "two answers: 'Vote: 3 or 4'").all()
    others = table.drop(mine.index)
    assert (others.loc[others["metric_vote"].notna(), "metric_vote_missing_reason"] == "").all()


@pytest.mark.parametrize("args, fmt, words", [
    (["--to", "csv", "--out", "x.parquet"], None, "--out x.parquet does not end in .csv (--to csv)"),
    (["--out", "x.txt"], None, "--out x.txt: cannot tell the format from its extension"),
    (["--out", "x.parquet"], "parquet", ""),
    (["--out", "x.jsonl"], "jsonl", ""),
    (["--to", "csv", "--out", "x.csv"], "csv", ""),
])
def test_the_format_follows_the_out_extension_and_a_mismatch_is_refused(market_run, tmp_path, monkeypatch,
                                                                         capsys, args, fmt, words):
    monkeypatch.chdir(tmp_path)
    code = main(["export", str(market_run), *args])
    out = tmp_path / args[-1]
    if fmt is None:
        assert code == 2 and words in capsys.readouterr().err and not out.exists()
    else:
        assert code == 0
        table = (pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out) if fmt == "parquet"
                 else pd.read_json(out, lines=True))
        assert len(table) > 0 and "metric_vote" in table.columns


@pytest.mark.parametrize("suffix", ["_missing_reason", "_missing_detail"])
def test_metric_names_whose_columns_clash_are_refused_not_overwritten(market_run, tmp_path, capsys, suffix):
    """Was: a metric `vote_missing_reason` beside `vote` exported one column `metric_vote_missing_reason`
    holding only one of the two (a value silently lost); now exit 2 naming both metrics."""
    root = tmp_path / "run"
    shutil.copytree(market_run, root)
    metrics = pd.read_parquet(root / "metrics.parquet")
    extra = metrics[metrics["metric"] == "vote"].assign(metric=f"vote{suffix}", value=7.0)
    pd.concat([metrics, extra], ignore_index=True).to_parquet(root / "metrics.parquet", index=False)
    assert main(["export", str(root)]) == 2
    err = capsys.readouterr().err
    assert f"metrics 'vote' and 'vote{suffix}' would both be exported as column 'metric_vote{suffix}'" in err
    assert "fix: rename one of them" in err and not (root / "export").exists()
