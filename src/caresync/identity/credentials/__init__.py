"""Practitioner credential verification: licences submitted by clinicians, reviewed by their organisation's
administrators, with expiry reminders and automatic suspension."""
