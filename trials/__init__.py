"""persona-trials: simulate people with LLM-driven personas and run controlled experiments."""

__version__ = "0.1.0"
