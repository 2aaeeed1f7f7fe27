"""Command line: `{{ cookiecutter.project_slug }} serve | db ... | users ... | audit ...`.

Every failure prints one line that says what happened and what to do, and exits non-zero.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from {{ cookiecutter.project_slug }}.core.config import ConfigurationError, Settings, get_settings
from {{ cookiecutter.project_slug }}.core.errors import AppError
from {{ cookiecutter.project_slug }}.core.logging import configure_logging
from {{ cookiecutter.project_slug }}.db import migrate
from {{ cookiecutter.project_slug }}.schemas.user import UserCreate

EXIT_CONFIGURATION = 2

app = typer.Typer(no_args_is_help=True, add_completion=False, help="{{ cookiecutter.project_name }}")
db_app = typer.Typer(no_args_is_help=True, help="Database migrations (run under a lock).")
users_app = typer.Typer(no_args_is_help=True, help="Manage accounts.")
audit_app = typer.Typer(no_args_is_help=True, help="Check the audit log.")
scaffold_app = typer.Typer(
    no_args_is_help=True, help="Generate code for the project (development)."
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
app.add_typer(scaffold_app, name="scaffold")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ConfigurationError as exc:
        _fail(f"{exc}\nfix the variables above (environment or .env) and retry", EXIT_CONFIGURATION)
    configure_logging(settings.log_level, settings.effective_log_format)
    return settings


def _run_migration(work: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(work)
    except migrate.MigrationError as exc:
        _fail(str(exc), exc.exit_code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    from {{ cookiecutter.project_slug }}.core.metrics import clear_multiprocess_dir

    settings = _settings()
    # Before uvicorn forks its workers, which count into that directory.
    clear_multiprocess_dir()
    uvicorn.run(
        "{{ cookiecutter.project_slug }}.main:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=None if reload else workers,
        log_config=None,  # logging is configured by the app, through structlog
        # X-Forwarded-* are believed only from TRUSTED_PROXIES; none by default.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        server_header=False,
        # Bounded, so an orchestrator's grace period (deploy/k8s) can cover it.
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
    )


LockTimeout = Annotated[
    float | None,
    typer.Option(
        "--lock-timeout",
        help="Seconds to wait for another migrator (default MIGRATION_LOCK_TIMEOUT_SECONDS).",
    ),
]


@db_app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    lock_timeout: LockTimeout = None,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it (no connection).")
    ] = False,
) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = _settings()
    if sql:
        try:
            migrate.upgrade_sql(revision)
        except migrate.MigrationError as exc:
            _fail(str(exc), exc.exit_code)
        return
    _run_migration(migrate.upgrade(settings, revision, lock_timeout=lock_timeout))


@db_app.command()
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")],
    lock_timeout: LockTimeout = None,
) -> None:
    """Revert migrations down to REVISION."""
    _run_migration(migrate.downgrade(_settings(), revision, lock_timeout=lock_timeout))


@db_app.command()
def current() -> None:
    """Show the revision the database is at."""
    _run_migration(migrate.current(_settings()))


@db_app.command()
def history() -> None:
    """List the known revisions."""
    _run_migration(migrate.history(_settings()))


@db_app.command()
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    autogenerate: Annotated[
        bool, typer.Option(help="Diff the models against the database.")
    ] = False,
) -> None:
    """Create a new revision file."""
    _run_migration(migrate.revision(_settings(), message, autogenerate=autogenerate))


@db_app.command()
def reencrypt(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 500,
    after: Annotated[
        str | None, typer.Option(help="Resume after this primary key (from a previous run).")
    ] = None,
) -> None:
    """Re-encrypt encrypted columns under the newest of ENCRYPTION_KEYS (after adding a key)."""
    settings = _settings()
    from {{ cookiecutter.project_slug }}.container import build_container
    from {{ cookiecutter.project_slug }}.core.encryption import DecryptionError
    from {{ cookiecutter.project_slug }}.db.reencrypt import Batch, reencrypt

    def report(batch: Batch) -> None:
        typer.echo(
            f"{batch.table}: {batch.rewritten} of {batch.read} rewritten, up to {batch.last_id}"
        )

    async def run() -> int:
        async with build_container(settings, role="cli") as services:
            return await reencrypt(
                services.session_maker,
                services.encryptor,
                batch_size=batch_size,
                after=after,
                on_batch=report,
            )

    try:
        total = asyncio.run(run())
    except DecryptionError:
        _fail(
            "a value cannot be decrypted with any key in ENCRYPTION_KEYS; add the key it was "
            "written with (after the newest) and run again; finished batches are kept"
        )
    except ValueError as exc:
        _fail(f"invalid --after: {exc}")
    except (OSError, SQLAlchemyError) as exc:
        _fail(
            f"cannot reach the database ({type(exc).__name__}); check DATABASE_URL "
            "and run `{{ cookiecutter.project_slug }} db upgrade` first"
        )
    typer.echo(f"re-encrypted {total} values under the newest key")


@users_app.command("create-superuser")
def create_superuser(
    email: Annotated[str, typer.Option(help="E-mail address of the admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an account with the admin role."""
    settings = _settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            _fail("the passwords do not match; run the command again")
    try:
        data = UserCreate(email=email, password=password)
    except ValueError as exc:
        _fail(f"invalid e-mail or password: {exc}")

    # Imported here: the composition root pulls in every client library, and the other
    # commands (migrations above all, run by every deploy) should start without them.
    from {{ cookiecutter.project_slug }}.container import build_container

    async def create() -> str:
        async with (
            build_container(settings, role="cli") as services,
            services.unit_of_work() as uow,
        ):
            user = await services.users(uow).register(data, role="admin")
            return str(user.id)

    try:
        user_id = asyncio.run(create())
    except AppError as exc:
        _fail(exc.detail)
    except (OSError, SQLAlchemyError) as exc:
        _fail(
            f"cannot write to the database ({type(exc).__name__}); check DATABASE_URL "
            "and run `{{ cookiecutter.project_slug }} db upgrade` first"
        )
    typer.echo(f"created admin {email} ({user_id})")


