"""Role dashboards of the analytics: charts, filters and live updates."""
