"""Scales and levels of a metric table (tester round /tmp/t2w/an): one scale parser for the package,
count values, values shown exactly, and a session-level metric copied onto its agent rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import analyze, compare
from analysis.scales import ScaleError, canonical_scale, scale_range
from analysis.validate import TableError, validate_table


def session_counts(seed: int = 1, n: int = 12) -> pd.DataFrame:
    """One count per session (level session), n sessions per arm, one row each."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame([dict(arm=a, replicate=s, session=f"s{s}", agent="", metric="m", level="session",
                              scale="count", value=float(rng.poisson(lam)))
                         for a, lam in (("control", 6.0), ("treatment", 4.0)) for s in range(n)])


def copied_onto_agents(df: pd.DataFrame, agents: int = 3) -> pd.DataFrame:
    """The same table as a common export writes it: each session's value on each of its agents' rows."""
    return pd.concat([df.assign(agent=f"a{k}") for k in range(agents)]).sort_values(
        ["arm", "replicate", "agent"], kind="stable").reset_index(drop=True)


def analyze_csv(tmp_path, df: pd.DataFrame, capsys) -> tuple[int, str, str]:
    from analysis.cli import main

    path = tmp_path / "m.csv"
    df.to_csv(path, index=False)
    code = main([str(path), "--out", str(tmp_path / "out"), "--n-boot", "1000"])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- 1. a session-level metric repeated on every agent row of its session -------------------------

def test_session_level_copies_on_agent_rows_count_once_per_session():
    one = session_counts()
    eff = compare(copied_onto_agents(one), paired_design=False, n_boot=200, n_perm=500).iloc[0]
    c = one.loc[one["arm"] == "control", "value"].to_numpy()
    t = one.loc[one["arm"] == "treatment", "value"].to_numpy()
    # was 36/36, and p_welch / p_mannwhitney on 36 copies each (0.0036 / 0.0058 in the tester's table)
    assert (eff["n_control"], eff["n_treatment"]) == (12, 12)
    assert eff["p_welch"] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-10)
    assert eff["p_mannwhitney"] == pytest.approx(stats.mannwhitneyu(t, c).pvalue, rel=1e-10)
    assert eff["p_value"] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-10)


def test_every_estimate_of_the_copied_table_equals_the_one_row_per_session_table():
    one = session_counts(seed=3)
    kw = dict(paired_design=False, n_boot=300, n_perm=500, seed=5)
    a, b = analyze(one, **kw), analyze(copied_onto_agents(one), **kw)
    pd.testing.assert_frame_equal(a.effects, b.effects)
    for name in ("descriptives", "missing", "power", "balance"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)
    assert any("repeats each session's value on up to 3 rows" in n and "(72 rows -> 24)" in n for n in b.notes)
    assert not any("repeats" in n for n in a.notes)


def test_the_collapse_is_said_on_the_console(tmp_path, capsys):
    code, out, _ = analyze_csv(tmp_path, copied_onto_agents(session_counts()), capsys)
    assert code == 0
    assert ("note: metric 'm' is session-level and repeats each session's value on up to 3 rows (one per agent): "
            "analysed as one value per session (72 rows -> 24)") in out


def test_a_session_with_a_value_and_a_missing_copy_is_a_table_error():
    df = copied_onto_agents(session_counts())
    df.loc[1, "value"] = np.nan  # control s0: 2 copies with the value, 1 without
    with pytest.raises(TableError, match=r"session 's0' of arm 'control' has a value in row\(s\) \[2, 4\] "
                                         r"and none in row\(s\) \[3\]"):
        validate_table(df, "m.csv")


def test_all_missing_copies_are_one_missing_session_with_their_reasons():
    df = session_counts()
    df.loc[0, ["value", "missing_reason"]] = [np.nan, "no answer"]
    rep = copied_onto_agents(df)
    clean, _ = validate_table(rep, "m.csv")
    assert len(clean) == 24 and clean["value"].isna().sum() == 1
    assert clean.loc[clean["value"].isna(), "missing_reason"].tolist() == ["no answer"]
    eff = compare(rep, paired_design=False, n_boot=200, n_perm=500).iloc[0]
    assert (eff["n_control"], eff["missing_control"]) == (11, 1)


def test_agent_level_rows_and_one_row_per_session_are_not_touched():
    one = session_counts()
    clean, notes = validate_table(one, "m.csv")
    assert len(clean) == len(one) and not any("repeats" in n for n in notes)
    agent = copied_onto_agents(one).assign(level="agent")
    clean, notes = validate_table(agent, "m.csv")
    assert len(clean) == len(agent) and set(clean["agent"]) == {"a0", "a1", "a2"}


# -- 2. scales: one parser, counts, bipolar ranges, reversed ranges, case ---------------------------

@pytest.mark.parametrize("text,canon,bounds", [
    ("0-9", "0-9", (0, 9)), ("1 - 5", "1-5", (1, 5)), ("-3-3", "-3-3", (-3, 3)), ("-3 to 3", "-3-3", (-3, 3)),
    ("-5--1", "-5--1", (-5, -1)), ("0-100", "0-100", (0, 100)), ("Likert", "likert", None),
    ("COUNT", "count", None), (" Real ", "real", None), ("", "", None)])
def test_canonical_scale(text, canon, bounds):
    assert canonical_scale(text) == canon
    assert scale_range(text) == (tuple(map(float, bounds)) if bounds else None)


