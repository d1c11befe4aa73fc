"""Reports: every section present, and the numbers in report.md equal the analysis tables."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

import reports
from reports import fmt
from reports.build import SECTION_TITLES
from reports.cli import main as report_main
from reports.load import ReportError
from reports.runinfo import usage_by_purpose
from test_reports_support import make_run_dir, tt_22b

HEADLINE_HEADER = "| Metric | Treatment | n (c / t) |"


def quick_analysis(run: Path) -> None:
    """The analysis tables, written the way `trials run` does, with fewer resamples to stay fast
    (the report then reads them; the TinyTroupe test covers the report computing them itself)."""
    import analysis

    table = analysis.load_table(run)
    analysis.analyze(table, control="control", n_boot=200, n_perm=500, mixed=False).write(run / "analysis")


@pytest.fixture(scope="module")
def run_report(tmp_path_factory):
    run = make_run_dir(tmp_path_factory.mktemp("run"))
    quick_analysis(run)
    paths = reports.render(run)
    return run, paths


@pytest.fixture(scope="module")
def tt_report(tmp_path_factory):
    return reports.render(tt_22b(), tmp_path_factory.mktemp("tt") / "out")


def headline_rows(md: str) -> dict[tuple[str, str], list[str]]:
    """The headline table of report.md, parsed back: (metric label, treatment) -> cells."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(HEADLINE_HEADER))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[(cells[0], cells[1])] = cells
    return rows


def _split_ci(text: str) -> tuple[float, float, float]:
    """'+1.08 [+0.20, +1.90]' -> numbers; a bare '+1.08' (no CI computed) -> CI as NaN."""
    m = re.fullmatch(r"([+-]\d+\.\d\d)(?: \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\])?", text)
    assert m, f"not 'estimate [lo, hi]': {text!r}"
    return tuple(float(g) if g is not None else math.nan for g in m.groups())


def assert_headline_matches(md: str, effects: pd.DataFrame) -> None:
    rows = headline_rows(md)
    assert len(rows) == len(effects)
    for rec in effects.itertuples():
        cells = rows[(fmt.metric(rec.metric), str(rec.treatment))]
        # the printed strings are the tables' values, formatted ...
        assert cells[3] == fmt.num(rec.mean_control) and cells[4] == fmt.num(rec.mean_treatment)
        assert cells[5] == fmt.with_ci(rec.diff, rec.ci_low, rec.ci_high)
        # relative change = diff / |mean control| (NaN with its reason when the control mean is 0)
        if rec.mean_control != 0:
            assert abs(float(cells[6].rstrip("%")) - 100 * rec.diff / abs(rec.mean_control)) <= 0.5 + 1e-9
        else:
            assert cells[6] == "– (control mean is 0)"
        assert cells[7] in ("better", "worse", "unclear", "no CI")
        assert cells[8] == fmt.with_ci(rec.hedges_g, rec.g_ci_low, rec.g_ci_high)
        assert cells[9:12] == [fmt.pval(rec.p_value), fmt.pval(rec.p_holm), fmt.pval(rec.p_bh)]
        assert cells[12] == rec.p_method
        # ... and, read back as numbers, agree with the raw values to the printed precision
        assert cells[2] == f"{rec.n_control} / {rec.n_treatment}"
        assert abs(float(cells[3]) - rec.mean_control) <= 0.005 + 1e-9
        for got, want in zip(_split_ci(cells[5]), (rec.diff, rec.ci_low, rec.ci_high)):
            assert (math.isnan(got) and math.isnan(want)) or abs(got - want) <= 0.005 + 1e-9
        for got, want in zip(_split_ci(cells[8]), (rec.hedges_g, rec.g_ci_low, rec.g_ci_high)):
            assert (math.isnan(got) and math.isnan(want)) or abs(got - want) <= 0.005 + 1e-9
        for text, want in zip(cells[9:12], (rec.p_value, rec.p_holm, rec.p_bh)):
            assert math.isclose(float(text), want, rel_tol=0.06, abs_tol=0.005)


