"""Statistics for persona-trials metric tables (never imports `trials`).

    table = load_table("runs/x")            # run dir, metrics .csv/.parquet, or TinyTroupe .json
    effects = compare(table, control="control")
    result = analyze(table); result.write("runs/x/analysis")
"""

from analysis.comparison import compare
from analysis.io import Table, load_table
from analysis.validate import TableError

__all__ = ["AnalysisResult", "Table", "TableError", "analyze", "compare", "load_table"]


def __getattr__(name: str):  # analyze pulls in power/tradeoff modules; import lazily
    if name in ("analyze", "AnalysisResult"):
        from analysis import result

        return getattr(result, name)
    raise AttributeError(name)
