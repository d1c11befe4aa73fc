"""The `trials` command: `run` and `population` are Hydra apps; `analyze`, `report` and
`sweep-summary` are plain argparse commands. Implementations are imported lazily so that
`trials analyze` never pays for the simulation stack."""

from __future__ import annotations

import sys

import hydra

import trials
from omegaconf import DictConfig

CONF_DIR = str(trials.CONF_DIR)

USAGE = """usage: trials <command> [args]

commands:
  run [hydra overrides]          run an experiment (default: conf/config.yaml); -m for sweeps;
                                 --config-dir <dir> adds your own experiments (experiment=<name>)
  init <dir> [--name mine]       write a commented starter experiment to <dir>/experiment/
  export <run_dir> [--to csv|parquet|jsonl] [--out FILE]   one row per agent action, values flattened
  analyze <run_dir|table|json>   effect sizes and significance -> <run_dir>/analysis/
  report <run_dir|table|json>    report.md + self-contained report.html; --control/--unpaired re-analyse
                                 (into the run's own analysis/ only with --force, else --out DIR)
  population [hydra overrides]   sample a population of personas into a folder
  sweep-summary <multirun_dir>   one table over the run directories of a sweep
  validate <run_dir> --human FILE --column C --metric M [--scale 1 5] [--margin 0.5] [--by COL]
           [--out DIR] [--force] simulated answers vs real people's -> <run_dir>/analysis/validation.csv
                                 (an existing one is replaced only with --force)
  validate-persona PERSONA_FILE --expectations TEXT [--questions N] [hydra overrides]
                                 interview a persona, score it 0-9 against the expectations
  judge-check [hydra overrides]  the judge on a labelled persona-fit set: AUC, accuracy, CIs
"""


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def _run_app(cfg: DictConfig) -> int:
    from trials.run.experiment import run_from_hydra

    return run_from_hydra(cfg)


@hydra.main(config_path=CONF_DIR, config_name="population_app", version_base="1.3")
def _population_app(cfg: DictConfig) -> int:
    from trials.population.factory import population_from_hydra

    return population_from_hydra(cfg)


def _hydra(app, argv: list[str]) -> int:
    sys.argv = [f"trials {argv[0]}", *argv[1:]]
    try:
        app()
    except SystemExit as exc:  # hydra exits with the app's status on errors
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


def _out_folder_check(command: str, args: list[str]) -> int | None:
    """`--out DIR` of analyze/report: a folder that cannot be made is exit 2 with why (not a
    traceback from deep inside the writer); None = go on."""
    from trials.folders import out_folder_message

    for i, a in enumerate(args):
        value = args[i + 1] if a == "--out" and i + 1 < len(args) else a[6:] if a.startswith("--out=") else None
        message = out_folder_message("--out", value) if value else None
        if message:
            print(f"trials {command}: {message}", file=sys.stderr)
            return 2
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        from trials.run.command import preflight_cli, resume_hydra_overrides
        from trials.run.resume import transport_args

        rest = transport_args(rest)  # a resume may add the saved model group's transport keys
        argv = [command, *rest]
        code = preflight_cli(rest, CONF_DIR)  # checks (and a dry run) before Hydra writes anything
        return code if code is not None else _hydra(_run_app, [*argv, *resume_hydra_overrides(rest)])
    if command == "init":
        from trials.run.starter import main as init_main

        return init_main(rest)
    if command == "export":
        from trials.run.export import main as export_main

        return export_main(rest)
    if command == "population":
        from trials.run.command import secrets_check_cli

        code = secrets_check_cli(rest, CONF_DIR, "population_app")  # before Hydra writes .hydra/
        return code if code is not None else _hydra(_population_app, argv)
    if command in ("analyze", "report"):
        code = _out_folder_check(command, rest)
        if code is not None:
            return code
    if command == "analyze":
        from analysis.cli import main as analyze_main

        return analyze_main(rest)
    if command == "report":
        from reports.cli import main as report_main

        return report_main(rest)
    if command == "sweep-summary":
        from trials.run.sweep import main as sweep_main

        return sweep_main(rest)
    if command == "validate":
        from trials.run.validation import main as validate_main

        return validate_main(rest)
    if command in ("validate-persona", "judge-check"):
        from trials.run.checks import main as check_main
        from trials.run.command import secrets_check_cli

        code = secrets_check_cli(rest)  # a key among the overrides would be echoed or saved
        return code if code is not None else check_main(command, rest)
    print(f"trials: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
