"""Statistics for persona-trials metric tables (never imports `trials`).

    table = load_table("runs/x")            # run dir, metrics .csv/.parquet, or TinyTroupe .json
    effects = compare(table, control="control")
    result = analyze(table); result.write("runs/x/analysis")
    terms = factorial(table, factors=["factor_correction", "factor_variety"])
"""

from analysis.balance import balance
from analysis.comparison import compare
from analysis.factorial_model import factorial, marginal_means
from analysis.io import Table, load_table
from analysis.validate import TableError

__all__ = ["AnalysisResult", "Table", "TableError", "analyze", "balance", "compare", "factorial", "load_table",
           "marginal_means"]
# validity (human data, the judge): imported lazily too
_LAZY = {"validate_answers": "validation", "compare_answers": "validation", "read_human": "validation",
         "validate_run": "validation_run", "judge_reliability": "judge_reliability", "arm_means": "arm_means",
         "judge_agreement": "judge_reliability"}
__all__ += sorted(_LAZY)


def __getattr__(name: str):  # analyze pulls in power/tradeoff modules; import lazily
    if name in ("analyze", "AnalysisResult"):
        from analysis import result

        return getattr(result, name)
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"analysis.{_LAZY[name]}"), name)
    raise AttributeError(name)
