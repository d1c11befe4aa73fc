"""One parsing layer for every numeric or categorical answer a model gives: 0-9 judge scores,
1-5 votes, and choices among options. Used by the judge (`trials.judging.judge`) and by
extraction (`trials.judging.extract`). No value is ever guessed: a reply that does not state one
answer unambiguously is missing, with a reason from `MISSING_REASONS`.

Grammar (in this order; the first rule that applies decides). Scores and votes share it, with the
same labels (`LABELS`: score, vote, rating, grade, answer); only the scale differs:

1. **JSON.** A JSON object in the reply (bare, or in a ```json fence) with a label as a key
   (`{"score": 7}`, `{"vote": "4"}`) gives the answer.
2. **Scale restatements are never the answer.** A range whose ends are a scale's ends ("1-5",
   "0 to 9", "1–10", "between 1 and 5", "(0-9)"), the denominator of "x out of N" / "x/N" (the x
   stays: "8/10" reads 8), a lone "(out of 9)" and "on a scale of 10" are removed. The restated
   scale must be the asked one (for the 0-9 score also the 0-10 habit, see rule 6): an answer
   given on another scale ("Vote: 5/10", "On a scale of 1-10, I'd say 4" for a 1-5 vote) is
   `out of range`, never rescaled or read on the asked scale. Only the text before "Reason:" counts.
3. **Numbers.** Digits with an optional sign attached ("-1", "+3", "−2" with the Unicode minus or
   an en dash, "minus two": read as negative, never as 1, 3, 2); a decimal ("7.5") is not a whole number
   and "7,5" is two numbers, both `unparseable`; "-0" is 0.
4. **Anchored on the label.** A number after the label word ("Score: 7", "**Vote:** four",
   "my rating is 3") is the answer; labels before "Reason:" are read first (a label word inside
   the reason is prose). Every labelled number must agree, and any further number in the answer
   segment after it (digits or a number word; "no one", "this one", "one of" are pronouns) is two
   answers, `unparseable`: a range or pair ("Score: 4-5", "Vote: 3 or 4", "Vote: 3 & 4", "Vote: 3 —
   4", "between 3 and 4"), a hedge or correction ("Vote: 4 out of 5, maybe 3", "Score: 6 (perhaps
   7)", "Vote: 3\nActually, 4", "Score: 7. Actually 8."), two ratings ("4/5 for taste, 2/5 for
   price"). The answer segment ends at the stated reason ("Reason:", a "## Reason" heading) or at a
   reason connective in the answer's sentence ("because", "since", "given that", "due to": "Score: 7
   since 3 of her 4 answers fit" is 7, but a hedged number after it, "because it is cheap, or maybe
   4", is still two answers); else it runs to the end of the reply, so prose on the next line with a
   number ("Vote: 3\nI liked 2 of the features") is `unparseable` too: a newline is no reason label,
   and missing is better than a wrong number. Numbers in the reason are ignored.
5. **No label:** the reply's numbers (digits only; number words are prose here) after rule 2;
   exactly one distinct number is the answer, two or more different ones are `unparseable`.
6. **Range.** A value inside [lo, hi] is kept; with `clamp=1` (the 0-9 score only) a value one step
   above the top (the common "10" on a 0-9 scale, also "10/10") is set to the top and flagged
   `clamped`, and a restated 0-10 scale is accepted as that habit; anything further is missing,
   reason `out of range` (so "Vote: -1", "Score: -1", "Vote: 0" are `out of range`).

Missing reasons (`MISSING_REASONS`, the vocabulary of `metrics.csv`'s `missing_reason`):
`no answer` (empty reply, a refusal, or nobody to ask), `unparseable` (a reply without one clear
answer), `out of range`, `call failed` (the LLM call failed after its retries), `not delivered`
(the measurement was not reached). The free-text why goes to `detail` (`missing_detail` column).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

NO_ANSWER, UNPARSEABLE, OUT_OF_RANGE, CALL_FAILED, NOT_DELIVERED = (
    "no answer", "unparseable", "out of range", "call failed", "not delivered")
#: The fixed vocabulary of `missing_reason` in metrics tables.
MISSING_REASONS = (NO_ANSWER, UNPARSEABLE, OUT_OF_RANGE, CALL_FAILED, NOT_DELIVERED)
#: Reasons that a later attempt may fix (`run.resume_dir` re-measures them).
TRANSIENT_REASONS = (CALL_FAILED,)
CLAMPED = "clamped"

_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9, "ten": 10}
#: a sign attached to the digits ("-1", "+3", "−2", "–2"); a dash after a digit is a range ("4-5")
_SIGNED = r"(?:[+\-\u2212\u2013](?=\d))?\d+(?:\.\d+)?"
_NUM = r"(?<![\w.])(" + _SIGNED + "|" + "|".join(_WORDS) + r")(?![\w]|\.\d)"
#: one alternative after a labelled number: "4-5", "3 or 4", "4, 5", "4 out of 5, maybe 3", "6 (perhaps 7)"
_HEDGE = r"(?:or|maybe|perhaps|possibly|probably|rather|actually|even|say|make\s+(?:it|that)|more\s+like)"
_ALTERNATIVE = (r"([ \t]*(?:[-\u2013/,;(]|\bto\b)?[ \t]*(?:" + _HEDGE + r"\b[ \t,:]*)*" + _NUM + ")?")
#: the labels of a numeric answer: the same for scores and votes, so both read a reply alike
LABELS = ("score", "vote", "rating", "grade", "answer")
_REFUSAL = re.compile(r"\b(i\s*(?:can(?:'|no)?t|cannot|won'?t|am unable|'m unable|am not able|'m not able)|"
                      r"as an ai|i'?m sorry|i apologi[sz]e|unable to (?:rate|score|answer|say)|"
                      r"not (?:possible|able) to (?:rate|score|say|tell))", re.I)
_COMMON_SCALES = {(0, 9), (0, 10), (1, 10), (1, 9), (1, 5), (0, 5), (1, 7), (0, 100), (1, 100)}


@dataclass(frozen=True)
class Answer:
    """One parsed answer. `value` is None exactly when `missing_reason` is set."""

    value: Any = None
    missing_reason: str = ""  # one of MISSING_REASONS, "" when value is set
    detail: str = ""  # free text: what the reply said, what went wrong
    flag: str = ""  # "clamped" when an out-of-range value was set to the scale's end
    reason: str = ""  # the respondent's stated reason ("Reason: ..."), when given

    @property
    def ok(self) -> bool:
        return self.value is not None


def missing(reason: str, detail: str = "") -> Answer:
    if reason not in MISSING_REASONS:
        raise ValueError(f"missing reason {reason!r} is not one of {MISSING_REASONS}")
    return Answer(missing_reason=reason, detail=detail[:300])


def stated_reason(text: str) -> str:
    """The text after "Reason:" to the end, whitespace-collapsed ("" when the reply has none)."""
    r = re.search(r"reason\w*\**\s*[:\-=]\s*(.+)", text or "", re.I | re.S)
    return " ".join(r.group(1).split())[:500] if r else ""


def _json_value(text: str, labels: Sequence[str]) -> tuple[bool, Any]:
    """(found, value) for the first JSON object in `text` holding one of `labels` as a key."""
    for m in re.finditer(r"\{[^{}]*\}", text):
        try:
            obj = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(obj, dict):
            for key, value in obj.items():
                if str(key).lower() in labels:
                    return True, value
    return False, None


def _to_number(token: str) -> float:
    token = token.lower().replace("\u2212", "-").replace("\u2013", "-")
    return float(_WORDS[token]) if token in _WORDS else float(token)


def _strip_scales(text: str, lo: int, hi: int, clamp: int = 0) -> tuple[str, list[tuple[float | None, str]]]:
    """Remove scale restatements (grammar rule 2); keep the numerator of "x out of N" / "x/N".
    Returns the text and the restatements of *another* scale than [lo, hi] (with `clamp`, also
    [lo, hi + clamp]): (the numerator they belong to, or None for a whole scale; the text)."""
    tops = set(range(hi, hi + clamp + 1))
    foreign: list[tuple[float | None, str]] = []

    def scale(a: str, b: str) -> bool:
        return (int(_to_number(a)), int(_to_number(b))) in _COMMON_SCALES | {(lo, t) for t in tops}

    def drop(m: re.Match, bound: float | None, top: str | None, keep: str = " ") -> str:
        if top is not None and int(_to_number(top)) not in tops:
            foreign.append((bound, " ".join(m.group(0).split())))
        return keep

    def drop_range(m: re.Match) -> str:
        a, b = m.group(1), m.group(2)
        if not scale(a, b):
            return m.group(0)
        if (int(_to_number(a)), int(_to_number(b))) not in {(lo, t) for t in tops}:
            foreign.append((None, " ".join(m.group(0).split())))
        return " "

    num = r"(\d+|" + "|".join(_WORDS) + r")"
    # "8/10", "4 out of 5", "four out of five": the numerator is the answer, the denominator goes
    text = re.sub(rf"(?<![\w.]){num}\s*(?:/|\bout\s+of\b|\bof\b)\s*{num}(?!\w|\.\d)",
                  lambda m: drop(m, _to_number(m.group(1)), m.group(2), m.group(1) + " "), text, flags=re.I)
    # a lone denominator or scale size: "(out of 9)", "on a scale of 10"
    text = re.sub(rf"\b(?:out\s+of|scale\s+of)\s+{num}(?!\w|\.\d|\s*(?:-|–|—|to)\s*\d)",
                  lambda m: drop(m, None, m.group(1)), text, flags=re.I)
    text = re.sub(rf"\bbetween\s+{num}\s+and\s+{num}\b", drop_range, text, flags=re.I)
    text = re.sub(rf"(?<![\w.]){num}\s*(?:-|–|—|to)\s*{num}(?!\w|\.\d)", drop_range, text, flags=re.I)
    return text, foreign


#: where a stated reason begins: "Reason:" (also "Reason -", "**Reason**:") or a "## Reason" heading line
_REASON = r"reason\w*\**\s*[:\-=]|^[ \t#*]*reasons?[ \t#*]*$"
#: words that start a reason in the answer's own sentence ("Score: 7 since 3 of her 4 answers fit")
_CONNECTIVE = r"\b(?:because|since|given\s+that|due\s+to)\b"
#: a number that is still an alternative after a connective ("because it is cheap, or maybe 4")
_HEDGED = r"\b(?:or|maybe|perhaps|possibly|rather|actually|no|wait|instead)\b[\s,:;.!]*" + _NUM
#: "one" as a pronoun, not a number ("no one", "this one", "one of them")
_PRONOUN_ONE = r"\b(?:no|the|this|that|each|every|any|which)\s+one\b|\bone\s+(?:of|another)\b"


def _reason_start(text: str, start: int = 0, connectives: bool = False) -> int:
    """Where the stated reason ("Reason: ...", a "## Reason" heading; with `connectives` also
    "because"/"since"...) begins in `text` from `start`, else its length."""
    pattern = _REASON + ("|" + _CONNECTIVE if connectives else "")
    r = re.compile(pattern, re.I | re.M).search(text, start)
    return r.start() if r else len(text)


def _second_answer(clean: str, label: re.Match, labelled: set[int]) -> str:
    """A further number in the answer segment after `label`'s number (grammar rule 4), or "".
    The segment runs to the stated reason or a connective, else to the end of the reply (a newline
    does not end it: "Vote: 3\nActually, 4"); a hedged number after a connective still counts.
    `labelled`: where the labelled numbers start (they are compared, not counted, here)."""
    end = _reason_start(clean, label.end(1), connectives=True)
    stop = _reason_start(clean, label.end(1))
    segment = re.sub(_PRONOUN_ONE, lambda m: " " * len(m.group(0)), clean[:stop], flags=re.I)
    for n in re.finditer(_NUM, segment[:end], re.I):
        if n.start() >= label.end(1) and n.start(1) not in labelled:
            return segment[label.start():n.end()]
    h = re.search(_HEDGED, segment[end:], re.I)
    return segment[label.start():end + h.end()] if h else ""


def parse_number(text: str | None, *, labels: Sequence[str] = LABELS, lo: int, hi: int, clamp: int = 0) -> Answer:
    """One whole number in [lo, hi] from a model reply (see the module docstring for the grammar).

    `labels`: the label words, lower case (default `LABELS`). `clamp`: how many steps above `hi`
    are set to `hi` with flag "clamped" (0 = none; below `lo` is never clamped).
    Returns an `Answer`: value int, or None with missing_reason in MISSING_REASONS."""
    raw = text or ""
    reason = stated_reason(raw)
    if not raw.strip():
        return missing(NO_ANSWER, "empty reply")
    labels = tuple(lbl.lower() for lbl in labels)
    found, value = _json_value(raw, labels)
    if found:
        try:
            number = _to_number(str(value).strip())
        except (ValueError, KeyError):
            return missing(UNPARSEABLE, f"JSON {labels[0]} is not a number: {value!r}")
        return _in_range(number, lo, hi, clamp, raw, reason)
    marked = re.sub(r"[*_`#]+", " ", raw)
    # "minus two" / "negative 1" is a negative number, not 2 or 1 (rule 3)
    marked = re.sub(r"\b(?:minus|negative)\s+(\d+(?:\.\d+)?|" + "|".join(_WORDS) + r")\b",
                    lambda m: "-" + (m.group(1) if m.group(1)[0].isdigit() else str(_WORDS[m.group(1).lower()])),
                    marked, flags=re.I)
    clean, _ = _strip_scales(marked, lo, hi, clamp)
    # restatements of another scale in the answer (before the reason) make its number foreign
    _, foreign = _strip_scales(marked[:_reason_start(marked)], lo, hi, clamp)
    label = r"\b(?:" + "|".join(re.escape(lbl) for lbl in labels) + r")s?\b"
    matches = []
    for m in re.finditer(label + r"[^\n\d]{0,25}?" + _NUM + _ALTERNATIVE, clean, re.I):
        between = clean[m.start():m.start(1)]
        if not re.search(r"[.!?]\s", between):  # else the number belongs to another sentence
            matches.append(m)
    # a label word inside the reason is prose ("the answer mentions 2 hobbies"), unless only there
    head = [m for m in matches if m.start() < _reason_start(clean)] or matches
    for m in head:
        second = m.group(0) if m.group(2) else _second_answer(clean, m, {h.start(1) for h in head})
        if second:
            return missing(UNPARSEABLE, f"two answers: {' '.join(second.split())[:150]!r}")
    labelled = [_to_number(m.group(1)) for m in head]
    if labelled:
        if len(set(labelled)) > 1:
            return missing(UNPARSEABLE, f"different labelled answers {sorted(set(labelled))} in {raw[:150]!r}")
        return _on_scale(labelled[0], foreign, lo, hi, clamp, raw, reason)
    body = clean[:_reason_start(clean)] or clean
    # without a label only digits count: number words ("no one", "one of them") are prose
    numbers = {_to_number(t) for t in re.findall(r"(?<![\w.])(" + _SIGNED + r")(?!\w|\.\d)", body)}
    if len(numbers) == 1:
        return _on_scale(numbers.pop(), foreign, lo, hi, clamp, raw, reason)
    if len(numbers) > 1:
        return missing(UNPARSEABLE, f"several numbers {sorted(numbers)} and no label in {raw[:150]!r}")
    if _REFUSAL.search(raw):
        return missing(NO_ANSWER, f"refused: {raw[:150]!r}")
    return missing(UNPARSEABLE, f"no number in {raw[:150]!r}")


def _on_scale(number: float, foreign: list[tuple[float | None, str]], lo: int, hi: int, clamp: int,
              raw: str, reason: str) -> Answer:
    """`_in_range`, unless the answer was given on another scale (rule 2): never rescaled."""
    other = [text for bound, text in foreign if bound is None or bound == number]
    if other:
        return missing(OUT_OF_RANGE, f"{number:g} is given on another scale ({other[0]!r}) than the asked "
                                     f"{lo}-{hi}; not rescaled, in {raw[:150]!r}")
    return _in_range(number, lo, hi, clamp, raw, reason)


def _in_range(number: float, lo: int, hi: int, clamp: int, raw: str, reason: str) -> Answer:
    if number != int(number):
        return missing(UNPARSEABLE, f"{number:g} is not a whole number on the {lo}-{hi} scale")
    n = int(number)
    if lo <= n <= hi:
        return Answer(value=n, reason=reason)
    if hi < n <= hi + clamp:  # only above the top: a negative answer is not a habit, never clamped
        return Answer(value=min(hi, max(lo, n)), flag=CLAMPED, reason=reason,
                      detail=f"{n} outside {lo}-{hi}, clamped to {min(hi, max(lo, n))}")
    return missing(OUT_OF_RANGE, f"{n} outside {lo}-{hi} in {raw[:150]!r}")


def parse_score(text: str | None) -> Answer:
    """A 0-9 judge score ("Score: 7"); a 10 (a 0-10 habit) is clamped to 9 and flagged."""
    return parse_number(text, lo=0, hi=9, clamp=1)


def parse_vote(text: str | None, lo: int = 1, hi: int = 5) -> Answer:
    """A 1-5 vote ("Vote: 4"); out of range is missing (no clamp: a 6 or a 0 is not on this scale)."""
    return parse_number(text, lo=lo, hi=hi, clamp=0)


def parse_choice(text: str | None, options: Sequence[str]) -> Answer:
    """One of `options` (returned as written in `options`) from "Choice: <option>", a JSON
    {"choice": ...}, or a reply naming exactly one option (rules of `resolve_option`)."""
    raw = text or ""
    if not raw.strip():
        return missing(NO_ANSWER, "empty reply")
    found, value = _json_value(raw, ("choice", "option", "answer"))
    if found:
        candidate = str(value)
    else:
        m = re.search(r"(?:choice|option|answer)\**\s*[:\-]\s*(.+)", raw, re.I)
        candidate = m.group(1).splitlines()[0] if m else raw
    hit = resolve_option(candidate, options)
    if hit.ok:
        return Answer(value=hit.value, reason=stated_reason(raw))
    if _REFUSAL.search(raw) and not _mentions(_norm(candidate), options):
        return missing(NO_ANSWER, f"refused: {raw[:150]!r}")
    return missing(hit.missing_reason, f"{hit.detail} in {raw[:150]!r}")


#: a negation before an option in its clause ("Definitely not yes", "I would not say no", "I wouldn't pick X")
_NEGATION = re.compile(r"\b(?:not|never|no|nor|neither|none|cannot|without|except|against|instead\s+of|"
                       r"rather\s+than)\b|n['\u2019]t\b", re.I)
#: where a clause ends: the negation of one clause does not reach into the next
_CLAUSE = re.compile(r"[.;:!?,\n(]|\bbut\b", re.I)


def _norm(text: str) -> str:
    """Case-folded NFC text without markdown marks, whitespace collapsed, outer quotes/full stop cut."""
    text = unicodedata.normalize("NFC", re.sub(r"[*_`]+", "", text)).casefold()
    return " ".join(text.split()).strip(" .!\"'\u201c\u201d\u2018\u2019")


def _mentions(key: str, options: Sequence[str]) -> list[tuple[str, re.Match]]:
    """(option, match) for each option `key` names as a whole word or phrase; a mention inside a
    longer option's mention ("yes" inside "yes, but later") is that longer option's, not its own."""
    found = [(o, m) for o in options if _norm(o)
             for m in re.finditer(rf"(?<!\w){re.escape(_norm(o))}(?!\w)", key)]
    return [(o, m) for o, m in found
            if not any(m2.start() <= m.start() and m.end() <= m2.end() and m2.end() - m2.start() > m.end() - m.start()
                       for _, m2 in found)]


def resolve_option(raw: str, options: Sequence[str]) -> Answer:
    """The option `raw` states, returned as written in `options`, or missing `unparseable` with why.

    Accepted: the option itself (case, markdown, outer quotes and a full stop aside), or a reply
    that names exactly one option as a whole word or phrase, not negated in its clause, and no
    other option ("The group chose the night market."). Never accepted (a guess): part of an option
    ("Sure" for "not sure", "garden" for "Community garden"), a negated option ("Definitely not
    yes", "I would not say no"), or a reply naming several options (even one of them negated)."""
    key = _norm(raw)
    exact = [o for o in options if _norm(o) == key]
    if exact:
        return Answer(value=exact[0])
    named = _mentions(key, options)
    distinct = list(dict.fromkeys(o for o, _ in named))
    if len(distinct) > 1:
        return missing(UNPARSEABLE, f"names several options {distinct}")
    if distinct:
        for _, m in named:
            clause = _CLAUSE.split(key[:m.start()])[-1]
            if _NEGATION.search(clause):
                return missing(UNPARSEABLE, f"option {distinct[0]!r} is negated ({' '.join((clause + m.group(0)).split())!r})")
        return Answer(value=distinct[0])
    words = set(re.findall(r"\w+", key))
    partial = [o for o in options if key and (key in _norm(o) or words & set(re.findall(r"\w+", _norm(o))))]
    if partial:
        return missing(UNPARSEABLE, f"{raw.strip()[:80]!r} is only part of option {partial}, not a whole option")
    return missing(UNPARSEABLE, f"no option of {list(options)}")
