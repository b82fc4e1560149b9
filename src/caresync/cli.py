"""The ``caresync`` command line: serve, worker, migrate, demo, users and the audit check."""

from __future__ import annotations

import sys
import threading
from typing import Annotated

import typer

from caresync.imaging.cli import imaging_app
from caresync.operations.backup.cli import app as backup_app

app = typer.Typer(
    help="CareSync: run the platform and look after it.", no_args_is_help=True, pretty_exceptions_enable=False
)
user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
org_app = typer.Typer(
    help="Organisations (hospitals, clinics, blood banks, pharmacies).", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(org_app, name="org")
app.add_typer(audit_app, name="audit")
app.add_typer(backup_app, name="backup")
app.add_typer(imaging_app, name="imaging")


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic ``upgrade head``)."""
    from caresync.migrations.runner import upgrade

    upgrade()
    typer.echo("database is up to date")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(help="Web processes")] = 1,
    reload: bool = False,
) -> None:
    """Run the web server."""
    import uvicorn

    from caresync.config import get_settings
    from caresync.operations.observability.logging import logging_config

    if get_settings().jobs_immediate and workers == 1:  # analyses run in this process: load their libraries
        from caresync.imaging.studies.jobs import warm_up

        threading.Thread(target=warm_up, name="imaging-warm-up", daemon=True).start()
    if workers > 1 and not get_settings().redis_url:
        typer.echo(
            "warning: without CARESYNC_REDIS_URL, live updates (notifications, job progress) only reach "
            "browsers connected to the same web process; set it when running several --workers",
            err=True,
        )

    uvicorn.run(
        "caresync.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        log_level="info",
        log_config=logging_config(get_settings()),  # JSON lines with CARESYNC_LOG_FORMAT=json
    )


@app.command()
def worker(threads: Annotated[int, typer.Option(help="Worker threads")] = 2) -> None:
    """Run the background job worker (Huey consumer) in the foreground."""
    from caresync.config import get_settings
    from caresync.core.jobs import huey
    from caresync.operations.observability.logging import configure_logging
    from caresync.tasks import load_all

    configure_logging(get_settings())
    load_all()
    # Idle, a consumer polls the queue ever less often, up to every ``max_delay`` seconds (Huey's default is
    # 10: an analysis asked for after a quiet spell would wait that long on the SQLite queue).
    huey.create_consumer(workers=threads, worker_type="thread", max_delay=1.0).run()


@app.command()
def demo(
    patients: Annotated[int, typer.Option(help="How many patients")] = 600,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data)")] = 7,
    if_empty: Annotated[bool, typer.Option("--if-empty", help="Do nothing if users exist")] = False,
    years: Annotated[int, typer.Option(min=1, max=10, help="Years of clinical activity (encounters)")] = 3,
    documents: Annotated[
        bool, typer.Option(help="Scanned letters (OCR) and a recorded consultation (transcribed)")
    ] = True,
    imaging: Annotated[
        bool, typer.Option(help='Imaging AI: "demonstration only" models and two analysed studies')
    ] = True,
) -> None:
    """Load the deterministic synthetic demo dataset and print the demo logins."""
    from caresync.demo import DEMO_PASSWORD, load_demo

    result = load_demo(
        patients=patients, seed=seed, if_empty=if_empty, years=years, documents=documents, imaging=imaging
    )
    if result is None:
        typer.echo("demo data already present; nothing loaded")
    else:
        typer.echo(
            f"loaded {result.organisations} organisations, {result.users} users, {result.patients} patients, "
            f"{result.encounters} encounters over {years} years"
        )
    from caresync.demo import print_logins

    print_logins(typer.echo, DEMO_PASSWORD)


@app.command("demo-code")
def demo_code(email: str, seed: int = 7) -> None:
    """Print the current MFA code of a demo staff account (demo data only)."""
    import pyotp

    from caresync.demo import DEMO_DOMAIN, demo_totp_secret

    if not email.endswith(DEMO_DOMAIN):
        raise typer.BadParameter("only demo accounts have known MFA secrets")
    typer.echo(pyotp.TOTP(demo_totp_secret(email, seed)).now())


@org_app.command("create")
def org_create(
    name: str,
    kind: Annotated[str, typer.Option(help="hospital, clinic, blood_bank or pharmacy")],
    city: str = "",
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 code")] = "",
    latitude: float | None = None,
    longitude: float | None = None,
) -> None:
    """Create an organisation (then create its first admin with `caresync user create`)."""
    from caresync.core import audit
    from caresync.core.auth import system_principal
    from caresync.db import session_factory, transaction
    from caresync.identity.models import Organisation
    from caresync.identity.rules import OrganisationKind

    if kind not in {k.value for k in OrganisationKind}:
        raise typer.BadParameter(f"kind must be one of {', '.join(k.value for k in OrganisationKind)}")
    with transaction(session_factory()) as session:
        if session.query(Organisation.id).filter(Organisation.name == name).first():
            typer.echo(f"error: an organisation named {name!r} already exists", err=True)
            raise typer.Exit(2)
        org = Organisation(
            name=name, kind=kind, city=city, country=country.upper(), latitude=latitude, longitude=longitude
        )
        session.add(org)
        session.flush()
        audit.record(
            session,
            system_principal("caresync CLI"),
            "organisation.create",
            resource_type="Organisation",
            resource_id=org.id,
        )
    typer.echo(f"created {kind} {name} ({org.id})")


@user_app.command("create")
def user_create(
    email: str,
    full_name: str,
    role: str,
    organisation: Annotated[str, typer.Option(help="Organisation name (staff)")] = "",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Create a user (e.g. the first admin of a new organisation)."""
    from sqlalchemy import select

    from caresync.core import audit
    from caresync.core.auth import system_principal
    from caresync.core.errors import DomainError
    from caresync.db import session_factory, transaction
    from caresync.identity.models import Organisation
    from caresync.identity.rules import Role
    from caresync.identity.service import create_user

    try:
        with transaction(session_factory()) as session:
            org_id = None
            if organisation:
                org = session.execute(
                    select(Organisation).where(Organisation.name == organisation)
                ).scalar_one_or_none()
                if org is None:
                    raise typer.BadParameter(f"no organisation named {organisation!r}")
                org_id = org.id
            user = create_user(
                session,
                email=email,
                password=password,
                full_name=full_name,
                role=Role(role),
                organisation_id=org_id,
            )
            audit.record(
                session,
                system_principal("caresync CLI"),
                "user.create",
                resource_type="User",
                resource_id=user.id,
                detail={"role": role},
            )
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"created {role} {email}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the whole audit chain; exits 1 and names the first bad entry if it was tampered with."""
    from caresync.core.audit import verify_chain
    from caresync.db import session_factory

    with session_factory()() as session:
        report = verify_chain(session)
    if report.problem is None:
        typer.echo(f"audit chain OK: {report.entries} entries verified")
        return
    typer.echo(
        f"audit chain BROKEN at entry {report.problem.seq} ({report.problem.kind}): {report.problem.message}",
        err=True,
    )
    sys.exit(1)


if __name__ == "__main__":
    app()
