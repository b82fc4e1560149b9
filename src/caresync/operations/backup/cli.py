"""``caresync backup create|verify|restore|list|prune``: backups of the database and stored files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Backups of the database and stored files.", no_args_is_help=True)

ArchiveArg = Annotated[Path, typer.Argument(help="The .csbak archive", show_default=False)]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


@app.command()
def create() -> None:
    """Write a backup (database and every stored file) into the backup folder and print its path."""
    from caresync.core.auth import system_principal
    from caresync.core.errors import DomainError
    from caresync.operations.backup import service
    from caresync.operations.backup.archive import BackupError

    started = time.perf_counter()
    try:
        path = service.create_backup(system_principal("caresync CLI"))
    except (BackupError, DomainError) as exc:
        raise _fail(str(exc)) from exc
    seconds = time.perf_counter() - started
    typer.echo(path)
    typer.echo(f"{service.human_size(path.stat().st_size)} in {seconds:.1f} s")


@app.command()
def verify(archive: ArchiveArg) -> None:
    """Decrypt an archive and check every checksum without restoring it; exits 1 naming the problems."""
    from caresync.operations.backup import service

    report = service.verify_and_record(archive)
    if not report.ok:
        typer.echo(f"{archive.name}: DAMAGED", err=True)
        for problem in report.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1)
    assert report.manifest is not None
    typer.echo(
        f"{archive.name}: OK ({report.manifest['database']} database and {report.manifest['files']} files, "
        f"made {report.manifest['created_at']} by CareSync {report.manifest['caresync_version']})"
    )


@app.command()
def restore(
    archive: ArchiveArg,
    force: Annotated[bool, typer.Option(help="Replace a target that is not empty")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Restore an archive into the configured database and var dir (stop the web and job processes
    first), then verify the audit chain. Refuses a target that holds data unless --force."""
    from caresync.config import get_settings
    from caresync.core.auth import system_principal
    from caresync.operations.backup import archive as archives
    from caresync.operations.backup import service

    settings = get_settings()
    where = "SQLite" if settings.is_sqlite else "PostgreSQL"
    if not yes:
        typer.confirm(
            f"Restore {archive.name} into the configured {where} database and {settings.var_dir}? "
            "Everything there will be replaced",
            abort=True,
        )
    try:
        result = archives.restore(archive, force=force, settings=settings)
    except archives.BackupError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(
        f"restored {result.manifest['database']} database of {result.manifest['created_at']} and "
        f"{result.files_restored} files" + (f" ({result.files_removed} other files removed)" if force else "")
    )
    revision = result.manifest.get("schema_revision")
    if revision and revision != _schema_head():
        typer.echo(
            f"the backup's schema revision is {revision}: run `caresync migrate` to bring it up to date"
        )
    problem = result.audit.problem
    if problem is not None:
        typer.echo(f"audit chain BROKEN at entry {problem.seq} ({problem.kind}): {problem.message}", err=True)
        raise typer.Exit(1)
    service.audit_event(system_principal("caresync CLI"), "backup.restore", archive.name)
    typer.echo(f"audit chain OK: {result.audit.entries} entries verified")


def _schema_head() -> str | None:
    from alembic.script import ScriptDirectory

    from caresync.migrations.runner import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@app.command("list")
def list_() -> None:
    """The backups in the backup folder, newest first, with their last verification."""
    from caresync.config import get_settings
    from caresync.operations.backup import service
    from caresync.operations.backup.archive import backup_dir

    backups = service.list_backups()
    if not backups:
        typer.echo(f"no backups in {backup_dir(get_settings())}")
        return
    for info in backups:
        checked = info.verification
        when = f" {checked.verified_at:%Y-%m-%d %H:%M}" if checked else ""
        typer.echo(f"{info.name}  {service.human_size(info.size):>9}  {info.status}{when}")
        for problem in checked.problems if checked else []:
            typer.echo(f"    - {problem}")


@app.command()
def prune(
    keep_daily: Annotated[
        int | None, typer.Option(help="Days kept (default CARESYNC_BACKUP_KEEP_DAILY)")
    ] = None,
    keep_weekly: Annotated[
        int | None, typer.Option(help="ISO weeks kept (default CARESYNC_BACKUP_KEEP_WEEKLY)")
    ] = None,
) -> None:
    """Delete the backups retention does not keep (the newest of each of the last N days and M weeks)."""
    from caresync.config import get_settings
    from caresync.operations.backup import service

    settings = get_settings()
    daily = settings.backup_keep_daily if keep_daily is None else keep_daily
    weekly = settings.backup_keep_weekly if keep_weekly is None else keep_weekly
    if daily < 1 or weekly < 0:
        raise typer.BadParameter("keep at least one daily backup and zero or more weekly ones")
    deleted = service.prune(daily, weekly, settings)
    for name in deleted:
        typer.echo(f"deleted {name}")
    typer.echo(f"kept {len(service.list_backups(settings))} backups, deleted {len(deleted)}")
