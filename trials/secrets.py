"""What looks like an API key, wherever a value comes from (the command line, a config file, a
validation error), so that it is refused or shown as <hidden> and never reaches a file or the console.

One rule for every place: a value matching KEYLIKE (the token prefixes of the major providers:
OpenAI/Anthropic sk-, Stripe-style sk_, Google AIza, Hugging Face hf_, GitHub ghp_/gho_/ghu_/ghs_/
ghr_/github_pat_, GitLab glpat-, Slack xoxb-/xoxp-/xapp-, Groq gsk_, AWS access key ids AKIA/ASIA,
and Bearer ...), or any non-empty value of a field named api_key / key / token. `redact` hides the
same matches in free text (error messages, URLs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterator

KEYLIKE = re.compile(r"(?<![A-Za-z0-9])(?P<prefix>sk-ant-|sk-|sk_|AIza|hf_|gh[pousr]_|github_pat_|glpat-|"
                     r"xox[abpr]-|xapp-|gsk_)[A-Za-z0-9_\-]{16,}"
                     r"|(?<![A-Za-z0-9])(?P<aws>AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"
                     r"|(?P<bearer>Bearer\s+)\S{8,}")
SECRET_FIELDS = ("api_key", "key", "token")
HIDDEN = "<hidden>"


def looks_like_key(value: Any, field: str | None = None) -> bool:
    """True if `value` (of the config field `field`, a dotted name) must not be echoed or saved."""
    if value is None or isinstance(value, bool):
        return False
    text = str(value).strip().strip("'\"")
    if field is not None and str(field).rsplit(".", 1)[-1] in SECRET_FIELDS and text:
        return True
    return bool(KEYLIKE.search(text))


def redact(text: str) -> str:
    """`text` with every KEYLIKE match cut to its prefix + *** (which kind of key, never the key)."""
    return KEYLIKE.sub(lambda m: (m.group("prefix") or m.group("aws") or m.group("bearer")) + "***", text)


def shown(value: Any, limit: int = 200) -> str:
    """repr(value) for an error message, or <hidden> if anything in it looks like a key."""
    if isinstance(value, (dict, list, tuple)) and any(True for _ in key_paths(value)):
        return HIDDEN
    return HIDDEN if looks_like_key(value) else repr(value)[:limit]


def key_paths(tree: Any, prefix: str = "") -> Iterator[str]:
    """The dotted paths of every key-like value in a nested dict/list (e.g. 'llm.api_key')."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from key_paths(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from key_paths(v, f"{prefix}[{i}]")
    elif isinstance(tree, (str, bytes)) and looks_like_key(tree, prefix.rsplit("[", 1)[0] or None):
        yield prefix


def value_at(tree: Any, path: str) -> Any:
    """The value at a dotted path from key_paths (None if absent)."""
    node = tree
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            node = node[int(part[1:-1])] if isinstance(node, (list, tuple)) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
    return node


def file_holding(value: str, path: str, files: list[str], raw: Any = None) -> str | None:
    """The one of `files` (the YAML files a config was composed from, in Hydra's order: a later one
    wins) that set `value` at `path`: the last whose text holds the value, or its unresolved form
    `raw` (e.g. `${oc.env:X}`), preferring one with a line `<leaf>:`; None if no file holds it (a file
    that merely has a `<leaf>:` line is not named: that would be a guess)."""
    leaf = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]
    texts = []
    for f in map(Path, reversed(files)):
        try:
            texts.append((str(f), f.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    line = re.compile(rf"^\s*{re.escape(leaf)}\s*:", re.MULTILINE)
    forms = [str(v) for v in (value, raw) if isinstance(v, str) and v]
    tests = [lambda t, v=v: v in t and line.search(t) for v in forms] + [lambda t, v=v: v in t for v in forms]
    for match in tests:
        found = next((name for name, text in texts if match(text)), None)
        if found:
            return found
    return None
