"""The settings each `trials` command reads, and the one-line refusal of a key it does not read: a
key nobody reads is a typo that would silently change nothing (`+llm.tempreature=0.3`).

Closed sections (every key known): the top level, `run` (with `run.estimate`), `cache`, `llm`,
`judge`, each `prices.<model>` entry; the experiment's keys depend on its scenario and are
checked by `trials.run.plan.build_plan` with the same message. Open-ended sections (names of your
own choosing): `prices.<model>`, `experiment.propositions.<name>`, `experiment.arms.<name>`,
`experiment.factors.<factor>.<level>`, `experiment.metric_info.<metric>`."""

from __future__ import annotations

from typing import Any, Iterable

import yaml

from trials import CONF_DIR
from trials.run.errors import OWN_DATA, ConfigError, unknown_key



def _shipped(name: str) -> dict[str, Any]:
    """A primary config file as written (trials/conf/<name>.yaml): the keys it sets are the settings."""
    return yaml.safe_load((CONF_DIR / f"{name}.yaml").read_text())


_CONFIG, _POPULATION = _shipped("config"), _shipped("population_app")
RUN_KEYS = frozenset(_CONFIG["run"])
CACHE_KEYS = frozenset(_CONFIG["cache"])
PRICE_KEYS = frozenset({"input_per_1m", "output_per_1m"})
#: top-level keys of each primary config: its own keys plus the config groups its defaults choose
TOP_KEYS = {name: frozenset(k for k in cfg if k != "defaults")
            | frozenset(str(next(iter(d))).removeprefix("optional ").strip()
                        for d in cfg["defaults"] if isinstance(d, dict))
            for name, cfg in (("config", _CONFIG), ("population_app", _POPULATION))}
SECTION_KEYS = {"config": {"run": RUN_KEYS}, "population_app": {"run": frozenset(_POPULATION["run"])}}


def check_keys(section: str, got: Any, known: Iterable[str], own: str | None = None) -> None:
    """Refuse the first key of the mapping `got` (at dotted `section`) that is not in `known`."""
    if not isinstance(got, dict):
        return
    unknown = sorted(set(map(str, got)) - set(map(str, known)))
    if unknown:
        raise unknown_key(f"{section}.{unknown[0]}" if section else unknown[0], known, own)


def check_settings(cfg: dict[str, Any], config_name: str = "config") -> None:
    """Every closed section of a composed config (unresolved is fine: only keys are read)."""
    from trials.llm.config import LLMConfig

    top = TOP_KEYS.get(config_name)
    if top is None:
        return
    check_keys("", cfg, top, None if config_name == "config" else "")
    for section, known in SECTION_KEYS[config_name].items():
        check_keys(section, cfg.get(section), known)
    check_keys("cache", cfg.get("cache"), CACHE_KEYS)
    for role in ("llm", "judge"):
        check_keys(role, cfg.get(role), LLMConfig.model_fields)
    prices = cfg.get("prices")
    for model, entry in (prices.items() if isinstance(prices, dict) else ()):
        if not isinstance(entry, dict):
            raise ConfigError(f"prices.{model}={entry!r}: give {{input_per_1m: <USD>, output_per_1m: <USD>}}")
        check_keys(f"prices.{model}", entry, PRICE_KEYS, OWN_DATA["prices"])
        for key, value in entry.items():
            _number(f"prices.{model}.{key}", value)
    if config_name == "config":
        _check_estimate((cfg.get("run") or {}).get("estimate"))


def _check_estimate(estimate: Any) -> None:
    """`run.estimate`: a mapping of the estimate's per-call assumptions, each a number >= 0."""
    from trials.run.progress import ESTIMATE_DEFAULTS

    if estimate is None:
        return
    if not isinstance(estimate, dict):
        raise ConfigError(f"run.estimate={estimate!r}: give a mapping of per-call assumptions, e.g. "
                          "run.estimate.latency_s.openai=3 (trials/run/progress.py ESTIMATE_DEFAULTS)")
    check_keys("run.estimate", estimate, ESTIMATE_DEFAULTS, "")
    latency = estimate.get("latency_s")
    if latency is not None and not isinstance(latency, dict):
        raise ConfigError(f"run.estimate.latency_s={latency!r}: give seconds per call by backend, e.g. "
                          "run.estimate.latency_s.openai=3")
    check_keys("run.estimate.latency_s", latency, ESTIMATE_DEFAULTS["latency_s"], "")
    for key, value in {**{k: v for k, v in estimate.items() if k != "latency_s"},
                       **{f"latency_s.{k}": v for k, v in (latency or {}).items()}}.items():
        _number(f"run.estimate.{key}", value)


def _number(key: str, value: Any) -> None:
    """A number >= 0 (an interpolation `${...}` is left to OmegaConf)."""
    if isinstance(value, str) and "${" in value:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"{key}={value!r}: need a number >= 0 (e.g. {key}=1)")


def settings_of(section: str, config_name: str = "config") -> frozenset[str]:
    """The known keys of a closed dotted `section` ('' = top level) of `config_name`; empty when
    the section is open-ended, scenario-dependent (experiment) or unknown."""
    from trials.llm.config import LLMConfig

    if section == "":
        return TOP_KEYS.get(config_name, frozenset())
    if section in SECTION_KEYS.get(config_name, {}):
        return SECTION_KEYS[config_name][section]
    if section == "cache":
        return CACHE_KEYS
    if section in ("llm", "judge") and section in TOP_KEYS.get(config_name, ()):
        return frozenset(LLMConfig.model_fields)
    if section.startswith("prices.") and section.count(".") == 1:
        return PRICE_KEYS
    if config_name == "config" and section in ("run.estimate", "run.estimate.latency_s"):
        from trials.run.progress import ESTIMATE_DEFAULTS

        return frozenset(ESTIMATE_DEFAULTS if section == "run.estimate" else ESTIMATE_DEFAULTS["latency_s"])
    return frozenset()
