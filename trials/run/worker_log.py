"""Log lines of every worker reach `<run dir>/cli.log`.

Hydra configures logging only in the main process; joblib's loky workers are fresh processes
whose root logger has no handler, so their INFO lines (e.g. every unparseable reply) were lost.
`ensure_run_log(root)` is called at the start of each job: unless a handler of this process
already writes to `<root>/cli.log` (the main process under Hydra), it adds one (INFO, the Hydra
file format). Processes append with O_APPEND, one write per record, so lines stay whole.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - [pid %(process)d] %(message)s"
_HANDLER: logging.FileHandler | None = None


def ensure_run_log(root: str | Path) -> None:
    global _HANDLER
    path = os.path.abspath(Path(root) / "cli.log")
    logger = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == path for h in logger.handlers):
        return  # this process already logs there (Hydra's handler, or ours)
    if _HANDLER is not None:  # a worker reused for another run directory
        logger.removeHandler(_HANDLER)
        _HANDLER.close()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _HANDLER = logging.FileHandler(path, mode="a", encoding="utf-8", delay=True)
    _HANDLER.setLevel(logging.INFO)
    _HANDLER.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(_HANDLER)
    if logger.level > logging.INFO or logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
