"""Recorded consultations: transcripts with speakers, draft SOAP notes, and their approval into the record."""
