"""FHIR R4 (4.0.1) API at ``/fhir/R4``: a facade over the domain services.

Every resource is mapped from a domain service (never straight from tables), so the role rules, consent,
care relationships and the audit log apply exactly as in the rest of CareSync. ``registry`` lists the
resource types; ``api`` serves them; ``resources/`` holds one mapping module per domain.
"""
