"""Health trends, seasonal profiles, demographics and chi-square associations."""
