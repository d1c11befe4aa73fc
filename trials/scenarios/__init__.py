"""Scenarios: what one session of an experiment does (hello, brainstorm, debate, market research)
and which metrics it measures. A scenario module exposes `run(ctx) -> SessionOutput` and an
estimate of its actions; `trials.run.plan.load_scenario` finds it by name."""
