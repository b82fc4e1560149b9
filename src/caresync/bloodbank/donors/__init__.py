"""Donors: registration, eligibility and deferrals, availability, donation appointments and recording a
donation, and the donor portal."""
