"""The runner's error for people: a config problem found before any job starts."""

import difflib
from typing import Any, Iterable


class ConfigError(ValueError):
    """A config problem found before any LLM call; the message names the key and the fix."""


def did_you_mean(word: str, choices: Any) -> str:
    """' (did you mean X?)' for the closest of `choices` (difflib), else ''."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: where data of your own has a place (named in the refusal of an unknown key of that section)
OWN_DATA = {"": "own judged measures go under experiment.propositions.<name>, model prices under "
                "prices.<model>: {input_per_1m, output_per_1m}",
            "experiment": "own judged measures go under experiment.propositions.<name>, a note about the "
                          "experiment in experiment.description",
            "prices": "each model's entry takes input_per_1m and output_per_1m (USD per 1M tokens)"}


def unknown_key(key: str, known: Iterable[str], own: str | None = None) -> ConfigError:
    """The refusal of `key` (dotted): not a setting, the closest known key, the known keys of its
    section and, where one exists, the place for data of your own."""
    parent, _, leaf = key.rpartition(".")
    known = sorted(str(k) for k in known)
    hint = did_you_mean(leaf, known)
    if hint and parent:
        hint = hint.replace("'", "'" + parent + ".", 1)
    section = parent or "the top level"
    own = OWN_DATA.get(parent.split(".", 1)[0]) if own is None else own
    return ConfigError(f"unknown key {key}{hint}: not a setting, trials never reads it (the settings of "
                       f"{section}: {', '.join(known)}){'; ' + own if own else ''}; fix: correct or remove it")
