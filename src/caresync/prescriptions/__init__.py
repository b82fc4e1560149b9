"""E-prescriptions: prescribing with allergy and duplicate-therapy checks, signed QR codes that pharmacists
scan to dispense, refill and renewal requests, dose reminders and adherence."""
