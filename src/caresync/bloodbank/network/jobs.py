"""Placeholder: the network periodic jobs (being built)."""
