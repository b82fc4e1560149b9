"""Observability: liveness and readiness probes, Prometheus metrics, and structured JSON logs."""
