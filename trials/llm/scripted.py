"""The scripted backend: a deterministic, seeded responder for tests and dry runs.

It is NOT a language model. It never reads the meaning of a prompt: it hashes (seed, messages) and
answers in the shape the caller's `protocol` asks for, so that the whole pipeline (agents, judges,
extraction, analysis) can run end to end, fast and reproducibly. Its texts are built from word
lists so that downstream counting (unique ideas, de-duplication) has varied material; any effect
measured on scripted runs is an artefact of the hash, never a finding.

Rules let a test force answers or failures: the first rule whose regex matches the concatenated
prompt wins; `times` limits how often a rule fires (None = always).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from trials.llm.base import Completion, PermanentLLMError, Request, TransientLLMError
from trials.llm.schema_tools import example_instance

_VERBS = ["launch", "build", "offer", "design", "host", "test", "bundle", "rent out", "sponsor",
          "automate", "crowdsource", "subscribe to", "repair", "share", "gamify", "recycle"]
_ADJS = ["solar", "portable", "community", "weekly", "smart", "low-cost", "modular", "quiet",
         "local", "premium", "foldable", "shared", "eco-friendly", "voice-controlled", "pop-up",
         "family-sized"]
_NOUNS = ["bike trailer", "coffee cart", "tool library", "travel kit", "garden robot", "language club",
          "repair cafe", "meal box", "charging station", "reading app", "camping stove", "pet tracker",
          "rain jacket", "music workshop", "delivery drone", "water filter", "board game", "desk lamp"]
_AUDIENCES = ["students", "retirees", "new parents", "small shops", "commuters", "hikers", "nurses",
              "remote workers", "tourists", "farmers", "teenagers", "neighbours"]
_OPENERS = ["What if we", "I think we should", "How about we", "Maybe we could", "My idea: we",
            "Honestly, we could", "Let's"]
_THOUGHTS = ["I am not sure this group listens to me.", "That price sounds too high to me.",
             "I should say something practical.", "This reminds me of my last job.",
             "I wonder who would actually pay for it.", "I need more details before I agree."]
_REASONS = ["The reply mostly fits the description.", "The answer drifts from the persona.",
            "The wording is fluent and on topic.", "It contradicts an earlier statement.",
            "The claim is only partly supported.", "The text is short but relevant."]


def idea_sentence(rng: random.Random) -> str:
    """A seeded idea-proposing sentence, e.g. 'How about we rent out a solar tool library for hikers?'"""
    opener = rng.choice(_OPENERS)
    end = "?" if opener in ("What if we", "How about we") else "."
    return (f"{opener} {rng.choice(_VERBS)} a {rng.choice(_ADJS)} "
            f"{rng.choice(_NOUNS)} for {rng.choice(_AUDIENCES)}{end}")


def _phrase(rng: random.Random) -> str:
    return f"{rng.choice(_ADJS)} {rng.choice(_NOUNS)} for {rng.choice(_AUDIENCES)}"


@dataclass
class Rule:
    """Force a reply (`reply`: text or `f(Request) -> text`) or an error ("transient"/"permanent")
    for prompts matching `match` (a regex searched in all message contents joined by newlines)."""

    match: str
    reply: str | Callable[[Request], str] | None = None
    error: str | None = None
    times: int | None = None
    _used: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if (self.reply is None) == (self.error is None):
            raise ValueError(f"scripted rule {self.match!r}: give exactly one of 'reply' or 'error'")
        if self.error not in (None, "transient", "permanent"):
            raise ValueError(f"scripted rule {self.match!r}: error must be 'transient' or 'permanent', got {self.error!r}")
        self._regex = re.compile(self.match, re.S)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> "Rule":
        unknown = set(m) - {"match", "reply", "error", "times"}
        if unknown or "match" not in m:
            raise ValueError(f"scripted rule {dict(m)!r}: keys are match (required), reply | error, times; "
                             f"unknown: {sorted(unknown)}")
        return cls(match=m["match"], reply=m.get("reply"), error=m.get("error"), times=m.get("times"))


class ScriptedBackend:
    """Deterministic test double (not a language model); see the module docstring."""

    name = "scripted"
    supports_json_schema = True
    supports_logprobs = True

    def __init__(self, rules: Sequence[Rule | Mapping[str, Any]] = (), model: str = "scripted"):
        self.model = model
        self.rules = [r if isinstance(r, Rule) else Rule.from_mapping(r) for r in rules]
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "rules": self.rules}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def _rng(self, request: Request) -> random.Random:
        blob = json.dumps([request.seed, [m.as_dict() for m in request.messages], request.schema],
                          sort_keys=True)
        return random.Random(int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big"))

    def _rule_for(self, prompt: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if (rule.times is None or rule._used < rule.times) and rule._regex.search(prompt):
                    rule._used += 1
                    return rule
        return None

    def complete(self, request: Request) -> Completion:
        prompt = "\n".join(m.content for m in request.messages)
        rng = self._rng(request)
        rule = self._rule_for(prompt)
        data = None
        if rule is not None and rule.error is not None:
            err = TransientLLMError if rule.error == "transient" else PermanentLLMError
            raise err(f"scripted rule {rule.match!r} raised a {rule.error} error")
        protocol = "json" if request.schema is not None else request.protocol
        if rule is not None:
            text = rule.reply(request) if callable(rule.reply) else str(rule.reply)
        elif protocol == "json":
            data = example_instance(request.schema or {"type": "object", "properties": {
                "answer": {"type": "string"}}}, rng, _phrase)
            text = json.dumps(data)
        elif protocol == "action":
            text = self._action(rng)
        elif protocol == "score":
            text = f"Score: {rng.randint(0, 9)}\nReason: {rng.choice(_REASONS)}"
        else:
            text = idea_sentence(rng)
        if request.max_tokens and len(text) > request.max_tokens * 6 and protocol != "json":
            text = text[: request.max_tokens * 6]
        digit_probs = None
        if request.score_digits or protocol == "score":
            digit_probs = _digit_probs(text, rng)
        return Completion(text=text, tokens_in=max(1, len(prompt) // 4), tokens_out=max(1, len(text) // 4),
                          digit_probs=digit_probs, data=data)

    @staticmethod
    def _action(rng: random.Random) -> str:
        roll = rng.random()
        if roll < 0.65:
            return f"TALK: {idea_sentence(rng)}"
        if roll < 0.9:
            return f"THINK: {rng.choice(_THOUGHTS)}"
        return "DONE"


def _digit_probs(text: str, rng: random.Random) -> dict[int, float] | None:
    """Probabilities peaked on the digit the text states (so text and weighted score agree)."""
    m = re.search(r"\d", text)
    if m is None:
        return None
    top = int(m.group())
    weights = {d: (6.0 if d == top else rng.random() * (1.0 / (1 + abs(d - top)))) for d in range(10)}
    total = sum(weights.values())
    return {d: w / total for d, w in weights.items()}
