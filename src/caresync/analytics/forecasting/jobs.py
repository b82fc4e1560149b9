"""Background jobs of this area (being written)."""