def test_run_report_has_every_section(run_report):
    run, paths = run_report
    md, html = paths.markdown.read_text(), paths.html.read_text()
    assert paths.markdown == run / "report.md" and paths.html == run / "report.html"
    for title in SECTION_TITLES:
        assert f"\n## {title}\n" in md and f"<h2>{title}</h2>" in html
    assert "| Experiment | brainstorm_variety |" in md
    assert "| treatment | interventions.variety.enabled | false | true |" in md  # the config diff
    assert "| treatment | correction.enabled | false | true |" in md
    assert "r0=7000" in md and "(shared by all arms: paired)" in md
    assert "unknown (no price)" in md and "$0.00" not in md  # NaN cost is not free
    assert "scripted backend: a deterministic test double, not a language model" in md
    assert "LLMPermanentError: scripted rule raised 'permanent' on call 12" in md  # failed job
    assert "extraction failed: reply was not valid JSON after one repair" in md  # missing + why
    assert "**control — session control-r0**" in md and "**treatment — session treatment-r0**" in md


def test_run_report_numbers_equal_analysis_tables(run_report):
    run, paths = run_report
    effects = pd.read_csv(run / "analysis" / "effects.csv")
    assert_headline_matches(paths.markdown.read_text(), effects)
    tradeoffs = [fmt.with_metric_names(ln.strip(), list(effects["metric"]))
                 for ln in (run / "analysis" / "tradeoffs.txt").read_text().splitlines()]
    callout = [ln for ln in paths.markdown.read_text().splitlines() if ln.startswith("> - treatment")]
    lines = [ln for ln in tradeoffs if ln and not ln.endswith(":")]
    assert lines and all(any(ln in c for c in callout) for ln in lines)


def test_quality_counts_match_the_run_files(run_report):
    run, paths = run_report
    md = paths.markdown.read_text()
    events = pd.read_json(run / "transcript.jsonl", lines=True)
    fires = events[events["kind"] == "intervention"]
    assert f"| treatment | variety | {len(fires)} | {fires['session'].nunique()} |" in md
    corr = events[events["kind"] == "correction"]
    passed = corr["scores"].map(lambda s: s["passed"]).mean()
    row = next(line for line in md.splitlines() if line.startswith("| treatment | ") and f"| {len(corr)} |" in line)
    assert fmt.percent(passed) in row
    metrics = pd.read_parquet(run / "metrics.parquet")
    noisy = metrics[(metrics["judge_k"] > 1) & (metrics["arm"] == "control")]
    assert f"| persona adherence | control | 3 | {len(noisy)} | {noisy['judge_sd'].mean():.2f} |" in md
    calls = pd.read_parquet(run / "llm_calls.parquet")
    assert f"| total | {len(calls):,} | {int(calls['cached'].sum()):,} | {int(calls['tokens_in'].sum()):,} |" in md


def test_html_is_self_contained_with_embedded_figures(run_report):
    run, paths = run_report
    html = paths.html.read_text()
    names = sorted(p.name for p in paths.figures)
    assert names == ["distributions.png", "forest.png", "tradeoff.png"]
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == 3
    assert {base64.b64decode(u)[:8] for u in uris} == {b"\x89PNG\r\n\x1a\n"}
    assert sorted(base64.b64decode(u) for u in uris) == sorted(p.read_bytes() for p in paths.figures)
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)
    assert "](figures/forest.png)" in paths.markdown.read_text()


def test_existing_analysis_tables_are_read_not_recomputed(run_report, tmp_path):
    run, _ = run_report
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    effects = pd.read_csv(copy / "analysis" / "effects.csv")
    effects.loc[0, ["diff", "ci_low", "ci_high"]] = [1.2345, 0.5, 2.0]
    effects.to_csv(copy / "analysis" / "effects.csv", index=False)
    md = reports.render(copy).markdown.read_text()
    assert headline_rows(md)[(fmt.metric(effects.loc[0, "metric"]), "treatment")][5] == "+1.23 [+0.50, +2.00]"


def test_tinytroupe_report(tt_report):
    md = tt_report.markdown.read_text()
    for title in SECTION_TITLES:
        assert f"\n## {title}\n" in md
    effects = pd.read_csv(tt_report.out_dir / "analysis" / "effects.csv")
    assert_headline_matches(md, effects)
    rows = headline_rows(md)
    assert rows[("ideas", "Treatment")][5].startswith("+5.33 ")  # the paper's headline
    assert rows[("persona adherence", "Treatment")][5].startswith("-0.60 ")
    assert rows[("persona adherence", "Treatment")][9] == "0.0063"
    assert "No transcript for this input." in md
    assert "Not available for this input, so not shown: transcript, configuration" in md
    assert "session ids were lost" in md
    assert sorted(p.name for p in tt_report.figures) == ["distributions.png", "forest.png", "tradeoff.png"]


