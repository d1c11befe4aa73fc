"""Output folders: "make this folder, or say why it cannot be made" (one helper for every command
that writes a folder: `--out` of analyze, report and validate, `hydra.run.dir`, ...).

`folder_problem(path)` answers without leaving anything behind: it creates the missing folders to
find out (the only test that holds for /proc, read-only mounts, quotas and root alike) and removes
the ones it made. Callers turn the answer into their own error (exit 2, naming the option)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def _first_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if os.path.lexists(parent):
            return parent
    return Path(path.anchor or ".")


def folder_problem(path: str | Path) -> str | None:
    """None if `path` is (or can be made) a writable folder, else why not, in words that name the
    real obstacle (e.g. "afile is a file, not a folder"). Makes nothing that stays."""
    path = Path(path).expanduser().absolute()
    existing = _first_existing(path)
    if existing.exists() and not existing.is_dir():
        return (f"{existing} is a file, not a folder" if existing == path
                else f"{existing} is a file, so no folder can be made inside it")
    if existing == path:
        try:
            tempfile.TemporaryFile(dir=path).close()
        except OSError as exc:
            return f"{path} is a folder but not writable ({exc.strerror or exc})"
        return None
    made: list[Path] = []
    try:
        for folder in reversed([p for p in (path, *path.parents) if p not in (existing, *existing.parents)]):
            folder.mkdir()
            made.append(folder)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"cannot create folders in {existing} ({exc.strerror})"
        return f"cannot create {path}: {existing} does not accept new folders ({exc.strerror or exc})"
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
    return None


def out_folder_message(option: str, path: str | Path) -> str | None:
    """`option path: cannot write there: <why>; fix: ...` or None (the folder can be written)."""
    why = folder_problem(path)
    if why is None:
        return None
    return f"{option} {path}: cannot write the output there: {why}; fix: give a writable folder"
