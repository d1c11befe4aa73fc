"""Factorial designs: main effects and interactions of factors that define the arms.

Per metric: session-level values (one per session) get OLS with heteroskedasticity-robust HC3
SEs (MacKinnon & White 1985; statsmodels OLS cov_type='HC3'), t on the residual df; agent-level
metrics with session ids get a MixedLM with a random intercept per session (statsmodels REML, the
same acceptance rules as the two-arm MixedLM), Wald t on sessions - cells df. Treatment coding:
each factor's first level (sorted) is the reference, so a main-effect term is the effect of that
level change with the other factors at their reference, and an interaction term is the difference
of differences. Estimated marginal means (Searle, Speed & Milliken 1980) are the model's
predictions per cell with CIs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from analysis.clustered import best_fit, standardise
from analysis.validate import TableError

NAN = float("nan")
TERM_COLUMNS = ["metric", "term", "estimate", "se", "ci_low", "ci_high", "df", "p", "model", "note"]
CELL_COLUMNS = ["metric", "cell", "n_units", "emm", "ci_low", "ci_high", "note"]
FACTOR_PREFIX = "factor_"


def factor_columns(df: pd.DataFrame) -> list[str]:
    """Columns named factor_<name> (the table's declared factors)."""
    return [c for c in df.columns if str(c).startswith(FACTOR_PREFIX)]


def factorial(table, factors: list[str], alpha: float = 0.05) -> pd.DataFrame:
    """One row per metric x model term (intercept excluded): estimate, se, CI, df, p, model, note.

    Input: a Table or tidy DataFrame with the factor columns (constant within a session). Errors:
    TableError naming a missing factor column, a structural column (arm, session, metric, value) or a
    factor that varies within an arm.
    """
    return _run(table, factors, alpha)[0]


def marginal_means(table, factors: list[str], alpha: float = 0.05) -> pd.DataFrame:
    """Estimated marginal means per metric x cell (factor combination) with CIs, from the same model."""
    return _run(table, factors, alpha)[1]


def _run(table, factors: list[str], alpha: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    from analysis.comparison import as_table  # avoid a module-level import circle

    df = as_table(table).df
    missing = [f for f in factors if f not in df.columns]
    if missing:
        raise TableError(f"factor column(s) {missing} not in the table (columns: {list(df.columns)}). "
                         "Fix: add one column per factor, constant within each arm.")
    _check_factors(df, factors)
    terms, cells = [], []
    for metric, sub in df.loc[df["value"].notna()].groupby("metric", sort=False):
        t, c = _fit_metric(metric, sub.copy(), factors, alpha)
        terms += t
        cells += c
    return pd.DataFrame(terms, columns=TERM_COLUMNS), pd.DataFrame(cells, columns=CELL_COLUMNS)


#: the table's own structure: never a factor (the arms are what the factors describe)
STRUCTURE = ("arm", "session", "metric", "value")
WHAT_A_FACTOR_IS = ("a factor column describes the arms: one value per arm, the same for every session and row "
                    "of the arm (e.g. the factor_* columns of a factorial run)")


def _check_factors(df: pd.DataFrame, factors: list[str]) -> None:
    """TableError naming a factor that is a structural column or varies within an arm."""
    for f in factors:
        if f in STRUCTURE:
            raise TableError(f"--factors {f}: {f!r} is a column of the table's structure, not a factor; "
                             f"{WHAT_A_FACTOR_IS}. Fix: name factor columns, e.g. --factors "
                             f"{','.join(factor_columns(df)) or 'factor_a,factor_b'}")
        levels = df.groupby("arm", sort=True)[f].nunique(dropna=False)
        if (levels > 1).any():
            arm = levels.index[levels.to_numpy() > 1][0]
            raise TableError(f"--factors {f}: {f!r} takes {int(levels[arm])} values within arm {arm!r}; "
                             f"{WHAT_A_FACTOR_IS}. Fix: name factor columns, e.g. --factors "
                             f"{','.join(factor_columns(df)) or 'factor_a,factor_b'}")


def _fit_metric(metric: str, sub: pd.DataFrame, factors: list[str], alpha: float) -> tuple[list, list]:
    import statsmodels.formula.api as smf

    names = {f: f"f{i}" for i, f in enumerate(factors)}
    sub = sub.rename(columns=names)
    short = list(names.values())
    for f in short:
        sub[f] = sub[f].astype(str)
    sub["sid"] = sub["arm"] + "\x00" + sub["session"]
    has_sessions = bool((sub["session"] != "").all())
    clustered = has_sessions and bool((sub.groupby("sid").size() > 1).any())
    rhs = " * ".join(f"C({f})" for f in short)
    n_cells = sub[short].drop_duplicates().shape[0]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # both models are fitted on standardised values (values ~1e12 with SD 1 lose ~1e-3 of
            # the estimates otherwise, see clustered.standardise) and transformed back below
            centre, unit = standardise(sub["value"].to_numpy(float))
            std = sub.assign(value=(sub["value"] - centre) / unit)
            if clustered:
                model = smf.mixedlm(f"value ~ {rhs}", std, groups="sid")
                fit, why = best_fit(model, param=None)
                if fit is None:
                    raise ValueError(why)
                k = len(fit.fe_params)
                b, cov = fit.fe_params.to_numpy(), np.asarray(fit.cov_params())[:k, :k]
                df_t = max(1, sub["sid"].nunique() - n_cells)
                spec = f"MixedLM (random intercept per session), Wald t on sessions - cells = {df_t} df"
                exog, bnames = np.asarray(model.exog), list(fit.fe_params.index)
            else:
                fit = smf.ols(f"value ~ {rhs}", std).fit(cov_type="HC3")
                b, cov, df_t = fit.params.to_numpy(), np.asarray(fit.cov_params()), float(fit.df_resid)
                spec = f"OLS on session values, HC3 robust SE, t on {int(df_t)} df"
                exog, bnames = np.asarray(fit.model.exog), list(fit.params.index)
    except Exception as exc:  # rank deficiency (empty cells), singular fits
        note = f"factorial model failed ({type(exc).__name__}: {exc})"
        return [dict(metric=metric, term="", estimate=NAN, se=NAN, ci_low=NAN, ci_high=NAN, df=NAN, p=NAN,
                     model="", note=note)], []
    b, cov = b * unit, cov * unit**2  # coefficients and SEs scale by unit; the centre goes to the intercept
    b[bnames.index("Intercept")] += centre
    se = np.sqrt(np.diag(cov))
    q = stats.t.ppf(1 - alpha / 2, df_t)
    back = {v: k for k, v in names.items()}
    terms = []
    for name, est, s in zip(bnames, b, se):
        if name == "Intercept":
            continue
        ok = np.isfinite(s) and s > 0
        terms.append(dict(metric=metric, term=_pretty(name, back), estimate=float(est), se=float(s),
                          ci_low=float(est - q * s) if ok else NAN, ci_high=float(est + q * s) if ok else NAN,
                          df=float(df_t), p=float(2 * stats.t.sf(abs(est / s), df_t)) if ok else NAN,
                          model=spec, note="" if ok else "SE not finite"))
    # a cell's fixed-effect design row is the same for all its rows: take the first one
    first = sub.reset_index(drop=True).drop_duplicates(short).sort_values(short)
    grid, x = first[short].reset_index(drop=True), exog[first.index.to_numpy()]
    emm, emm_se = x @ b, np.sqrt(np.einsum("ij,jk,ik->i", x, cov, x))
    count_col = "sid" if has_sessions else "value"
    n_units = sub.groupby(short)[count_col].nunique() if has_sessions else sub.groupby(short).size()
    cells = [dict(metric=metric, cell=", ".join(f"{back[f]}={row[f]}" for f in short),
                  n_units=int(n_units.loc[tuple(row[f] for f in short)] if len(short) > 1 else n_units.loc[row[short[0]]]),
                  emm=float(m), ci_low=float(m - q * s), ci_high=float(m + q * s), note="")
             for (_, row), m, s in zip(grid.iterrows(), emm, emm_se)]
    return terms, cells


def _pretty(name: str, back: dict[str, str]) -> str:
    """'C(f0)[T.on]:C(f1)[T.yes]' -> 'factor_a[on]:factor_b[yes]'."""
    parts = []
    for part in name.split(":"):
        if part.startswith("C(") and ")[T." in part:
            f, level = part[2:].split(")[T.", 1)
            parts.append(f"{back.get(f, f)}[{level.rstrip(']')}]")
        else:
            parts.append(part)
    return ":".join(parts)
