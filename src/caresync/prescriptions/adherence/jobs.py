"""Placeholder: the helper building this module replaces it (periodic dose reminders)."""
