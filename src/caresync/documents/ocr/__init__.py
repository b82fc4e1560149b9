"""OCR of scanned documents into searchable PDF/A (OCRmyPDF + Tesseract): :func:`ocr_document` with its
per-page text, confidence and review flags."""

from caresync.documents.ocr.engine import OcrPage, OcrResult, OcrSettings, ocr_document

__all__ = ["OcrPage", "OcrResult", "OcrSettings", "ocr_document"]
