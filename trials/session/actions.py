"""The plain-text action protocol: the Action record, the format text shown to the model, and
a tolerant parser for what a (possibly tiny) model writes back.

    TALK: <what you say>          TALK to <Name>: <what you say to one person>
    THINK: <a private thought>    REACH_OUT: <Name>          DONE

`parse_action` accepts case, a missing colon, quotes, markdown, list markers, a "Name:" speaker
prefix and preamble lines; the first action line wins; a placeholder echoed from the format is
rejected. `derive_seed` turns names and indices into stable per-call seeds.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, Sequence

ActionType = Literal["TALK", "THINK", "DONE", "REACH_OUT"]
FORMAT = ("Reply with ONE action on one line:\n"
          "TALK: <what you say to everyone>\n"
          "TALK to <Name>: <what you say to one person>\n"
          "THINK: <a private thought>\n"
          "REACH_OUT: <Name>\n"
          "DONE (when you have nothing to add now)")
REMINDER = "Answer with one line only, starting with TALK:, THINK:, REACH_OUT: or DONE."


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any parts (names, step, index...): same parts, same seed."""
    blob = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Action:
    type: ActionType
    content: str = ""
    target: str | None = None

    def line(self) -> str:
        """The action in protocol form, e.g. 'TALK to Ana: hello'."""
        if self.type == "DONE":
            return "DONE"
        if self.type == "REACH_OUT":
            return f"REACH_OUT: {self.target}"
        return f"{self.type}{' to ' + self.target if self.target else ''}: {self.content}"

    def key(self) -> tuple[str, str, str | None]:
        return self.type, " ".join(self.content.lower().split()), self.target


# ------------------------------------------------------------------------------------ parsing
_KW = re.compile(r"^(talk|say|speak|think|thought|done|reach[ _-]?out)\b(.*)$", re.I | re.S)
_KINDS = {"talk": "TALK", "say": "TALK", "speak": "TALK", "think": "THINK", "thought": "THINK",
          "done": "DONE"}
# "to <Name>: ..." -- a name may hold hyphens, apostrophes, dots, accents, any script; a dash
# separates only with spaces around it ("to Ana - hi"), so "Anne-Marie" stays whole
_TO = re.compile(r"^\(?\s*to\s+([^:()\n]{1,60}?)\s*\)?\s*(?:[:：]|\s[-–—]\s|,)\s*(.*)$", re.I | re.S)
_QUOTES = "\"'“”‘’`"


def _fold(name: str) -> str:
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def resolve_name(name: str, names: Sequence[str], first_name: bool = True) -> str | None:
    """Match a name the model wrote to a known name: case-insensitive (Unicode case folding,
    NFC), then (optionally) first name."""
    name = name.strip().strip(_QUOTES + ",!?*").strip()
    for cand in names:
        if _fold(cand) in (_fold(name), _fold(name.rstrip("."))):
            return cand
    if not first_name:
        return None
    for cand in names:
        if name and cand.split()[0].lower() == name.split()[0].lower():
            return cand
    return None


def _clean(line: str) -> str:
    line = re.sub(r"^\s*(?:[-*>#•]+|\d{1,2}[.)])\s*", "", line)  # list markers, not leading numbers
    return line.replace("**", "").replace("__", "").strip().strip("`").strip()


def _content(text: str) -> str:
    text = text.strip().lstrip(":-–— ").strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _known_target(rest: str, names: Sequence[str]) -> tuple[str, str] | None:
    """("Anne-Marie Dubois", content) when `rest` is "to <a known full name><separator> content"
    (longest name first, so a name is never cut at its hyphen or apostrophe)."""
    m = re.match(r"^\(?\s*to\s+", rest, re.I)
    if not m:
        return None
    tail = unicodedata.normalize("NFC", rest[m.end():])
    for cand in sorted(names, key=len, reverse=True):
        c = unicodedata.normalize("NFC", cand)
        if tail[:len(c)].casefold() == c.casefold():
            after = re.match(r"^\s*\)?\s*(?:[:：]|\s[-–—]\s|,)?\s*", tail[len(c):])
            if after and (after.group(0).strip() or not tail[len(c):len(c) + 1].isalnum()):
                return cand, tail[len(c) + after.end():]
    return None


def parse_action(text: str, names: Sequence[str] = (), self_name: str | None = None) -> Action | None:
    """The first action in a model reply, or None when there is none (see the module docstring).
    `names` are the other agents (for targets), `self_name` strips a speaker prefix."""
    speakers = [n for n in [self_name, *names] if n]
    lines = [_clean(raw) for raw in (text or "").splitlines()]
    lines = [ln for ln in lines if ln]
    for i, line in enumerate(lines):
        for who in speakers:  # "Ana: TALK: hi" / "Ana: hi"
            m = re.match(rf"^{re.escape(who)}\s*:\s*(.*)$", line, re.I | re.S)
            if m:
                line = m.group(1).strip()
                break
        m = _KW.match(line)
        if not m:
            continue
        word = m.group(1).lower()
        kind = _KINDS.get(word, "REACH_OUT")
        rest = m.group(2)
        if kind == "DONE":
            return Action("DONE")
        if kind == "REACH_OUT":
            who_raw = _content(re.sub(r"^\s*[:\-]?\s*(to\s+)?", "", rest, flags=re.I))
            if not who_raw:
                continue
            return Action("REACH_OUT", target=resolve_name(who_raw, names) or who_raw)
        target = None
        known = _known_target(rest, names) if kind == "TALK" else None
        mt = _TO.match(rest.strip())
        if known:
            target, rest = known
        elif mt and kind == "TALK":
            target, rest = resolve_name(mt.group(1), names), mt.group(2)
        elif kind == "TALK" and re.match(r"^\s*to\s+", rest, re.I):  # "TALK to Ana hello" (no colon)
            words = rest.split()
            for n in range(min(3, len(words) - 1), 0, -1):
                hit = resolve_name(" ".join(words[1:1 + n]), names, first_name=n == 1)
                if hit:
                    target, rest = hit, " ".join(words[1 + n:])
                    break
        content = _content(rest) or (_content(lines[i + 1]) if i + 1 < len(lines) else "")
        if not content or re.fullmatch(r"<[^<>]*>", content):  # empty, or the format's placeholder echoed
            continue
        return Action(kind, content, target if target != self_name else None)
    if self_name and lines:  # a bare "Ana: some words" line is what Ana says
        m = re.match(rf"^{re.escape(self_name)}\s*:\s*(.+)$", lines[0], re.I | re.S)
        if m and _content(m.group(1)):
            return Action("TALK", _content(m.group(1)))
    return None


def first_sentences(text: str, n: int = 2, limit: int = 300) -> str:
    """The first n sentences of the first non-empty line (for prose_as_talk); '' if under 2 words."""
    line = next((_content(_clean(ln)) for ln in (text or "").splitlines() if _clean(ln)), "")
    parts = re.split(r"(?<=[.!?])\s+", line)
    out = " ".join(parts[:n])[:limit].strip()
    return out if len(out.split()) >= 2 else ""
