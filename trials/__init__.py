"""persona-trials: simulate people with LLM-driven personas and run controlled experiments."""

__version__ = "0.1.0"

from pathlib import Path as _Path

#: the shipped Hydra configs (config.yaml; llm/, judge/, prices/, experiment/, population/)
CONF_DIR = _Path(__file__).resolve().parent / "conf"
