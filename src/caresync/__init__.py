"""CareSync: one open-source platform for care coordination, blood banking, imaging AI, analytics,
document AI and FHIR interoperability."""

__version__ = "0.1.0"
