"""Tester's report defects: interval labels follow the analysis' alpha; the Holm sentence says what
the counts say; a re-analysis never silently replaces a run's own results; sweep points are named
by the swept overrides; the trade-off chart's absence gives its real reason."""

from __future__ import annotations

import math
import re
import shutil
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

import reports
from reports import figures, fmt
from reports.metricinfo import metric_infos
from reports.summary import _holm
from test_reports_support import make_run_dir


def analysed(run: Path, alpha: float) -> Path:
    import analysis

    analysis.analyze(analysis.load_table(run), control="control", alpha=alpha, n_boot=200, n_perm=500,
                     mixed=False).write(run / "analysis")
    return run


# ---------------------------------------------------------------- 1. labels follow alpha

@pytest.mark.parametrize("alpha, level", [(0.05, "95%"), (0.1, "90%"), (0.01, "99%"), (0.025, "97.5%"),
                                          (None, ""), (float("nan"), "")])
def test_ci_level(alpha, level):
    assert fmt.ci_level(alpha) == level
    assert fmt.ci_name(alpha) == (f"{level} CI" if level else "CI")


def test_analyze_console_header_names_the_level_of_alpha(tmp_path, capsys):
    from analysis.cli import main

    csv = tmp_path / "t.csv"
    rng = np.random.default_rng(3)
    rows = [{"arm": arm, "replicate": r, "session": f"{arm}{r}", "metric": "score",
             "value": rng.normal(5 + (arm == "treat"), 1)} for arm in ("control", "treat") for r in range(12)]
    pd.DataFrame(rows).to_csv(csv, index=False)
    assert main([str(csv), "--alpha", "0.1", "--out", str(tmp_path / "a")]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "diff [90% CI]" in head and "95%" not in head
    # the interval printed under that header really is a 90% one (scipy's Welch interval)
    eff = pd.read_csv(tmp_path / "a" / "effects.csv").iloc[0]
    df = pd.DataFrame(rows)
    t, c = (df.loc[df["arm"] == a, "value"].to_numpy() for a in ("treat", "control"))
    ci = stats.ttest_ind(t, c, equal_var=False).confidence_interval(0.90)
    assert math.isclose(eff["ci_low"], ci.low, rel_tol=1e-9) and math.isclose(eff["ci_high"], ci.high, rel_tol=1e-9)


def test_report_states_the_level_of_the_alpha_used(tmp_path):
    run = analysed(make_run_dir(tmp_path, failed=None), alpha=0.1)
    paths = reports.render(run)
    md, html = paths.markdown.read_text(), paths.html.read_text()
    assert "95%" not in md and "95%" not in html
    summary = md[md.index("## Summary"):md.index("## Overview")]
    assert re.search(r"90% CI [+-]\d", summary)
    assert "Difference [90% CI]" in md and "Hedges' g [90% CI]" in md and "Cliff's delta [90% CI]" in md
    assert "better / worse when the 90% CI excludes 0" in md
    assert "Hedges' g) with their 90% CIs" in md
    assert "Difference [90% CI]" in html


def test_figures_state_the_level_of_alpha(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.append(fig) or path)
    eff = pd.DataFrame({"treatment": ["t", "t"], "metric": ["x", "y"], "hedges_g": [0.4, -0.2],
                        "g_ci_low": [0.1, -0.5], "g_ci_high": [0.7, 0.1], "p_holm": [0.08, 0.5],
                        "diff": [1.0, -0.5], "ci_low": [0.2, -0.9], "ci_high": [1.8, -0.1]})
    figures.forest(eff, ["c", "t"], tmp_path / "f.png", alpha=0.1)
    ax = saved[-1].axes[0]
    assert "90% CI" in ax.get_xlabel() and "p < 0.1" in ax.get_title()
    faces = ax.collections[-1].get_facecolor()  # rows bottom-up: y, then x
    assert faces[0][:3].tolist() == [1.0, 1.0, 1.0]  # y: p_holm 0.5, hollow
    assert faces[1][:3].tolist() != [1.0, 1.0, 1.0]  # x: p_holm 0.08 < alpha 0.1, filled
    figures.tradeoff(eff, ["c", "t"], ("x", "y"), tmp_path / "t.png", alpha=0.1)
    assert saved[-1].axes[0].get_title() == "Trade-off (90% CIs)"
    for fig in saved:
        matplotlib.pyplot.close(fig)


# ---------------------------------------------------------------- 2. the Holm sentence

def _clear(p_holm: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"metric": [f"m{i}" for i in range(len(p_holm))], "p_holm": p_holm})


