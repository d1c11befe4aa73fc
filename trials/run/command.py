"""`trials run` before Hydra starts: compose the config the run would see (Hydra's compose API,
with the user's `--config-dir` on the search path), run every preflight check, and do a dry run
without writing anything (Hydra would create its output folder and `.hydra/` first)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

from trials.run.compose import compose, experiment_file, group_choice
from trials.run.errors import ConfigError
from trials.run.experiment import run_experiment
from trials.run.plan import build_plan
from trials.run.preflight import check, check_secrets, resolve
from trials.run.resume import resume_changes

#: hydra flags after which `trials run` hands over without pre-checking (they print, not run)
_INFO_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--resolve", "--package",
               "-p", "--shell-completion", "-sc", "--run", "-r", "--experimental-rerun"}


#: hydra flags that choose another primary config (its name; its folder)
_PRIMARY_FLAGS = {"--config-name": "name", "-cn": "name", "--config-path": "path", "-cp": "path"}


def primary_config(args: Sequence[str], conf_dir: str, config_dir: str | None,
                   default: str = "config") -> tuple[str, str]:
    """(config name, primary config folder) that Hydra will load for these arguments: `--config-name`,
    `--config-path` (Hydra's rule: an absolute folder, or one relative to the folder of the
    `@hydra.main` app, the trials package, not the current folder), else `default` in `conf_dir`.
    A ConfigError if that config is not there (Hydra's own message is a traceback-like block)."""
    given: dict[str, str] = {}
    it = iter(args)
    for a in it:
        flag, eq, value = a.partition("=")
        if flag in _PRIMARY_FLAGS:
            given[_PRIMARY_FLAGS[flag]] = value if eq else (next(it, None) or "")
    name, folder = given.get("name") or default, conf_dir
    path = given.get("path")
    if path is not None:
        if path.startswith("pkg://"):
            raise ConfigError(f"--config-path {path}: a package path is not supported by trials; fix: give "
                              "the folder (--config-path /abs/folder) or use --config-dir <folder>")
        package = Path(conf_dir).resolve().parent  # trials/cli.py's folder: where Hydra resolves it
        folder = str((package / Path(path).expanduser()).resolve())  # an absolute path stays itself
        if not Path(folder).is_dir():
            hint = f" (a relative --config-path is read from the trials package folder {package}, not the " \
                   f"current folder)" if not Path(path).expanduser().is_absolute() else ""
            raise ConfigError(f"--config-path {path}: no folder {folder}{hint}; fix: give an absolute "
                              f"path, or use --config-dir {path} --config-name <name>")
    roots = [folder] + ([config_dir] if config_dir else [])
    if not any((Path(r).expanduser() / f"{name}.{ext}").is_file() for r in roots for ext in ("yaml", "yml")):
        raise ConfigError(f"--config-name {name}: no {name}.yaml in {' or '.join(roots)}; fix: correct the "
                          "name, or give the folder that holds it with --config-dir <folder>")
    return name, folder


class _Unchecked(Exception):
    """A sweep the preflight cannot expand on its own: Hydra runs it (and each run still checks)."""


def _split(args: Sequence[str]) -> tuple[list[str], str | None, bool, bool]:
    """(overrides, --config-dir, multirun, info_only) from `trials run` arguments."""
    overrides: list[str] = []
    config_dir, multirun, info = None, False, False
    it = iter(args)
    for a in it:
        if a in ("-m", "--multirun"):
            multirun = True
        elif a in ("--config-dir", "-cd"):
            config_dir = next(it, None)
        elif a.startswith("--config-dir="):
            config_dir = a.split("=", 1)[1]
        elif a in _PRIMARY_FLAGS:
            next(it, None)  # another primary config (`primary_config`), composed and checked the same way
        elif a.split("=", 1)[0] in _PRIMARY_FLAGS:
            pass
        elif a in ("--cfg", "-c", "--package", "-p"):
            next(it, None)  # their value (job|hydra|all, a package), not an override
            info = True
        elif a.split("=", 1)[0] in _INFO_FLAGS or a.startswith("-"):
            info = True
        else:
            overrides.append(a)
    return overrides, config_dir, multirun, info


def _prints_config(args: Sequence[str]) -> bool:
    """`trials run ... --cfg job` (print the composed config)."""
    return any(a in ("--cfg", "-c") or a.startswith("--cfg=") for a in args)


def _sweep_points(overrides: list[str], limit: int = 64) -> list[list[str]]:
    """Every point of a sweep (`a=1,2`, `range(...)`, `choice(...)`), in Hydra's order (the
    cartesian product); one point without sweeps. Sweeps it cannot expand alone (glob) or more
    than `limit` points raise _Unchecked (Hydra then runs them and each run still checks)."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    options: list[list[str]] = []
    for ov in OverridesParser.create().parse_overrides(overrides):
        if ov.is_sweep_override():
            try:
                values = list(ov.sweep_string_iterator())
            except Exception as exc:  # noqa: BLE001 - e.g. glob() needs Hydra's config loader
                raise _Unchecked(str(exc)) from None
            options.append([f"{ov.get_key_element()}={v}" for v in values])
        else:
            options.append([ov.input_line or ""])
    points = [list(p) for p in itertools.islice(itertools.product(*options), limit + 1)]
    if len(points) > limit:
        raise _Unchecked(f"more than {limit} sweep points")
    return points


def preflight_cli(args: Sequence[str], conf_dir: str) -> int | None:
    """Check `trials run <args>` before Hydra writes anything. Returns an exit status to stop
    with (2 config error, 0 dry run done: the plan was printed and nothing written), or None to
    go on and run."""
    overrides, config_dir, multirun, info = _split(args)
    try:
        check_secrets(overrides)
        name, conf_dir = primary_config(args, conf_dir, config_dir)
        if info:
            if _prints_config(args) and not multirun:  # `--cfg job`: a bad choice is one line here too
                compose(overrides, config_dir, conf_dir, name, "config")
            return None
        try:
            points = _sweep_points(overrides) if multirun else [overrides]
        except _Unchecked:
            raise
        except Exception as exc:  # noqa: BLE001 - Hydra's override grammar errors
            raise ConfigError(" ".join(str(exc).split())[:400]) from None
        configs = [_checked(point, config_dir, conf_dir, name) for point in points]  # every point, up front
        if not configs[0]:
            return None  # a resume: the saved config decides (checked in _checked)
        if (configs[0].get("run") or {}).get("dry_run"):  # every point's plan, nothing written
            for i, (point, plain) in enumerate(zip(points, configs)):
                if multirun:
                    print(f"sweep point {i + 1}/{len(points)}: {' '.join(point)}")
                code = run_experiment(plain, Path.cwd() / "runs" / "dry-run-not-written")
                if code:
                    return code
            return 0
        _check_output_dir(overrides, multirun)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except _Unchecked:
        return None
    return None


def _check_output_dir(overrides: list[str], multirun: bool) -> None:
    """The folder Hydra will create (`hydra.run.dir`, with -m `hydra.sweep.dir`; default under
    ./runs or ./multirun): a ConfigError naming it and why it cannot be made (Hydra would stop with
    a traceback)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from trials.folders import out_folder_message

    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # noqa: BLE001 - grammar errors are reported elsewhere
        return
    value = next((ov.value() for ov in reversed(parsed) if ov.get_key_element().lstrip("+~") == key), None)
    if value is None:
        option, value = f"{key} (default)", "multirun" if multirun else "runs"
    elif not isinstance(value, str) or "${" in value:
        return  # an interpolation: Hydra resolves it
    else:
        option = f"{key}="
    message = out_folder_message(option, value)
    if message:
        raise ConfigError(message.replace("= ", "=", 1))


def resume_hydra_overrides(args: Sequence[str]) -> list[str]:
    """For a resume (`run.resume_dir=DIR`, single run): Hydra's output folder is DIR itself and no
    `.hydra/` is written there, so a resume leaves no empty folder (`.hydra/` + `cli.log`) beside the
    run and keeps the run's own `.hydra/`; its log lines are appended to DIR/cli.log. [] otherwise."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides, _, multirun, info = _split(args)
    if multirun or info:
        return []
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # noqa: BLE001 - a grammar error is reported by Hydra itself
        return []
    resume = next((ov.value() for ov in reversed(parsed) if ov.get_key_element().lstrip("+~") == "run.resume_dir"),
                  None)
    if not resume or not isinstance(resume, str):
        return []
    folder = str(Path(resume).expanduser().resolve()).replace("\\", "\\\\").replace("'", "\\'")
    return [f"hydra.run.dir='{folder}'", "hydra.output_subdir=null"]


def secrets_check_cli(args: Sequence[str], conf_dir: str | None = None, config_name: str = "config") -> int | None:
    """For other Hydra commands (`trials population`): refuse an API key on the command line
    before Hydra saves the overrides, and (with `conf_dir`) a bad override or config choice, in one
    line (trials.run.compose) instead of Hydra's multi-line error; 2 or None."""
    overrides, config_dir, multirun, info = _split(args)
    try:
        check_secrets(overrides)
        if conf_dir and not info:
            name, root = primary_config(args, conf_dir, config_dir, config_name)
            points = _sweep_points(overrides) if multirun else [overrides]
            for point in points:
                cfg = compose(point, config_dir, root, name, config_name)
                if config_name == "population_app":
                    _population_check(cfg, point, config_dir, root, name)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - a sweep the check cannot expand: Hydra reports it
        return None
    return None


def _population_check(cfg: Any, overrides: list[str], config_dir: str | None, conf_dir: str,
                      config_name: str = "population_app") -> None:
    """What `trials population` would refuse (run.seed, n, out, the spec, the llm and cache
    settings), found before Hydra makes its output folder: a refusal leaves nothing behind."""
    from trials.llm.config import parse_llm_config
    from trials.population.factory import population_settings
    from trials.run.preflight import check_model_settings

    plain = resolve(cfg)
    choice = group_choice("population", overrides, config_dir, conf_dir, config_name) or "population"
    try:
        population_settings(plain, choice)
        llm = parse_llm_config(plain.get("llm"), "llm").model_dump()
    except ValueError as exc:  # FactoryError, LLMConfigError: the message names the key
        raise ConfigError(str(exc)) from None
    check_model_settings(llm, "llm", dict(plain.get("cache") or {}), plain.get("prices"))


def _checked(overrides: list[str], config_dir: str | None, conf_dir: str, config_name: str = "config") -> dict[str, Any]:
    """One point's resolved config after every check ({} for a resume, whose saved config
    decides: there only a change of design is refused here). `config_name` in `conf_dir`: the
    primary config (`primary_config`); every one is checked as a run's config."""
    plain = resolve(compose(overrides, config_dir, conf_dir, config_name, "config"))
    resume = (plain.get("run") or {}).get("resume_dir")
    if resume:
        saved = Path(str(resume)).expanduser() / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"run.resume_dir={resume!r}: no config.yaml there; point it at the "
                              "directory of an earlier `trials run`")
        import yaml

        resume_changes(plain, yaml.safe_load(saved.read_text()), overrides)
        return {}
    plain = {k: v for k, v in plain.items() if k != "hydra"}
    # a dry run builds its plan again (without writing); here the messages can name the file
    plan = build_plan(plain, Path.cwd() / "runs", experiment_file(overrides, config_dir, conf_dir, config_name), overrides)
    if not (plain.get("run") or {}).get("dry_run"):
        check(plain, plan)
    return plain
