"""Running an experiment: config -> design (arms, factors) -> checks -> plan of jobs -> jobs executed
in parallel -> the run directory (manifest, metrics, transcript, calls) -> analysis and report;
resume, sweeps and export."""

from trials.run.experiment import run_experiment, run_from_hydra
from trials.run.plan import ConfigError, Job, Plan, build_plan
from trials.run.rundir import RunDir, load_events

__all__ = ["ConfigError", "Job", "Plan", "RunDir", "build_plan", "load_events", "run_experiment", "run_from_hydra"]
