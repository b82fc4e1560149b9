"""Analytics reports: PDF per role (WeasyPrint, matplotlib SVG charts), generated as jobs."""
