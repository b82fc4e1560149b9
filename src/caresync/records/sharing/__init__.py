"""Share links and codes: a patient shows a chosen set of records to someone outside CareSync for a
limited time; every use is logged."""
