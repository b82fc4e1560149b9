"""Document AI: OCR of scanned records into searchable PDFs, symptom-based document search, transcription and
summaries of doctor-patient conversations."""
