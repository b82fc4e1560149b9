"""Placeholder: the alerts periodic jobs (being built)."""