@pytest.mark.parametrize("text,what,fix", [
    ("9-0", "reversed range '9-0'", "write 0-9"), ("3--3", "reversed range '3--3'", "write -3-3"),
    ("4-4", "one-point range '4-4'", "low < high"), ("0-9x", "unknown scale '0-9x'", "'low-high'"),
    ("1.5-5", "unknown scale '1.5-5'", "integers")])
def test_scale_texts_that_are_no_scale(text, what, fix):
    with pytest.raises(ScaleError) as e:
        canonical_scale(text)
    assert e.value.what == what and fix in e.value.fix
    assert scale_range(text) is None


def scored(scale: str, values, level: str = "agent") -> pd.DataFrame:
    vals = list(values)
    return pd.DataFrame([dict(arm=a, replicate=s, session=f"s{s}", agent=f"a{k}", metric="m", level=level,
                              scale=scale, value=float(vals[(i * 18 + s * 3 + k) % len(vals)]))
                         for i, a in enumerate(("control", "treatment")) for s in range(6) for k in range(3)])


@pytest.mark.parametrize("bad,shown", [(-2.0, "-2.0"), (2.5, "2.5")])
def test_count_values_must_be_non_negative_integers(tmp_path, capsys, bad, shown):
    df = scored("count", range(0, 9))
    df.loc[3, "value"] = bad  # was accepted: entered means, diff and every test as a count
    code, _, err = analyze_csv(tmp_path, df, capsys)
    assert code == 2 and "m.csv" in err and "on scale 'count' that are not counts (non-negative integers)" in err
    assert f"row 5: {shown} (control/m, scale count)" in err and "Fix:" in err
    assert analyze_csv(tmp_path, scored("count", range(0, 9)), capsys)[0] == 0


@pytest.mark.parametrize("text,canon,values", [("-3-3", "-3-3", range(-3, 4)), ("-3 to 3", "-3-3", range(-3, 4)),
                                               ("-5--1", "-5--1", range(-5, 0))])
def test_bipolar_and_negative_ranges_are_scales(tmp_path, capsys, text, canon, values):
    df = scored(text, values)
    code, _, err = analyze_csv(tmp_path, df, capsys)  # was: "unknown value(s) ['-3-3']"
    assert code == 0, err
    eff = pd.read_csv(tmp_path / "out" / "effects.csv", keep_default_na=False).iloc[0]
    assert eff["scale"] == canon
    # no model is fitted for these ranges; the note says which scales get one (was: "not a rating scale")
    assert f"fitted on the scales 0-9, 1-5, 1-7, 0-10, ordinal, likert only and the rate ratio on counts; " \
           f"scale {canon!r} is neither" in eff["notes"]
    low = min(values)
    df.loc[0, "value"] = low - 1.0  # below a negative low end: still refused
    code, _, err = analyze_csv(tmp_path, df, capsys)
    assert code == 2 and f"row 2: {float(low - 1)!r} (control/m, scale {canon})" in err


def test_a_reversed_range_names_the_fix_not_every_value(tmp_path, capsys):
    code, _, err = analyze_csv(tmp_path, scored("9-0", [3]), capsys)
    assert code == 2 and "reversed range '9-0'" in err and "Fix: write 0-9." in err
    assert "outside" not in err  # was: "36 value(s) outside the declared scale"


@pytest.mark.parametrize("upper,lower", [("Likert", "likert"), ("Count", "count"), ("REAL", "real"),
                                         ("Ordinal", "ordinal")])
def test_scale_names_are_case_insensitive_and_analysed_as_the_lower_case_scale(upper, lower):
    df = scored(upper, range(1, 8))
    kw = dict(paired_design=False, n_boot=200, n_perm=500)
    a, b = compare(df, **kw), compare(df.assign(scale=lower), **kw)
    pd.testing.assert_frame_equal(a, b)  # was: "unknown value(s) ['Likert']"
    assert a["scale"].iat[0] == lower
    _, notes = validate_table(df, "m.csv")
    assert f"scale {upper!r} read as {lower!r}" in notes


def test_level_names_are_case_insensitive_too():
    df = scored("0-9", range(0, 10))
    clean, _ = validate_table(df.assign(level="Agent"), "m.csv")  # was: "column 'level' has ['Agent']"
    assert set(clean["level"]) == {"agent"}


def test_one_metric_with_one_scale_in_two_spellings_is_one_scale():
    df = scored("likert", range(1, 8))
    df.loc[0, "scale"] = "Likert"
    clean, _ = validate_table(df, "m.csv")
    assert set(clean["scale"]) == {"likert"}


# -- 3. a refused value is shown exactly ------------------------------------------------------------

def test_a_value_just_off_the_scale_is_shown_exactly(tmp_path, capsys):
    df = scored("0-9", range(0, 10))
    df.loc[4, "value"] = 9.000000000000002  # 0.1 * 3 * 30 style rounding: was shown as "9"
    code, _, err = analyze_csv(tmp_path, df, capsys)
    assert code == 2 and "row 6: 9.000000000000002 (control/m, scale 0-9)" in err


def test_different_session_values_are_shown_exactly():
    df = copied_onto_agents(session_counts()).assign(scale="real")
    df.loc[[0, 2], "value"] = 6.0
    df.loc[1, "value"] = np.nextafter(6.0, 7.0)  # was shown as "6, 6"
    with pytest.raises(TableError) as e:
        validate_table(df, "m.csv")
    assert "2 different values (6.0, 6.000000000000001)" in str(e.value)
