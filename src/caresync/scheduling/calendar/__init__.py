"""Calendar feeds: private, revocable iCalendar (RFC 5545) subscription URLs and per-appointment ``.ics``
files."""
