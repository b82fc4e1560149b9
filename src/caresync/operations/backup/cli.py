"""Placeholder: the helper building this module replaces it (``caresync backup create|verify|restore``)."""

import typer

app = typer.Typer(help="Backups of the database and stored files.", no_args_is_help=True)
