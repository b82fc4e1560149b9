"""Adherence: the daily dose schedule of active prescriptions, dose reminders in the patient's time zone,
taken/skipped marks, and Proportion of Days Covered per medication."""
