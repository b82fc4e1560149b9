"""Scheduling: the provider directory, working hours and free slots, appointments (booking, rescheduling,
cancellation, waitlist), reminders, calendar feeds, and the clinic queue with triage."""
