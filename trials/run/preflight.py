"""Checks before anything runs or is written: what would certainly fail, found once, up front.

`trials run` calls `trials.run.command.preflight_cli(args)` before Hydra starts (Hydra writes its output folder and
`.hydra/` before the task runs, so a refusal here leaves no file behind), and `run_experiment`
calls `check(cfg, plan)` again for the Python API. Every problem is a `ConfigError` whose message
names the key or file and the fix; `trials run` prints it and exits with status 2, never a
traceback. What is checked here beyond `build_plan`:

- an API key passed where the *name* of its environment variable belongs (refused without
  echoing it), and any override value that looks like a key;
- a missing API key environment variable for every remote model an arm uses (a variable name that
  looks like a key is shown as <hidden>), and a key with a newline, carriage return or other
  whitespace/control character (it would break the request header and be echoed in its error),
  and the same in $OPENAI_ORG_ID / $OPENAI_PROJECT_ID (sent as headers);
- the endpoint URL (`base_url`, else $OPENAI_BASE_URL): an http(s) URL, without credentials
  (user:password@), not the placeholder of conf/llm/azure.yaml;
- `llm.model=<name>` on the local backend (it would silently run the embedded model);
- `run.seed`, `run.budget_usd`, `experiment.size` (with "did you mean"), experiment names;
- an unwritable `cache.path`.
Persona files (duplicate names, BOM, deeply nested JSON) are checked where they are read
(`trials.persona.files`), which `build_plan` does before any job.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

from trials.folders import folder_problem
from trials.llm.cache import replay_problem
from trials.run.design import did_you_mean
from trials.run.errors import ConfigError
from trials.secrets import file_holding, key_paths, looks_like_key, value_at

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _masked(key: str) -> str:
    return f"{key}=<hidden>"


def check_secrets(overrides: Sequence[str]) -> None:
    """Refuse a key on the command line: `*api_key_env=` must be a variable NAME, and no value may
    look like a key. The message never repeats the value."""
    for item in overrides:
        key, sep, value = str(item).partition("=")
        key = key.lstrip("+~")
        value = value.strip().strip("'\"")
        if not sep:
            continue
        if key.endswith("api_key_env") and value and not ENV_NAME.fullmatch(value):
            raise ConfigError(f"{_masked(key)}: {key} takes the NAME of an environment variable, not the "
                              "key itself; fix: export OPENAI_API_KEY=<your key> and pass "
                              f"{key}=OPENAI_API_KEY (the key is never written anywhere)")
        if looks_like_key(value, key):
            raise ConfigError(f"{_masked(key)}: this looks like an API key on the command line, where it "
                              "would be saved in the run's config and .hydra/; fix: export it in an "
                              "environment variable and name that variable with llm.api_key_env")


def check_config_secrets(cfg: Any, files: Sequence[str] = (), overrides: Sequence[str] = ()) -> None:
    """Refuse a key-like value anywhere in a composed config (a config file, an interpolation),
    before anything is written: the run would copy it into config.yaml, manifest.json, .hydra/ and
    the report. Names where it was set -- the command line override (`overrides`: key=value ones,
    not group choices) that sets the key or a parent of it, else the one of `files` (the YAML files
    the config was composed from) holding it -- and the key, never the value."""
    from omegaconf import DictConfig, OmegaConf

    trees: list[Any] = []
    if isinstance(cfg, DictConfig):
        trees.append(OmegaConf.to_container(cfg, resolve=False))
        try:  # also what interpolations (e.g. ${oc.env:...}) resolve to; a broken one is reported later
            trees.append(OmegaConf.to_container(cfg, resolve=True))
        except Exception:  # noqa: BLE001
            pass
    else:
        trees.append(cfg)
    set_on_line = [o.partition("=")[0].lstrip("+~") for o in overrides if "=" in o]
    for tree in trees:
        tree = {k: v for k, v in dict(tree or {}).items() if k != "hydra"}  # its overrides: check_secrets
        for path in key_paths(tree):
            plain = re.sub(r"\[\d+\]", "", path)
            key = next((k for k in reversed(set_on_line) if plain == k or plain.startswith(k + ".")), None)
            if key is not None:
                raise ConfigError(f"command line override {_masked(key)}: {path} looks like an API key (also "
                                  "through an interpolation such as ${oc.env:...}), which would be saved in the "
                                  "run's config.yaml, manifest.json, .hydra/ and report; fix: remove it from the "
                                  "command line, export the key in an environment variable and name that "
                                  "variable with llm.api_key_env (e.g. llm.api_key_env=OPENAI_API_KEY)")
            where = file_holding(str(value_at(tree, path)), path, list(files), value_at(trees[0], path))
            raise ConfigError(f"{where + ': ' if where else ''}{_masked(path)}: this looks like an API key in "
                              "the config, where it would be saved in the run's config.yaml, manifest.json, "
                              ".hydra/ and report; fix: remove it from "
                              f"{where or 'the config'}, export the key in an environment variable and name "
                              "that variable with llm.api_key_env (e.g. llm.api_key_env=OPENAI_API_KEY)")


def check_unresolved(cfg: Any) -> None:
    """Checks that need the config before interpolations resolve (a bad `experiment.size` breaks
    every `${experiment.sizes.${experiment.size}...}`)."""
    from omegaconf import OmegaConf

    size = OmegaConf.select(cfg, "experiment.size", default=None)
    sizes = OmegaConf.select(cfg, "experiment.sizes", default=None)
    if size is not None and sizes is not None and str(size) not in sizes:
        raise ConfigError(f"experiment.size={size!r}{did_you_mean(size, list(sizes))}: use one of "
                          f"{list(sizes)} (e.g. experiment.size={next(iter(sizes))})")


def resolve(cfg: Any) -> dict[str, Any]:
    """DictConfig -> plain dict; a broken interpolation becomes a ConfigError naming the key."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    check_unresolved(cfg)
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or "?"
        msg = str(exc).splitlines()[0]
        raise ConfigError(f"{key}: {msg}; fix the value of {key} (or the key it refers to)") from None


