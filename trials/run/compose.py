"""Hydra's compose API for every `trials` command that takes config overrides (`run`, `population`,
`judge-check`, `validate-persona`), with Hydra's multi-line errors turned into one line that names
the key or config group, the bad value, the choices and the closest match (ConfigError)."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from trials import CONF_DIR
from trials.run.design import did_you_mean
from trials.run.errors import ConfigError, unknown_key
from trials.run.preflight import check_config_secrets
from trials.run.settings import check_settings, settings_of


def compose(overrides: list[str], config_dir: str | None, conf_dir: str, config_name: str = "config",
            settings: str | None = None) -> Any:
    """The config `trials <command>` would see (Hydra's compose API) for one point (no sweeps), or
    a ConfigError naming the key, the missing config or the grammar error. `config_dir`: the user's
    `--config-dir` (searched after the primary config folder `conf_dir`); `config_name`: the primary
    config; `settings`: whose settings it holds (`trials.run.settings`; default `config_name`)."""
    settings = settings or config_name
    from hydra import compose as hydra_compose
    from hydra.errors import HydraException, MissingConfigException

    check_repeats(overrides)
    overrides = [o for o in overrides if not o.startswith(("hydra.", "hydra/"))]
    if config_dir and not Path(config_dir).expanduser().is_dir():
        raise ConfigError(f"--config-dir {config_dir}: no such folder; fix: create it with "
                          f"`trials init {config_dir}` or give the folder that holds experiment/<name>.yaml")
    try:
        with initialized(conf_dir, config_dir):
            cfg = hydra_compose(config_name, overrides=overrides)
            files, groups = _sources(config_name, overrides, config_dir)
    except MissingConfigException as exc:
        raise ConfigError(missing_config(exc, config_dir, conf_dir)) from None
    except HydraException as exc:
        text = " ".join(str(exc).split())
        bad = re.search(r"Could not override '([^']+)'", text)
        if bad:
            key = bad.group(1)
            others = [o for o in overrides if not o.lstrip("+~").startswith(key + "=")]
            raise _unknown_override(key, others, conf_dir, config_name, config_dir, settings) from None
        raise ConfigError(text[:400]) from None
    except Exception as exc:  # noqa: BLE001 - Hydra's override grammar errors etc.
        raise ConfigError(" ".join(str(exc).split())[:400]) from None
    from omegaconf import OmegaConf

    # a key in a config file: refused before Hydra (or the run) writes it anywhere, before any other
    # check could name the value
    check_config_secrets(cfg, files, [o for o in overrides if o.partition("=")[0].lstrip("+~") not in groups])
    check_settings(OmegaConf.to_container(cfg, resolve=False), settings)  # keys only: before resolving
    return cfg


@contextmanager
def initialized(conf_dir: str, config_dir: str | None) -> Iterator[None]:
    """Hydra initialized as `trials <command> [--config-dir D]` initializes it: `conf_dir` the primary
    config folder, D on the search path just as Hydra's own `--config-dir` puts it (a primary config
    of D's is found too; a `hydra.searchpath` override would not find it, and would replace the
    primary config's own `hydra.searchpath`)."""
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
        if config_dir:
            from hydra._internal.hydra import Hydra
            from hydra._internal.utils import create_config_search_path
            from hydra.core.global_hydra import GlobalHydra
            from hydra.core.config_search_path import SearchPathQuery

            search = create_config_search_path(search_path_dir=conf_dir)
            search.prepend(provider="command-line", path=f"file://{Path(config_dir).expanduser().resolve()}",
                           anchor=SearchPathQuery(provider="schema"))  # as hydra/_internal/utils.py _run_hydra
            GlobalHydra.instance().clear()  # initialize_config_dir restores what was there before
            Hydra.create_main_hydra2(task_name="app", config_search_path=search)
        yield


def _sources(config_name: str, overrides: list[str], config_dir: str | None) -> tuple[list[str], set[str]]:
    """(the YAML files this composition read, its config groups), from Hydra's defaults list (inside
    an initialized Hydra): to name the real file a value came from, and to tell a group choice
    (`llm=openai`) from a value override on the command line."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    loader = GlobalHydra.instance().config_loader()
    files, groups = [], set()
    for item in loader.compute_defaults_list(config_name, overrides, RunMode.RUN).defaults:
        if not item.config_path or item.config_path.startswith("hydra/"):
            continue
        if "/" in item.config_path:
            groups.add(item.config_path.rsplit("/", 1)[0].replace("/", "."))
        loaded = loader.repository.load_config(item.config_path)  # the shipped folder (found first)
        root = str(getattr(loaded, "path", "") or "")
        if root.startswith("file://"):
            files.append(str(Path(root.removeprefix("file://")) / f"{item.config_path}.yaml"))
        elif loaded is None and config_dir:  # only in the user's --config-dir
            files.append(str(Path(config_dir) / f"{item.config_path}.yaml"))
    return files, groups


def check_repeats(overrides: list[str]) -> None:
    """The same config group or key twice on one command line (`llm=scripted llm=local`,
    `run.seed=1 run.seed=2`): Hydra silently takes the last; refused, naming both values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    seen: dict[str, str] = {}
    for item in overrides:
        try:
            (parsed,) = OverridesParser.create().parse_overrides([item])
            key = parsed.get_key_element().lstrip("+~")
        except Exception:  # noqa: BLE001 - a grammar error: Hydra names it when composing
            continue
        if key in seen:
            raise ConfigError(f"{key} is given twice on the command line ({seen[key]} and {item}); Hydra "
                              f"would silently use the last one; fix: give {key} once")
        seen[key] = item


def experiment_file(overrides: list[str], config_dir: str | None, conf_dir: str,
                    config_name: str = "config") -> str | None:
    """The file of the experiment `trials run <overrides>` selects (`experiment=<name>`, else
    the primary config's default): the user's folder first, then the primary one; None if not found."""
    name = group_choice("experiment", overrides, config_dir, conf_dir, config_name)
    if name is None:
        return None
    for root in filter(None, (config_dir, conf_dir)):
        path = Path(root).expanduser() / "experiment" / f"{name}.yaml"
        if path.is_file():
            shipped = path.resolve().parent.parent == CONF_DIR.resolve()
            return f"trials/conf/experiment/{name}.yaml" if shipped else str(path)
    return None


def group_choice(group: str, overrides: list[str], config_dir: str | None, conf_dir: str,
                 config_name: str = "config") -> str | None:
    """The option of config group `group` that `overrides` select (`experiment=<name>`), else the
    default in the primary config's `defaults:`; None if neither names one."""
    import yaml

    name = next((o.split("=", 1)[1] for o in reversed(overrides) if o.lstrip("+").startswith(group + "=")), None)
    if name is not None:
        return name
    seen: set[str] = set()
    while config_name not in seen:  # a primary config of one's own may build on another (`- config`)
        seen.add(config_name)
        files = [Path(r).expanduser() / f"{config_name}.yaml" for r in filter(None, (conf_dir, config_dir, CONF_DIR))]
        try:
            defaults = yaml.safe_load(next(f for f in files if f.is_file()).read_text()).get("defaults") or []
        except (StopIteration, OSError, yaml.YAMLError, AttributeError):
            return None
        found = [d for d in defaults if isinstance(d, dict) and group in d]
        if found:
            return str(found[-1][group])
        parents = [d for d in defaults if isinstance(d, str) and d != "_self_"]
        if not parents:
            return None
        config_name = parents[0]
    return None


def group_options(group: str, config_dir: str | None, conf_dir: str) -> list[str]:
    """The configs of `group` (e.g. experiment): the user's folder's and the shipped ones."""
    names: set[str] = set()
    for root in filter(None, (conf_dir, config_dir)):
        folder = Path(root).expanduser() / group
        if folder.is_dir():
            names |= {p.stem for p in folder.glob("*.yaml")} | {p.stem for p in folder.glob("*.yml")}
    return sorted(names)


def missing_config(exc: Any, config_dir: str | None, conf_dir: str) -> str:
    """One line for Hydra's MissingConfigException: a bad choice on the command line
    (`llm=scriptd`), or a bad name in a config file's `defaults:` list (e.g. a typo in the parent
    experiment that a user experiment inherits)."""
    missing = str(getattr(exc, "missing_cfg_file", "") or "")
    group, _, name = missing.rpartition("/")
    parent = re.match(r"In '([^']+)'", str(exc))
    owner = parent.group(1) if parent and parent.group(1) not in ("config", "population_app") else None
    options = sorted({*(getattr(exc, "options", None) or []), *group_options(group, config_dir, conf_dir)}
                     - {owner.rpartition("/")[2] if owner and owner.rpartition("/")[0] == group else ""})
    where = f"trials/conf/{group}/" + (f" or {config_dir}/{group}/" if config_dir else "")
    found = f"{did_you_mean(name, options)}; available: {', '.join(options) or 'none'} (in {where})"
    if owner:  # a defaults list inside a file (it cannot inherit from itself: not offered)
        files = [Path(r).expanduser() / f"{owner}.yaml" for r in filter(None, (config_dir, conf_dir))]
        path = next((str(f) for f in files if f.is_file()), f"{owner}.yaml")
        return (f"{path}: defaults: {name!r} is not a config in {group or 'the config folder'}/{found}; "
                f"fix: correct the name in the defaults list of {path}")
    return f"{group or 'config'}={name}: no {missing}.yaml{found}"


def _unknown_override(key: str, others: list[str], conf_dir: str, config_name: str = "config",
                      config_dir: str | None = None, settings: str | None = None) -> ConfigError:
    """The refusal of overriding `key`, which the composed config does not list. It suggests
    `+key=<value>` only where that will be accepted: a setting of a closed section, an experiment key
    the experiment's scenario reads, or a key of an open-ended section; any other key is refused as
    the run would refuse it (never a fix that leads to a second refusal)."""
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf

    parent, _, leaf = key.rpartition(".")
    add = f"{key} is a setting, but this config does not list it yet; fix: add it with +{key}=<value>"
    closed = settings_of(parent, settings or config_name)
    if leaf in closed:  # e.g. judge=same is empty
        return ConfigError(add)
    try:
        with initialized(conf_dir, config_dir):
            cfg = hydra_compose(config_name, overrides=others)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        in_arm = re.fullmatch(r"experiment\.arms\.[^.]+", parent) is not None
        scenario = OmegaConf.select(cfg, "experiment.scenario") if parent == "experiment" or in_arm else None
    except Exception:  # noqa: BLE001 - without the config, only the generic message
        node = scenario = None
    if isinstance(scenario, str):  # experiment keys depend on the scenario
        from trials.run.plan import experiment_keys, load_scenario, not_for_scenario

        try:
            known = experiment_keys(load_scenario(scenario))
        except ConfigError as exc:
            return exc
        if in_arm:
            from trials.run.design import arm_keys_of

            known = arm_keys_of(known)
            return ConfigError(add) if leaf in known else unknown_key(key, known, "an arm may set any experiment key")
        if leaf in known:
            return ConfigError(add)
        return (not_for_scenario(leaf, scenario, str(OmegaConf.select(cfg, "experiment.name") or ""))
                or unknown_key(key, known))
    if closed:
        return unknown_key(key, closed)
    hint = did_you_mean(leaf, list(node.keys())) if node is not None and hasattr(node, "keys") else ""
    hint = hint.replace("'", "'" + parent + ".", 1) if hint and parent else hint
    return ConfigError(f"unknown key {key}{hint}; fix: correct the key, or add a new key with +{key}=<value>")
