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


def __getattr__(name: str):  # analyze pulls in power/tradeoff modules; import lazily
    if name in ("analyze", "AnalysisResult"):
        from analysis import result

        return getattr(result, name)
    raise AttributeError(name)
