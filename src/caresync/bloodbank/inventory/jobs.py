"""Placeholder: the inventory periodic jobs (being built)."""