@pytest.mark.parametrize("p_holm, sentence", [
    ([0.01], "It survives Holm correction (adjusted p < 0.05)."),
    ([0.2], "It does not survive Holm correction (adjusted p < 0.05) across the metric family: treat as tentative."),
    ([0.01, 0.02], "Both survive Holm correction (adjusted p < 0.05)."),
    ([0.2, 0.3], "Neither survives Holm correction (adjusted p < 0.05) across the metric family: treat as tentative."),
    ([0.01, 0.3], "Only m0 survives Holm correction (adjusted p < 0.05)."),
    ([0.01, 0.02, 0.03], "All 3 survive Holm correction (adjusted p < 0.05)."),
    ([0.2, 0.3, 0.4], "None of the 3 survives Holm correction (adjusted p < 0.05) across the metric family: "
                      "treat as tentative."),
    ([0.01, 0.02, 0.4], "Only m0 and m1 survive Holm correction (adjusted p < 0.05)."),
])
def test_holm_sentence_for_every_count(p_holm, sentence):
    clear = _clear(p_holm)
    assert _holm(clear, metric_infos(list(clear["metric"]))) == sentence


def test_holm_sentence_uses_the_analysis_alpha():
    clear = _clear([0.08, 0.2])
    assert _holm(clear, metric_infos(list(clear["metric"])), 0.1) == \
        "Only m0 survives Holm correction (adjusted p < 0.1)."


# ---------------------------------------------------------------- 3. a re-analysis never silently replaces

