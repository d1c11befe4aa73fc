"""The population factory's parts; the public API is `trials.factory`."""
