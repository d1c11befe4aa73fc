"""The runner's error for people: a config problem found before any job starts."""


class ConfigError(ValueError):
    """A config problem found before any LLM call; the message names the key and the fix."""