def test_report_reanalysis_refuses_to_replace_the_runs_own_results(tmp_path, capsys):
    from reports.cli import main

    run = analysed(make_run_dir(tmp_path, failed=None, third_arm=True), alpha=0.05)
    assert main([str(run)]) == 0
    own = {p: (run / p).read_bytes() for p in ("analysis/effects.csv", "analysis/summary.json", "report.html")}
    capsys.readouterr()
    assert main([str(run), "--control", "treatment", "--unpaired"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out DIR" in err and "--force" in err and "--control treatment" in err
    assert {p: (run / p).read_bytes() for p in own} == own  # nothing replaced
    assert main([str(run), "--control", "control"]) == 0  # the saved settings: nothing to replace
    assert (run / "analysis" / "effects.csv").read_bytes() == own["analysis/effects.csv"]
    assert main([str(run), "--control", "treatment", "--force"]) == 0
    assert set(pd.read_csv(run / "analysis" / "effects.csv")["control"]) == {"treatment"}


def test_report_unknown_control_arm_is_named_before_the_replace_advice(tmp_path, capsys):
    """Was: `trials report <run> --control nosuch` (no --out) said "would replace ..., use --force"."""
    from reports.cli import main

    run = analysed(make_run_dir(tmp_path, failed=None, third_arm=True), alpha=0.05)
    own = (run / "analysis" / "effects.csv").read_bytes()
    capsys.readouterr()
    assert main([str(run), "--control", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "control arm 'nosuch' not found; arms are 'control', 'treatment'" in err and "--force" not in err
    assert (run / "analysis" / "effects.csv").read_bytes() == own
    assert main([str(run), "--control", "CONTROL"]) == 0  # matched ignoring case, as the analysis does: the saved settings
    assert (run / "analysis" / "effects.csv").read_bytes() == own


# ---------------------------------------------------------------- 5. why no trade-off chart

def test_no_tradeoff_chart_names_the_real_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [{"arm": arm, "replicate": r, "session": f"{arm}{r}", "agent": f"a{i}", "metric": m,
             "value": 7.0 + (arm == "treat")} for arm in ("control", "treat") for r in range(4) for i in range(3)
            for m in ("score", "rate")]
    pd.DataFrame(rows).to_csv(tmp_path / "const.csv", index=False)
    md = reports.render(tmp_path / "const.csv").markdown.read_text()
    why = ("No trade-off chart: the pair is chosen by standardized effect, and fewer than two metrics have one "
           "(no Hedges' g for score, rate: no within-arm variation (SD 0)).")
    assert md.count(why) == 2  # summary and figures
    assert "fewer than two metrics with effects" not in md


# ---------------------------------------------------------------- 4. sweep points named by the swept overrides

def _sweep_point(src: Path, point: Path, name: str, group_sizes: tuple[int, int], overrides: list[str] | None):
    shutil.copytree(src, point)
    cfg = yaml.safe_load((point / "config.yaml").read_text())
    cfg.setdefault("experiment", {}).update({"name": name, "description": f"the {name} experiment",
                                             "group_size": group_sizes[0],
                                             "population": {"group_size": group_sizes[1]}})
    (point / "config.yaml").write_text(yaml.safe_dump(cfg))
    if overrides is not None:
        (point / ".hydra").mkdir()
        (point / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))


def test_sweep_report_labels_points_by_the_swept_overrides(tmp_path):
    run = analysed(make_run_dir(tmp_path / "src", failed=None), alpha=0.05)
    root = tmp_path / "multirun"
    for name, sizes in (("hello", (4, 10)), ("market", (10, 4))):
        _sweep_point(run, root / name / f"experiment={name},llm=scripted", name, sizes,
                     [f"experiment={name}", "llm=scripted", "run.replicates=2"])
    md = reports.render(root).markdown.read_text()
    assert md.splitlines()[0] == "# Sweep report: experiment"
    assert "| hello | hello/experiment=hello,llm=scripted |" in md and "| market | market/" in md
    assert "group size" not in md and "description" not in md


def test_sweep_labels_without_overrides_never_repeat_a_leaf_name(tmp_path):
    from reports.sweep import short_names

    assert short_names(["experiment.group_size", "experiment.population.group_size", "llm.temperature"]) == {
        "experiment.group_size": "experiment.group_size", "experiment.population.group_size": "population.group_size",
        "llm.temperature": "temperature"}
    run = analysed(make_run_dir(tmp_path / "src", failed=None), alpha=0.05)
    root = tmp_path / "multirun"
    for i, sizes in enumerate(((4, 10), (10, 4))):
        _sweep_point(run, root / str(i), "same", sizes, None)
    md = reports.render(root).markdown.read_text()
    assert "| experiment.group_size=4, population.group_size=10 |" in md


def test_sweep_figure_fits_long_labels_without_a_layout_warning(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.append(fig) or path)
    param = " / ".join(f"experiment.section_{i}.some_long_setting_name" for i in range(27))
    pts = pd.DataFrame({"param": [f"value number {i} of a long sweep point label, k={i}" for i in range(3)],
                        "metric": ["x"] * 3, "treatment": ["a"] * 3, "diff": [1.0, 2.0, 3.0],
                        "ci_low": [0.5] * 3, "ci_high": [4.0] * 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figures.sweep(pts, param, tmp_path / "s.png")
        saved[-1].canvas.draw()
    ax, xlabel = saved[-1].axes[0], saved[-1].get_supxlabel()
    assert xlabel.replace("\n", " ") == param.replace("_", " ") and max(map(len, xlabel.splitlines())) <= 46
    assert all(max(map(len, t.get_text().splitlines())) <= 18 for t in ax.get_xticklabels())
    matplotlib.pyplot.close(saved[-1])


def test_sweep_report_states_the_runs_alpha(tmp_path):
    run = analysed(make_run_dir(tmp_path / "src", failed=None), alpha=0.1)
    root = tmp_path / "multirun"
    for name, sizes in (("hello", (4, 10)), ("market", (10, 4))):
        _sweep_point(run, root / name, name, sizes, [f"experiment={name}"])
    md = reports.render(root).markdown.read_text()
    assert "Difference [90% CI]" in md and "experiment, 90% CIs." in md and "95%" not in md
