"""analyze() tables and the `trials analyze` entry point (analysis.cli.main)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import analyze, load_table
from analysis import power as pw
from analysis.cli import main
from analysis.simulate import clustered_table

PAPER = Path(__file__).resolve().parents[1].parent / "shared" / "tinytroupe-data" / "paper_results"
B22 = PAPER / "brainstorming_and_focus_group_quantitative_experimentation_2.2b.json"
OUT_FILES = {"effects.csv", "descriptives.csv", "missing.csv", "power.csv", "tradeoffs.txt", "summary.json"}


def three_arm_run(tmp_path: Path) -> Path:
    """A run directory: 3 arms x 6 paired replicates, an agent-level and a session-level metric."""
    rng = np.random.default_rng(0)
    frames = []
    for arm, shift in (("control", 0.0), ("warm", 0.8), ("cold", -0.5)):
        agent = clustered_table(rng, n_sessions=6, cluster_size=4, effect=shift)
        agent = agent[agent.arm == "treatment"].assign(arm=arm, session=lambda d: d["session"].str.replace(
            "treatment", arm))
        sess = agent.groupby(["replicate", "session"], as_index=False)["value"].sum().assign(
            # sums of real-valued scores: scale 'real' (a 'count' must hold non-negative integers)
            arm=arm, agent="", metric="ideas_qty", scale="real", level="session", experiment="sim",
            judge_model="", missing_reason="")
        frames += [agent, sess]
    df = pd.concat(frames, ignore_index=True)
    df.loc[(df.arm == "cold") & (df.metric == "adherence") & (df.replicate == 2) & (df.agent == "p0"),
           ["value", "missing_reason"]] = [np.nan, "judge_parse_error"]
    df.to_parquet(tmp_path / "metrics.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"schema_version": 1, "control": "control", "arms": ["control", "warm", "cold"], "paired": True,
         "status": "complete"}))
    return tmp_path


@pytest.mark.skipif(not B22.exists(), reason="../shared not present")
def test_analyze_tinytroupe_tradeoff_line_and_files(tmp_path):
    res = analyze(load_table(B22), n_boot=300, n_perm=500)
    line = res.tradeoffs["Treatment"][0]
    assert "ideas_qty +5.33 [+3.67, +7.00]*" in line and "Persona Adherence -0.60 [-1.04, -0.17]*" in line
    assert line.index("ideas_qty") < line.index("Persona Adherence")  # ups before downs
    assert res.tradeoffs["Treatment"][1].startswith("unclear: ") and "Fluency -0.33" in res.tradeoffs["Treatment"][1]
    res.write(tmp_path)
    assert OUT_FILES <= {p.name for p in tmp_path.iterdir()}
    text = (tmp_path / "tradeoffs.txt").read_text().splitlines()
    assert text[0] == "Treatment:" and text[1] == "  " + line and text[2].startswith("  unclear: ")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["family"].startswith("6 tests = 6 metrics x 1 comparison")
    assert any("session ids were lost" in n for n in summary["notes"])
    ideas = next(h for h in summary["headline"]["Treatment"] if h["metric"] == "ideas_qty")
    assert ideas["diff"] == pytest.approx(5.3333, abs=1e-4) and ideas["p_method"].startswith("Welch t-test")


def test_analyze_paired_three_arm_run(tmp_path):
    run = three_arm_run(tmp_path)
    res = analyze(load_table(run), n_boot=200, n_perm=500)
    eff = res.effects
    assert len(eff) == 4 and set(eff["treatment"]) == {"warm", "cold"}
    assert eff["p_method"].str.startswith("paired t-test").all()
    assert (eff["n_pairs"] == 6).all()
    cold_adh = eff[(eff.treatment == "cold") & (eff.metric == "adherence")].iloc[0]
    assert cold_adh["missing_treatment"] == 1 and "missing values" in cold_adh["notes"]
    assert np.isfinite(cold_adh["icc"]) and np.isfinite(cold_adh["p_mixed"])
    # 6 sessions per arm: no cluster-bootstrap p or CI (they need 8), and the note says so
    assert np.isnan(cold_adh["p_cluster_boot"]) and "cluster bootstrap needs >= 8 sessions" in cold_adh["notes"]
    # descriptives equal a direct pandas computation
    df = load_table(run).df
    direct = df.groupby(["arm", "metric"])["value"].agg(["count", "mean", "std"])
    d = res.descriptives.set_index(["arm", "metric"])
    assert d.loc[direct.index, "n"].tolist() == direct["count"].tolist()
    assert np.allclose(d.loc[direct.index, "mean"], direct["mean"]) and np.allclose(d.loc[direct.index, "sd"], direct["std"])
    miss = res.missing
    cols = ["arm", "metric", "reason", "count", "share"]
    assert miss.loc[miss["count"] > 0, cols].to_dict("records") == [
        {"arm": "cold", "metric": "adherence", "reason": "judge_parse_error", "count": 1, "share": 1 / 24}]
    assert len(miss) == 6  # every arm x metric cell is listed, with its missing share
    cold = miss[(miss.arm == "cold") & (miss.metric == "adherence")].iloc[0]
    assert cold["share_diff"] == pytest.approx(1 / 24) and not cold["differential"]  # 1 of 24: no flag
    # power rows use pairs and the paired SD of differences
    p = res.power.set_index(["metric", "treatment"]).loc[("ideas_qty", "warm")]
    assert p["unit"] == "pairs of replicates" and p["n_this_run"] == 6
    assert p["n_needed"] == pw.replicates_needed(p["observed_effect"], p["sd"], sd_diff=p["sd_diff"])
    assert pw.power_at(6, p["mde_this_run"], p["sd"], sd_diff=p["sd_diff"]) == pytest.approx(0.8, abs=1e-6)


def test_all_pairs_family_and_holm(tmp_path):
    res = analyze(load_table(three_arm_run(tmp_path)), comparisons="all_pairs", n_boot=100, n_perm=200,
                  mixed=False)
    assert len(res.effects) == 6 and "every pair of arms" in res.family
    pairs = set(zip(res.effects["control"], res.effects["treatment"]))
    assert pairs == {("control", "warm"), ("control", "cold"), ("warm", "cold")}
    p = res.effects["p_value"].to_numpy()
    assert (res.effects["p_holm"] >= p - 1e-15).all() and (res.effects["p_holm"] >= res.effects["p_bh"] - 1e-15).all()


def test_cli_run_dir_writes_into_analysis_and_prints_table(tmp_path, capsys):
    run = three_arm_run(tmp_path)
    assert main([str(run), "--n-boot", "1000"]) == 0
    assert OUT_FILES <= {p.name for p in (run / "analysis").iterdir()}
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "metric", "control", "treatment", "diff", "[95%", "CI]", "g", "p", "p_holm", "method"]
    assert "trade-off warm:" in out and "paired t-test" in out
    effects = pd.read_csv(run / "analysis" / "effects.csv")
    assert {"p_value", "p_method", "p_holm", "p_bh", "hedges_g", "cliffs_delta", "diff"} <= set(effects.columns)


def test_cli_csv_default_out_and_control_flag(tmp_path, capsys):
    csv = tmp_path / "my_metrics.csv"
    clustered_table(np.random.default_rng(1)).to_csv(csv, index=False)
    assert main([str(csv), "--control", "treatment", "--n-boot", "1000"]) == 0
    effects = pd.read_csv(tmp_path / "my_metrics_analysis" / "effects.csv")
    assert effects.loc[0, "control"] == "treatment" and effects.loc[0, "treatment"] == "control"


def test_cli_bad_input_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"arm": ["a", "b"], "value": [1, 2]}).to_csv(bad, index=False)
    assert main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) metric" in err and "bad.csv" in err
    assert main([str(tmp_path / "nothing")]) == 2
    assert main([str(bad), "--alpha", "2"]) == 2


def test_single_arm_gives_descriptives_and_no_comparisons(tmp_path, capsys):
    df = clustered_table(np.random.default_rng(5), n_sessions=3)
    csv = tmp_path / "one.csv"
    df[df.arm == "control"].to_csv(csv, index=False)
    assert main([str(csv), "--out", str(tmp_path / "out")]) == 0
    assert "(no comparisons)" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "out" / "descriptives.csv")["n"].tolist() == [15]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert any("only one arm" in n for n in summary["notes"])


@pytest.mark.parametrize("args, words", [
    (["--n-boot", "0"], ["--n-boot", "at least 1000", "got 0"]),
    (["--n-boot", "1"], ["--n-boot", "at least 1000", "got 1"]),
    (["--n-boot", "999"], ["--n-boot", "at least 1000"]),
    (["--equivalence-margin", "inf"], ["--equivalence-margin", "finite"]),
    (["--equivalence-margin=-inf"], ["--equivalence-margin", "finite"]),
    (["--equivalence-margin", "nan"], ["--equivalence-margin", "finite"]),
    (["--equivalence-margin", "0"], ["--equivalence-margin", "> 0"]),
])
def test_cli_rejects_bad_n_boot_and_margin_with_exit_2(tmp_path, capsys, args, words):
    csv = tmp_path / "m.csv"
    clustered_table(np.random.default_rng(1)).to_csv(csv, index=False)
    assert main([str(csv), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and all(w in err for w in words), err
    assert not (tmp_path / "out").exists()
