"""Issue #16: a report people act on. The summary comes first and states, per treatment, the
gains and losses with relative changes, CIs and Holm; metric directions and units; the trade-off
pair the user named; the factorial and market-research sections; signed power tables; the console
names report.html. Rendered for the paper's 2.2b file and for scripted runs."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import yaml

import reports
from reports import figures, fmt
from reports.metricinfo import metric_infos, relative_change, verdict
from runner_support import run as run_trials
from test_reports_support import make_run_dir, tt_22b


def quick_analysis(run: Path, control: str | None = "control") -> None:
    import analysis

    analysis.analyze(analysis.load_table(run), control=control, n_boot=200, n_perm=500, mixed=False).write(
        run / "analysis")


def section(md: str, title: str) -> str:
    """The Markdown text of one `## title` section."""
    start = md.index(f"\n## {title}\n")
    end = md.find("\n## ", start + 4)
    return md[start:end if end > 0 else None]


# ---------------------------------------------------------------- the paper's 2.2b file

@pytest.fixture(scope="module")
def tt(tmp_path_factory):
    paths = reports.render(tt_22b(), tmp_path_factory.mktemp("tt") / "out")
    return paths, paths.markdown.read_text()


def _paper_values(metric: str) -> tuple[np.ndarray, np.ndarray]:
    data = json.loads(tt_22b().read_text())["experiments"]
    return (np.asarray(data["Control"]["results"][metric], float),
            np.asarray(data["Treatment"]["results"][metric], float))


def test_summary_comes_first_and_states_the_paper_headline(tt):
    paths, md = tt
    titles = re.findall(r"^## (.+)$", md, flags=re.M)
    assert titles[0] == "Summary" and titles.index("Summary") < titles.index("Headline results")
    summary = section(md, "Summary")
    # relative changes computed here from the raw JSON, independently of the report code
    c, t = _paper_values("ideas_qty")
    ideas_rel = (t.mean() - c.mean()) / abs(c.mean())
    c, t = _paper_values("Persona Adherence")
    pa_rel = (t.mean() - c.mean()) / abs(c.mean())
    assert f"{100 * ideas_rel:+.0f}%" == "+135%" and f"{100 * pa_rel:+.0f}%" == "-11%"
    assert ("- Treatment: +5.33 ideas per session (+135%, 95% CI +3.67 to +7.00) and +1.88 task completion "
            "(0-9 score; +37%, 95% CI +0.60 to +3.15), at a cost of -0.92 self consistency (0-9 score; -17%, "
            "95% CI -1.39 to -0.45) and -0.60 persona adherence (0-9 score; -11%, 95% CI -1.04 to -0.17). "
            "All 4 survive Holm correction (adjusted p < 0.05). No clear change in divergence and fluency.") in summary
    assert ("Trade-off asked for (ideas vs persona adherence; default: the paper's headline pair): Treatment "
            "+5.33 ideas per session vs -0.60 persona adherence (0-9 score).") in summary
    assert "agents in one session are treated as independent" in summary


def test_headline_relative_change_verdict_and_units(tt):
    _, md = tt
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in md.splitlines()
            if line.startswith("| ") and "| Treatment |" in line and "%" in line}
    assert rows["ideas"][6:8] == ["+135%", "better"]
    assert rows["persona adherence"][6:8] == ["-11%", "worse"]
    assert rows["fluency"][7] == "unclear"  # CI [-0.77, +0.10] includes 0
    assert "Units: persona adherence = 0-9 score;" in md and "ideas = ideas per session" in md
    # one display name per metric: the TinyTroupe spellings never reach the page
    for raw in ("ideas_qty", "ideas qty", "Persona Adherence", "Self-consistency", "persona_adherence"):
        assert raw not in md, raw


def test_tradeoff_chart_is_the_named_pair_with_units(tt):
    paths, md = tt
    assert "Trade-off: change in ideas vs change in persona adherence" in md
    assert "Pair: default: the paper's headline pair." in md
    assert (paths.out_dir / "figures" / "tradeoff.png").exists()


def test_power_table_keeps_signs(tt):
    paths, md = tt
    power = pd.read_csv(paths.out_dir / "analysis" / "power.csv")
    assert (power["observed_effect"] >= 0).all()  # the analysis stores |diff| for the calculation ...
    quality = section(md, "Quality of the run")  # ... the report shows the signed difference and ±MDE
    pa = next(ln for ln in quality.splitlines() if ln.startswith("| persona adherence | Treatment |"))
    mde = power.loc[power["metric"] == "Persona Adherence", "mde_this_run"].iloc[0]
    assert "| -0.60 |" in pa and f"| ±{mde:.2f} |" in pa


def test_html_colours_wins_and_losses(tt):
    paths, _ = tt
    html = paths.html.read_text()
    assert re.search(r'<td class="win">better</td>', html) and re.search(r'<td class="loss">worse</td>', html)
    assert re.search(r'<td class="num win">\+135%</td>', html)


# ---------------------------------------------------------------- metric direction and relative change

def test_relative_change_of_a_zero_control_mean_is_missing_with_reason():
    assert relative_change(2.0, 4.0) == (0.5, "")
    assert relative_change(-1.0, -4.0) == (-0.25, "")  # divided by |mean|: the sign stays the difference's
    value, reason = relative_change(1.0, 0.0)
    assert math.isnan(value) and reason == "control mean is 0"
    value, reason = relative_change(float("nan"), 3.0)
    assert math.isnan(value) and reason


def test_higher_is_better_from_config_flips_the_verdict():
    cfg = {"experiment": {"metric_info": {"answer_chars": {"higher_is_better": False, "unit": "characters"}}}}
    infos = metric_infos(["answer_chars", "persona_adherence"], cfg,
                         pd.DataFrame({"metric": ["persona_adherence"], "scale": ["0-9"]}))
    assert (infos["answer_chars"].higher_is_better, infos["answer_chars"].direction_source) == (False, "config")
    assert infos["persona_adherence"].unit == "0-9 score" and infos["persona_adherence"].direction_source == "default"
    assert verdict(infos["answer_chars"], -5, -8, -2) == "better"
    assert verdict(infos["persona_adherence"], -0.6, -1.0, -0.2) == "worse"
    assert verdict(infos["persona_adherence"], 0.3, -0.1, 0.7) == "unclear"
    assert verdict(infos["persona_adherence"], 0.3, float("nan"), float("nan")) == "no CI"


def test_higher_is_better_false_in_a_run_config_reaches_summary_and_table(tmp_path):
    run = make_run_dir(tmp_path, replicates=10, failed=None)
    quick_analysis(run)
    eff = pd.read_csv(run / "analysis" / "effects.csv")
    clear = eff[(eff["ci_low"] > 0) | (eff["ci_high"] < 0)]
    assert len(clear), "the synthetic run has a clear effect (persona adherence -1.1 in treatment)"
    rec = clear.sort_values("diff").iloc[0]  # a loss by default, a gain once lower is better
    name = fmt.metric(rec["metric"])
    default = "better" if rec["diff"] > 0 else "worse"
    flipped = {"better": "worse", "worse": "better"}[default]

    def verdict_and_summary() -> tuple[str, str]:
        md = reports.render(run).markdown.read_text()
        row = next(ln for ln in md.splitlines() if ln.startswith(f"| {name} | treatment |"))
        return row.split(" | ")[7], section(md, "Summary")

    got, summary = verdict_and_summary()
    assert got == default
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["experiment"]["metric_info"] = {rec["metric"]: {"higher_is_better": False}}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    got, summary = verdict_and_summary()
    assert got == flipped
    phrase = f"{fmt.signed(rec['diff'])} {name}"
    assert phrase in summary
    sentence = next(ln for ln in summary.splitlines() if ln.startswith("- treatment (correction; interventions): "))
    assert flipped == "better" and phrase in sentence.split("at a cost of")[0]  # listed among the gains now
    md = reports.render(run).markdown.read_text()
    assert f"{name} = 0-9 score (lower is better)" in md


# ---------------------------------------------------------------- the named trade-off pair

def test_tradeoff_pair_from_config_or_said_why_not(tmp_path):
    from reports.tradeoff import tradeoff_pair

    eff = pd.DataFrame({"metric": ["fluency", "ideas_qty", "Persona Adherence"], "hedges_g": [2.0, 0.5, -0.1]})
    assert tradeoff_pair({"experiment": {"tradeoff": ["fluency", "persona_adherence"]}}, eff) == \
        (("fluency", "Persona Adherence"), "named in experiment.tradeoff")
    assert tradeoff_pair(None, eff)[0] == ("ideas_qty", "Persona Adherence")  # the paper's pair by default
    pair, why = tradeoff_pair({"experiment": {"tradeoff": ["ideas", "divergence"]}}, eff)
    assert pair is None and "['divergence']" in why
    auto, how = tradeoff_pair(None, eff.iloc[[0, 2]])
    assert auto == ("fluency", "Persona Adherence") and how.startswith("chosen automatically")


def test_coinciding_treatments_get_separate_legend_labels(tmp_path, monkeypatch):
    saved = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.setdefault("fig", fig) and path)
    eff = pd.DataFrame({"treatment": ["a", "b", "a", "b"], "metric": ["x", "x", "y", "y"],
                        "diff": [1.0, 1.0, -0.5, -0.5], "ci_low": [0.5, 0.5, -0.9, -0.9],
                        "ci_high": [1.5, 1.5, -0.1, -0.1]})
    assert figures.tradeoff(eff, ["c", "a", "b"], ("x", "y"), tmp_path / "t.png", ("ideas per session", "0-9 score"))
    ax = saved["fig"].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a: (+1.00, -0.50)", "b: (+1.00, -0.50) = same point as a"]
    assert not ax.texts  # no annotations on the axes that could overlap
    assert "[ideas per session]" in ax.get_xlabel() and "[0-9 score]" in ax.get_ylabel()
    matplotlib.pyplot.close(saved["fig"])


def test_forest_says_no_ci_when_none_exists(tmp_path, monkeypatch):
    saved = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.setdefault("fig", fig) and path)
    eff = pd.DataFrame({"treatment": ["t", "t"], "metric": ["x", "y"], "hedges_g": [0.4, -0.2],
                        "g_ci_low": [np.nan, np.nan], "g_ci_high": [np.nan, np.nan]})
    figures.forest(eff, ["c", "t"], tmp_path / "f.png")
    assert "no CIs computed" in saved["fig"].axes[0].get_xlabel()
    matplotlib.pyplot.close(saved["fig"])


# ---------------------------------------------------------------- manipulation check, missingness

def test_summary_names_undelivered_treatments_and_unequal_missingness(tmp_path):
    run = make_run_dir(tmp_path, failed=None, third_arm=True)
    quick_analysis(run)
    man = json.loads((run / "manifest.json").read_text())
    man["arms"] = {"control": {"delivered": None, "mechanisms": {}, "note": ""},
                   "treatment": {"delivered": True, "mechanisms": {"variety": 4}, "note": ""},
                   "variety_only": {"delivered": False, "mechanisms": {"variety": 0},
                                    "note": "variety configured but never fired"}}
    (run / "manifest.json").write_text(json.dumps(man))
    miss = pd.read_csv(run / "analysis" / "missing.csv")  # analysis' own table (issue #11's columns) ...
    assert "differential" in miss.columns
    miss["differential"] = miss["metric"].eq("ideas") & miss["arm"].eq("treatment")  # ... with one flag set
    miss.to_csv(run / "analysis" / "missing.csv", index=False)
    summary = section(reports.render(run).markdown.read_text(), "Summary")
    assert ("Treatment variety_only was NOT delivered (variety configured but never fired): its differences are "
            "not effects of the mechanism") in summary
    assert "Treatment treatment was NOT" not in summary and "control" not in summary.split("NOT")[0][-40:]
    assert "Unequal missingness between arms in ideas" in summary
    assert "every treatment was delivered" not in summary
    man["arms"]["variety_only"]["delivered"] = True
    (run / "manifest.json").write_text(json.dumps(man))
    summary = section(reports.render(run).markdown.read_text(), "Summary")
    assert "Manipulation check: every treatment was delivered" in summary and "NOT delivered" not in summary
    assert "The scripted backend produced these numbers" in summary


# ---------------------------------------------------------------- factorial scripted run

@pytest.fixture(scope="module")
def factorial_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("factorial") / "run"
    assert run_trials(root, "experiment=brainstorm_factorial") == 0
    quick_analysis(root, control=None)  # the run's control: the all-baseline cell
    return root


def test_factorial_scripted_run_summary_and_named_pair(factorial_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(factorial_run, run)
    md = reports.render(run).markdown.read_text()
    eff = pd.read_csv(run / "analysis" / "effects.csv")
    summary = section(md, "Summary")
    bullets = [ln[2:] for ln in summary.splitlines() if ln.startswith("- ")]
    # one per treatment, each saying what the arm changes (the settings that differ from control)
    assert [b.split(": ")[0] for b in bullets[:3]] == [
        "correction=off,variety=on (interventions", "correction=on,variety=off (correction)",
        "correction=on,variety=on (correction; interventions"]
    for b in bullets[:3]:
        rows = eff[eff["treatment"] == b.split(" (")[0]]
        assert len(rows) == 6
        if (rows["diff"] == 0).all():
            assert b.endswith("exactly the same as control on every metric (all differences are 0).")
        for _, r in rows[(rows["ci_low"] > 0) | (rows["ci_high"] < 0)].iterrows():
            rel = r["diff"] / abs(r["mean_control"])
            assert f"{fmt.signed(r['diff'])} " in b and fmt.signed_percent(rel) in b
    assert bullets[3].startswith("Trade-off asked for (ideas vs persona adherence; named in experiment.tradeoff): ")
    for t in eff["treatment"].unique():
        d = eff[(eff["treatment"] == t)].set_index("metric")["diff"]
        assert f"{t} {fmt.signed(d['ideas'])} ideas per session vs {fmt.signed(d['persona_adherence'])} " \
               "persona adherence (0-9 score)" in bullets[3]
    assert "Pair: named in experiment.tradeoff." in md
    assert "Factorial design: correction (off / on); variety (off / on)." in summary


def test_factorial_section_shows_factorial_csv_and_an_interaction_plot(factorial_run, tmp_path):
    """analysis (issue #12) writes factorial.csv / factorial_cells.csv for the factor_<name> columns
    (issue #13); the report shows every term and plots the marginal means, else the raw cell means."""
    run = tmp_path / "run"
    shutil.copytree(factorial_run, run)
    terms = pd.read_csv(run / "analysis" / "factorial.csv")
    assert len(terms) == 18  # 6 metrics x (2 main effects + 1 interaction)
    fact = section(reports.render(run).markdown.read_text(), "Factorial design")
    for _, t in terms.iterrows():
        from reports.factorial import term_label

        assert (f"| {fmt.metric(t['metric'])} | {term_label(t['term'])} | "
                f"{fmt.with_ci(t['estimate'], t['ci_low'], t['ci_high'])} | {fmt.pval(t['p'])} |") in fact
    assert "| ideas | correction = on × variety = on |" in fact
    assert "marginal means from the factorial model with 95% CIs" in fact
    assert (run / "figures" / "interaction.png").exists()
    from reports.factorial import cell_means

    cells = pd.read_csv(run / "analysis" / "factorial_cells.csv")
    means, model_based = cell_means(reports.load.load(run), ["correction", "variety"])
    want = cells[(cells["metric"] == "ideas") & (cells["cell"] == "factor_correction=on, factor_variety=off")]
    got = means[(means["metric"] == "ideas") & (means["correction"] == "on") & (means["variety"] == "off")]
    assert model_based and got["mean"].iloc[0] == pytest.approx(want["emm"].iloc[0])
    (run / "analysis" / "factorial_cells.csv").unlink()  # without the model's cells: raw means, said so
    fact = section(reports.render(run).markdown.read_text(), "Factorial design")
    assert "raw cell means from the metrics table (no CIs)" in fact
    (run / "analysis" / "factorial.csv").unlink()
    fact = section(reports.render(run).markdown.read_text(), "Factorial design")
    assert "the analysis wrote no factorial.csv" in fact


# ---------------------------------------------------------------- market research

@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("market") / "run"
    assert run_trials(root, "experiment=market_research") == 0
    return root


def test_respondents_csv_has_one_row_per_respondent(market_run):
    resp = pd.read_csv(market_run / "respondents.csv")
    assert list(resp.columns[:4]) == ["arm", "replicate", "session", "agent"]
    assert {"age", "gender", "occupation", "answer", "vote", "reason", "missing_reason"} <= set(resp.columns)
    metrics = pd.read_parquet(market_run / "metrics.parquet")
    votes = metrics[metrics["metric"] == "vote"].set_index(["session", "agent"])["value"]
    assert len(resp) == len(votes)  # one row per agent of every finished session
    events = pd.read_json(market_run / "transcript.jsonl", lines=True)
    said = events[(events["kind"] == "action") & events["type"].isin(["TALK", "THINK"])]
    for _, r in resp.iterrows():
        want = votes.loc[(r["session"], r["agent"])]
        assert (math.isnan(want) and math.isnan(r["vote"])) or r["vote"] == want
        mine = said[(said["session"] == r["session"]) & (said["agent"] == r["agent"])]["content"]
        assert all(text in str(r["answer"]) for text in mine) and (len(mine) == 0) == pd.isna(r["answer"])


def test_market_report_shows_vote_distribution_and_reasons(market_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(market_run, run)
    quick_analysis(run)
    md = reports.render(run).markdown.read_text()
    resp = pd.read_csv(run / "respondents.csv")
    part = section(md, "Respondents")
    for arm, sub in resp.groupby("arm"):
        row = next(ln for ln in part.splitlines() if ln.startswith(f"| {arm} | {len(sub)} |"))
        for level, k in sub["vote"].value_counts().items():
            assert f"{k} ({fmt.percent(k / sub['vote'].notna().sum())})" in row, (level, row)
    with_reason = resp[resp["reason"].fillna("").astype(str).str.strip() != ""]
    top = with_reason["vote"].max()  # the highest vote level that has a reason to quote
    quoted = with_reason[with_reason["vote"] == top]["reason"].iloc[0]
    assert f"**Vote {top:g}**" in part and " ".join(str(quoted).split())[:40] in part
    assert "Pair: named in experiment.tradeoff." in md and "change in vote vs change in persona adherence" in md


# ---------------------------------------------------------------- console, CLI options, sweep

def test_run_prints_report_path_before_the_run_directory(tmp_path, capsys):
    assert run_trials(tmp_path, "experiment=hello", "run.replicates=2", "run.analyze=true", "run.report=true") == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[-1] == f"run directory: {tmp_path.resolve()}"
    assert lines[-2] == f"report: {tmp_path.resolve() / 'report.html'}" and (tmp_path / "report.html").exists()
    assert "analysing:" in err and "rendering the report:" in err


def test_report_cli_control_and_paired(tmp_path, capsys):
    from reports.cli import main

    run = make_run_dir(tmp_path, failed=None, third_arm=True)
    quick_analysis(run)
    assert main([str(run), "--control", "variety_only", "--unpaired", "--out", str(tmp_path / "o")]) == 0
    eff = pd.read_csv(tmp_path / "o" / "analysis" / "effects.csv")
    assert set(eff["control"]) == {"variety_only"} and set(eff["treatment"]) == {"control", "treatment"}
    assert not eff["p_method"].str.contains("paired", case=False).any()
    assert set(pd.read_csv(run / "analysis" / "effects.csv")["control"]) == {"control"}  # the run's own tables stay
    assert main([str(run), "--control", "nope", "--out", str(tmp_path / "p")]) == 2
    assert "nope" in capsys.readouterr().err


def test_sweep_links_each_run_report_and_flags_identical_points(tmp_path):
    run = make_run_dir(tmp_path / "src", failed=None)
    quick_analysis(run)
    root = tmp_path / "multirun"
    for i, temp in enumerate((0.3, 0.9)):
        point = root / str(i)
        shutil.copytree(run, point)
        cfg = (point / "config.yaml").read_text().replace("temperature: 0.7", f"temperature: {temp}")
        (point / "config.yaml").write_text(cfg)
    md = reports.render(root).markdown.read_text()
    assert "| 0.3 | 0 | complete | 0 / 10 | 6 | [report.html](0/report.html) |" in md
    assert (root / "0" / "report.html").exists() and (root / "1" / "report.html").exists()
    assert "Sweep points 0.3, 0.9 of llm.temperature gave exactly the same results" in md
    eff = pd.read_csv(root / "1" / "analysis" / "effects.csv")
    eff.loc[0, "diff"] += 0.5
    eff.to_csv(root / "1" / "analysis" / "effects.csv", index=False)
    assert "gave exactly the same results" not in reports.render(root).markdown.read_text()
    assert "Difference [95% CI]" in md


def test_call_ticker_reports_each_recorded_call(capsys):
    """The local model's per-call progress (item 8) hangs on CallRecorder: every recorded call in
    this process reaches the listener (stderr is not a terminal here, so one line per call)."""
    from trials.llm.base import Usage
    from trials.llm.usage import CallRecorder, add_call_listener
    from trials.run.progress import CallTicker

    ticker = CallTicker(every=1)
    remove = add_call_listener(ticker.tick)
    rec = CallRecorder()
    for purpose in ("action", "judge"):
        rec.record(Usage(purpose=purpose, backend="local", model="m", tokens_in=10, tokens_out=4, latency_s=1.5,
                         cached=False, retries=0, cost_usd=0.0))
    remove()
    rec.record(Usage(purpose="action", backend="local", model="m", tokens_in=1, tokens_out=1, latency_s=0.1, cached=False,
                     retries=0, cost_usd=0.0))
    ticker.close()
    err = capsys.readouterr().err
    assert "LLM call 1: action 4 tok 1.5 s" in err and "LLM call 2: judge 4 tok 1.5 s" in err
    assert "LLM call 3" not in err and ticker.n == 2


def test_sweep_figure_aligns_categorical_values_across_treatments(tmp_path, monkeypatch):
    saved = {}
    monkeypatch.setattr(figures, "_save", lambda fig, path: saved.setdefault("fig", fig) and path)
    pts = pd.DataFrame({"param": ["low", "mid", "high", "mid", "high"], "metric": ["x"] * 5,
                        "treatment": ["a", "a", "a", "b", "b"], "diff": [1.0, 2.0, 3.0, 4.0, 5.0],
                        "ci_low": [0.5] * 5, "ci_high": [6.0] * 5})
    figures.sweep(pts, "mode", tmp_path / "s.png")
    ax = saved["fig"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["low", "mid", "high"]
    lines = {c.get_label(): [float(x) for x in c.lines[0].get_xdata()] for c in ax.containers}
    assert lines == {"a": [0.0, 1.0, 2.0], "b": [1.0, 2.0]}  # b's "mid" sits above a's "mid"
    matplotlib.pyplot.close(saved["fig"])


def test_subtitle_counts_verdicts(tt):
    _, md = tt
    assert md.splitlines()[2] == "*2 arms · 6 comparisons · 2 better, 2 worse, 2 unclear*"


@pytest.mark.parametrize("value,text", [(1.347, "+135%"), (-0.112, "-11%"), (-0.052, "-5.2%"), (0.004, "+0.4%"),
                                        (-0.0001, "+0.0%"), (float("nan"), "–")])
def test_signed_percent(value, text):
    assert fmt.signed_percent(value) == text
