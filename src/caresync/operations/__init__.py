"""Operating CareSync: backups and their restore drill, health and readiness probes, metrics and
structured logs."""
