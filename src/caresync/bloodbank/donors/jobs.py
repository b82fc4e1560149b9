"""Placeholder: the donors periodic jobs (being built)."""
