"""Scanned documents: upload, OCR into searchable PDFs filed in the patient's record, inbox and review."""
