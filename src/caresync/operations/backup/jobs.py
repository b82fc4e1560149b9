"""Placeholder: the helper building this module replaces it (the scheduled backup job)."""
