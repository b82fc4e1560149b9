"""Predictive analytics: clinical activity (encounters and their diagnoses), trends, demographics,
associations, volume and surge forecasts, patient risk, dashboards and reports.

``rules`` holds the tables (conditions with ICD-10 codes, departments, outcomes, age bands, risk levels);
``models`` the encounters; ``data`` turns them into the one DataFrame shape every analysis reads
(``synthetic`` generates the same shape for the demo and the tests).
"""
