"""One module per domain, each mapping domain objects to FHIR resources and listing them in ``RESOURCES``."""