def test_sweep_report(run_report, tmp_path):
    run, _ = run_report
    root = tmp_path / "multirun"
    for i, temp in enumerate((0.3, 0.9)):
        point = root / str(i)
        shutil.copytree(run, point, ignore=shutil.ignore_patterns("report.*", "figures"))
        cfg = (point / "config.yaml").read_text().replace("temperature: 0.7", f"temperature: {temp}")
        (point / "config.yaml").write_text(cfg)
        eff = pd.read_csv(point / "analysis" / "effects.csv")
        eff["diff"] += i
        eff.to_csv(point / "analysis" / "effects.csv", index=False)
    pd.DataFrame({"run": ["0", "1"], "llm.temperature": [0.3, 0.9]}).to_csv(root / "sweep_summary.csv", index=False)
    paths = reports.render(root)
    md = paths.markdown.read_text()
    assert md.startswith("# Sweep report: llm.temperature")
    first = pd.read_csv(root / "1" / "analysis" / "effects.csv").iloc[0]
    assert f"| 0.9 | {fmt.label(first['metric'])} | treatment | {fmt.with_ci(first['diff'], first['ci_low'], first['ci_high'])} |" in md
    assert [p.name for p in paths.figures] == ["sweep.png"]


def test_three_arm_run(tmp_path):
    run = make_run_dir(tmp_path, replicates=4, failed=None, third_arm=True)
    quick_analysis(run)
    paths = reports.render(run)
    md = paths.markdown.read_text()
    effects = pd.read_csv(run / "analysis" / "effects.csv")
    assert set(effects["treatment"]) == {"treatment", "variety_only"}
    assert_headline_matches(md, effects)
    assert "| variety_only | interventions.variety.k | 3 | 5 |" in md
    assert "| variety_only | correction.enabled |" not in md  # same as control: not a difference
    assert "**variety_only — session variety_only-r0**" in md
    assert len(paths.figures) == 3


def test_caveats_name_a_tiny_local_model_and_judge(run_report, tmp_path):
    from reports.caveats import caveats
    from reports.load import load

    run, _ = run_report
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    man = json.loads((copy / "manifest.json").read_text())
    man["llm"] = man["judge"] = {"backend": "local", "model": "SmolLM2-135M-Instruct-Q4_1.gguf"}
    (copy / "manifest.json").write_text(json.dumps(man))
    text = " ".join(caveats(load(copy)))
    assert "agents ran on SmolLM2-135M-Instruct-Q4_1.gguf (about 135M parameters)" in text
    assert "judge ran on SmolLM2-135M" in text and "grades its own writing" in text
    assert "scripted backend" not in text


def test_usage_by_purpose_cost_known_and_unknown():
    calls = pd.DataFrame({"purpose": ["action", "action", "judge"], "tokens_in": [10, 20, 5],
                          "tokens_out": [1, 2, 3], "cached": [False, True, False],
                          "cost_usd": [0.001, 0.002, float("nan")]})
    usage = usage_by_purpose(calls).set_index("purpose")
    assert usage.loc["action", "cost_usd"] == pytest.approx(0.003) and usage.loc["action", "cached"] == 1
    assert math.isnan(usage.loc["judge", "cost_usd"]) and math.isnan(usage.loc["total", "cost_usd"])
    assert fmt.usd(usage.loc["action", "cost_usd"]) == "$0.0030"


def test_usage_by_purpose_tokens_unknown_for_a_call_cut_off_mid_request():
    # was: the NA tokens were skipped by the sum, so the total was an undercount shown as exact
    calls = pd.DataFrame({"purpose": ["action", "action", "judge"], "cached": False, "cost_usd": 0.0,
                          "tokens_in": pd.array([10, None, 5], dtype="Int64"),
                          "tokens_out": pd.array([1, None, 3], dtype="Int64")})
    usage = usage_by_purpose(calls).set_index("purpose")
    assert math.isnan(usage.loc["action", "tokens_in"]) and math.isnan(usage.loc["total", "tokens_out"])
    assert usage.loc["judge", "tokens_in"] == 5 and usage.loc["total", "tokens_unknown"] == 1


