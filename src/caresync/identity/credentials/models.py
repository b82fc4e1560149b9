"""Placeholder: the helper building this module replaces it (credential tables)."""
