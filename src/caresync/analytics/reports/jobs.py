"""Report jobs (being written)."""
