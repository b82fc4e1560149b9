"""Dispensing: the signed QR code of a prescription, its printable PDF, and the pharmacist's scan, verify
and dispense console."""
