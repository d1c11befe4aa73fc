"""Populations: sample personas from a distribution spec or a description (the factory) into a
folder any experiment can use. Public API: `trials.population.factory`."""