def _number(value: Any, key: str, *, whole: bool, low: float) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and (not whole or isinstance(value, int)) and not (isinstance(value, float) and math.isnan(value))
          and value >= low)
    if not ok:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{key}={value!r}: need {kind} >= {low:g} (e.g. {key}={int(low) + 1})")


def _check_model(conf: dict[str, Any], where: str, arm_path: str | None = None,
                 arm_conf: dict[str, Any] | None = None) -> None:
    """`arm_path` (e.g. experiment.arms.treatment) and `arm_conf` (that arm's `where` overrides):
    the keys the arm sets itself are named by the arm's path in the messages."""
    backend = conf.get("backend")
    if backend == "local" and conf.get("model"):
        raise ConfigError(f"{where}.model={conf['model']!r} has no effect with {where}=local (the "
                          f"embedded model would run instead); fix: add {where}=openai (or ollama, azure) to "
                          f"use {conf['model']!r}, or {where}.model_path=<file.gguf> for another local model")
    if backend != "openai":
        return
    env = str(conf.get("api_key_env") or "OPENAI_API_KEY")
    if not ENV_NAME.fullmatch(env):
        raise ConfigError(f"{where}.api_key_env=<hidden>: it takes the NAME of an environment variable, "
                          "not the key itself; fix: export the key in e.g. OPENAI_API_KEY and set "
                          f"{where}.api_key_env=OPENAI_API_KEY")
    from trials.llm.openai_backend import header_problem, is_local_url, key_problem, name_looks_like_key, url_problem

    # the URL the backend will use: base_url, else (not Azure) $OPENAI_BASE_URL
    def path(key: str) -> str:
        return f"{arm_path}.{where}.{key}" if arm_path and key in (arm_conf or {}) else f"{where}.{key}"

    url = conf.get("base_url")
    source = path("base_url")
    if not url and not conf.get("api_version") and os.environ.get("OPENAI_BASE_URL"):
        url, source = os.environ["OPENAI_BASE_URL"], "$OPENAI_BASE_URL"
    problem = url_problem(str(url) if url else None, source, path("api_key_env"))
    if problem:
        raise ConfigError(problem)
    # the name of the config group option the user chose (conf/<where>/azure.yaml sets api_version)
    named = f"{where}=azure" if conf.get("api_version") else f"{where}={backend}"
    if not conf.get("api_version") and header_problem():  # sent as headers (not to Azure)
        raise ConfigError(f"{header_problem()} ({named})")
    key = os.environ.get(env)
    if key and key_problem(key, env):
        raise ConfigError(f"{key_problem(key, env)} ({named}, {where}.api_key_env)")
    if not key and not is_local_url(str(url) if url else None):
        if name_looks_like_key(env):
            raise ConfigError(f"{where}.api_key_env=<hidden> names an environment variable that is not set, "
                              f"and the name looks like an API key itself; {where}.api_key_env takes the NAME "
                              f"of the variable: export the key (e.g. export AZURE_OPENAI_API_KEY=<your key>) "
                              f"and set {where}.api_key_env=AZURE_OPENAI_API_KEY (or OPENAI_API_KEY)")
        raise ConfigError(f"environment variable {env} is not set, and {named} "
                          f"(model {conf.get('model')!r}) needs it; fix: export {env}=<your key> (read from "
                          f"the environment, never written anywhere), or set {where}.api_key_env to the "
                          "variable that holds it")