@audit_app.command("verify")
def verify_audit_log() -> None:
    """Walk the audit log's hash chain; exit 1 naming the first entry that does not verify."""
    settings = _settings()
    from {{ cookiecutter.project_slug }}.container import build_container
    from {{ cookiecutter.project_slug }}.services.audit import ChainReport

    async def verify() -> ChainReport:
        async with (
            build_container(settings, role="cli") as services,
            services.unit_of_work() as uow,
        ):
            return await services.audit(uow).verify()

    try:
        report = asyncio.run(verify())
    except (OSError, SQLAlchemyError) as exc:
        _fail(
            f"cannot read the audit log ({type(exc).__name__}); check DATABASE_URL "
            "and run `{{ cookiecutter.project_slug }} db upgrade` first"
        )
    if report.broken is not None:
        _fail(
            f"audit log entry {report.broken.entry_id} does not verify: {report.broken.reason}; "
            f"the {report.checked} entries before it are intact. Restore the log from a backup "
            "or investigate who changed it (the database refuses changes unless its trigger "
            "was disabled)"
        )
    entries = "entry" if report.checked == 1 else "entries"
    typer.echo(f"audit log intact: {report.checked} {entries} verified")


@scaffold_app.command("resource")
def scaffold_resource(
    name: Annotated[str, typer.Argument(help="Singular, lower_snake_case: `product`.")],
    fields: Annotated[
        str | None,
        typer.Option(
            help='Comma-separated name:type, `?` for optional: "title:str, price:decimal, '
            'due:date?". Types: str, text, int, decimal, bool, date, datetime, uuid. '
            "Default: name:str."
        ),
    ] = None,
    plural: Annotated[
        str | None, typer.Option(help="Plural for the table and URLs (default: name + s/es/ies).")
    ] = None,
    project_dir: Annotated[
        Path | None, typer.Option(help="Project folder (default: the one this package is in).")
    ] = None,
) -> None:
    """Write a resource's model, schemas, repository, service, routes, migration and tests."""
    # Imported here: Alembic's script loading and the templates are needed by this command only.
    from {{ cookiecutter.project_slug }}.scaffold import ScaffoldError
    from {{ cookiecutter.project_slug }}.scaffold import scaffold_resource as write_resource

    try:
        plan = write_resource(name, fields, plural=plural, project_dir=project_dir)
    except ScaffoldError as exc:
        _fail(f"{exc}; nothing was written")
    for path in plan.created:
        typer.echo(f"created {path.relative_to(plan.root)}")
    for path in plan.updated:
        typer.echo(f"updated {path.relative_to(plan.root)}")
    typer.echo("next: `make migrate` applies the migration, `make test` runs the new tests")
