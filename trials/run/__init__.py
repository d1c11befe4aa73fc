"""Running an experiment: config -> plan of jobs -> jobs executed in parallel -> the run
directory (manifest, metrics, transcript, calls) -> analysis and report; resume and sweeps."""

from trials.run.experiment import run_experiment, run_from_hydra
from trials.run.plan import ConfigError, Job, Plan, build_plan
from trials.run.rundir import RunDir

__all__ = ["ConfigError", "Job", "Plan", "RunDir", "build_plan", "run_experiment", "run_from_hydra"]
