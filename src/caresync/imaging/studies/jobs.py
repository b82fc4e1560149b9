"""Placeholder: the analysis job (being written)."""