def test_an_unknown_cost_says_why_tokens_or_price():
    # was: every NaN cost read "unknown (no price)", also for a priced model whose endpoint sent no usage
    from reports.runinfo import unknown_cost_why

    calls = pd.DataFrame({"purpose": ["action", "judge"], "cached": False, "cost_usd": [float("nan")] * 2,
                          "tokens_in": pd.array([None, 5], dtype="Int64"), "tokens_out": pd.array([None, 3], dtype="Int64")})
    usage = usage_by_purpose(calls).set_index("purpose")
    assert fmt.usd(usage.loc["action", "cost_usd"], unknown_cost_why(usage.loc["action"])) == "unknown (tokens unknown)"
    assert fmt.usd(usage.loc["judge", "cost_usd"], unknown_cost_why(usage.loc["judge"])) == "unknown (no price)"
    assert fmt.usd(float("nan")) == "unknown"


def test_usage_by_purpose_counts_attempts_of_unknown_billing_and_the_header_says_so():
    # attempts that timed out or got a malformed reply may have been billed: the cost total leaves
    # them out, and the report must say so rather than show the total as the whole cost
    from reports.runinfo import billing_caveat

    calls = pd.DataFrame({"purpose": ["action", "judge"], "cached": False, "cost_usd": [0.001, 0.002],
                          "tokens_in": [10, 5], "tokens_out": [1, 3], "unknown_billing_attempts": [2, 1]})
    usage = usage_by_purpose(calls).set_index("purpose")
    assert usage.loc["action", "unknown_billing_attempts"] == 2 and usage.loc["total", "unknown_billing_attempts"] == 3
    assert usage.loc["total", "cost_usd"] == pytest.approx(0.003)
    assert billing_caveat(3).startswith("3 attempt(s) that timed out or got a malformed reply may have been billed")


@pytest.mark.parametrize("value,text", [(5.3333, "+5.33"), (-0.6042, "-0.60"), (-0.001, "+0.00"), (0, "+0.00")])
def test_signed(value, text):
    assert fmt.signed(value) == text


@pytest.mark.parametrize("value,plain,sign", [
    (1e160, "1e+160", "+1e+160"),  # was a 161-character string of digits
    (-3e-9, "-3e-09", "-3e-09"),  # was "-0.00" / "+0.00": a real value shown as none
    (float("nan"), "–", "–"), (None, "–", "–"), (pd.NA, "–", "–"),
    (float("inf"), "∞", "+∞"), (float("-inf"), "-∞", "-∞"),
    (1234.5678, "1234.57", "+1234.57"), (-0.001, "0.00", "+0.00"), (0, "0.00", "+0.00")])
def test_report_numbers_huge_tiny_and_missing(value, plain, sign):
    assert fmt.num(value) == plain and fmt.signed(value) == sign
    assert fmt.with_ci(value, value, value) == (f"{sign} [{sign}, {sign}]" if sign != fmt.MISSING else fmt.MISSING)
    assert len(fmt.percent(value)) < 12 and len(fmt.integer(value)) < 12 and len(fmt.usd(value)) < 20


@pytest.mark.parametrize("p,text", [(0.006296, "0.0063"), (0.8019, "0.80"), (1.0, "1.00"), (9.3457e-08, "9.3e-08"),
                                    (0.0488, "0.049"), (float("nan"), "–")])
def test_pval(p, text):
    assert fmt.pval(p) == text


def test_bad_inputs_get_clear_errors(tmp_path, capsys):
    with pytest.raises(ReportError, match="no such run directory or file"):
        reports.render(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="not a run directory"):
        reports.render(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    assert report_main([str(bad)]) == 2
    assert "manifest.json: not valid JSON" in capsys.readouterr().err


def test_cli_writes_to_out(run_report, tmp_path, capsys):
    run, _ = run_report
    assert report_main([str(run), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert f"report: {tmp_path / 'o' / 'report.html'}" in out
    assert (tmp_path / "o" / "figures" / "forest.png").exists()
    json.loads((run / "analysis" / "summary.json").read_text())  # the analysis tables stayed in the run


def test_install_browser_script_uses_apt_only_when_chromium_is_absent(tmp_path):
    import subprocess

    fake = tmp_path / "bin"
    fake.mkdir()
    log = tmp_path / "apt.log"
    (fake / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (fake / "apt-get").chmod(0o755)
    script = Path(__file__).resolve().parents[1] / "scripts" / "install-browser.sh"
    env = {"PATH": f"{fake}:/usr/bin:/bin"}
    res = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)
    if Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists():
        assert res.returncode == 0 and not log.exists(), res.stderr
        assert "already installed" in res.stdout
    else:  # the script must try to install both packages, after an update
        calls = log.read_text().splitlines()
        assert calls[0] == "update" and "chromium" in calls[1] and "chromium-driver" in calls[1]