CACHE_MODES = ("off", "read_write", "replay")


def _check_cache(cache: dict[str, Any]) -> None:
    if cache.get("mode", "read_write") not in CACHE_MODES:
        raise ConfigError(f"cache.mode={cache.get('mode')!r}{did_you_mean(cache.get('mode'), CACHE_MODES)}: "
                          f"use one of {', '.join(CACHE_MODES)}")
    if not cache or cache.get("mode", "read_write") == "off" or not cache.get("path"):
        return
    if replay_problem(cache):
        raise ConfigError(replay_problem(cache))
    path = Path(str(cache["path"])).expanduser().absolute()
    if path.is_dir():
        problem = f"{path} is a folder; cache.path names the cache file in it, e.g. {path / 'llm_cache.sqlite'}"
    elif path.exists() and not os.access(path, os.W_OK):
        problem = f"{path} is not writable"
    else:
        problem = folder_problem(path.parent)
    if problem:
        raise ConfigError(f"cache.path={cache['path']!r}: cannot write there ({problem}); "
                          "fix: cache.path=<a writable file path>, or cache.mode=off")


def check_model_settings(conf: dict[str, Any], where: str, cache: dict[str, Any], prices: Any = None) -> None:
    """The model (`llm`/`judge`: key variable, endpoint URL, header variables), the cache and the
    price table checks, for commands without an experiment plan (`trials population`)."""
    _check_model(conf, where)
    _check_cache(cache)
    _check_prices(prices)


def _check_prices(prices: Any) -> None:
    """The price table (`prices`: a mapping, or a YAML path; None = the shipped one): every entry
    with both prices (else every job would fail at its first call)."""
    from trials.llm.usage import check_prices, load_prices

    try:
        load_prices(prices) if prices is None or isinstance(prices, str) else check_prices(dict(prices))
    except (ValueError, OSError) as exc:
        raise ConfigError(str(exc)) from None


def check(cfg: dict[str, Any], plan: Any) -> None:
    """Everything that would certainly fail, for a resolved config and its plan (see module doc)."""
    check_config_secrets(cfg)
    run = dict(cfg.get("run") or {})
    if run.get("seed") is not None:
        _number(run["seed"], "run.seed", whole=True, low=0)
    if run.get("budget_usd") is not None:
        _number(run["budget_usd"], "run.budget_usd", whole=False, low=0)
    seen: set[str] = set()
    for job in plan.jobs:
        for where, conf in (("llm", job.llm), ("judge", job.judge)):
            key = repr((where, sorted(conf.items(), key=str)))
            if key not in seen:
                seen.add(key)
                own = (plan.arms.get(job.arm) or {}).get(where)
                # a factorial cell's overrides come from several levels: named by the group only
                arm_path = None if plan.levels or not isinstance(own, dict) else f"experiment.arms.{job.arm}"
                _check_model(conf, where, arm_path, own)
    _check_cache(dict(cfg.get("cache") or {}))
    _check_prices(cfg.get("prices"))
