"""Health records: the patient's longitudinal record, every upload hashed and signed so that nobody can alter
it unseen, corrections as new versions, and bundles anyone can verify with stock tools."""
