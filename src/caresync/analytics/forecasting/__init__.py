"""Patient volume forecasts (SARIMA against a seasonal-naive baseline) and illness surge levels."""
