"""The web layer shared by every domain: request dependencies, templates, static assets and the UI shell."""
