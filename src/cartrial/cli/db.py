"""``cartrial serve`` and ``cartrial db …``: the trial database and web app.

Top-level imports: typer only (SQLAlchemy, FastAPI, uvicorn load inside the commands).
"""

from __future__ import annotations

from pathlib import Path

import typer

DB_HELP = (
    "Database: a SQLite file path or a URL such as "
    "postgresql+psycopg://postgres@127.0.0.1:5432/trial "
    "(default: $CARTRIAL_DB or ./cartrial.sqlite)."
)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _open(db: str | None, migrate: bool = True):
    """An engine on ``db`` (migrated to head), or a one-line error and exit code 2."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from cartrial.store.database import DatabaseError, make_engine, upgrade

    try:
        engine = make_engine(db)
        if migrate:
            upgrade(engine)
        else:
            with engine.connect():
                pass
    except DatabaseError as exc:
        raise _fail(str(exc)) from None
    except OperationalError as exc:
        first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise _fail(f"cannot open the database: {first}") from None
    except (SQLAlchemyError, ImportError) as exc:
        raise _fail(
            f"cannot open the database: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        ) from None
    return engine


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``db`` command group to the main app."""
    db_app = typer.Typer(help="The trial database: migrate, import, export.", no_args_is_help=True)

    @app.command("serve")
    def serve(
        db: str = typer.Option(None, "--db", help=DB_HELP),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", help="Port to listen on."),
        workers: int = typer.Option(
            1,
            "--workers",
            min=1,
            max=16,
            help="Server processes (use the cores; finished "
            "reports are cached on disk and shared).",
        ),
        log_level: str = typer.Option(
            "warning",
            "--log-level",
            help="debug, info, warning or error: log-in failures, "
            "server errors and slow requests go to stderr.",
        ),
        slow_ms: int = typer.Option(
            1000, "--slow-ms", min=1, help="Log requests slower than this (milliseconds)."
        ),
        threads: int = typer.Option(
            16, "--threads", min=1, max=200, help="Request handler threads per process."
        ),
    ) -> None:
        """Run the web app (upgrades the database first; creates the admin on first run)."""
        import os

        import uvicorn

        if log_level.lower() not in ("debug", "info", "warning", "error"):
            raise _fail(f"--log-level {log_level!r}: expected debug, info, warning or error")
        log_level = log_level.lower()
        os.environ["CARTRIAL_LOG_LEVEL"] = log_level
        os.environ["CARTRIAL_SLOW_MS"] = str(slow_ms)
        os.environ["CARTRIAL_THREADS"] = str(threads)
        from cartrial.store.database import DatabaseError, resolve_url
        from cartrial.web.app import configure_logging, create_app

        configure_logging(log_level)

        engine = _open(db)
        try:
            app_ = create_app(engine=engine, migrate=False)
        except DatabaseError as exc:
            raise _fail(str(exc)) from None
        state = app_.state.cartrial
        if state.admin_password:
            typer.echo("Created user 'admin' with password: " + state.admin_password)
            typer.echo("(shown once; set CARTRIAL_ADMIN_PASSWORD to choose it)")
        typer.echo(f"Database: {_safe(resolve_url(db))}")
        typer.echo(f"Serving on http://{host}:{port}/")
        # uvicorn stops on SIGTERM/SIGINT: in-flight requests finish, report jobs are ended
        if workers == 1:
            uvicorn.run(
                app_, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10
            )
            return
        app_.state.cartrial.reports.shutdown()
        engine.dispose()
        os.environ["CARTRIAL_DB"] = resolve_url(db)
        uvicorn.run(
            "cartrial.web.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            timeout_graceful_shutdown=10,
        )

    @db_app.command("upgrade")
    def upgrade_cmd(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
        """Create or upgrade the database schema (Alembic migrations)."""
        from cartrial.store.database import current_revision, resolve_url

        engine = _open(db)
        typer.echo(f"{_safe(resolve_url(db))} at revision {current_revision(engine)}")

    @db_app.command("import")
    def import_cmd(
        cohort: Path = typer.Argument(..., help="Cohort folder, .xlsx workbook or example name."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Validate COHORT and store it in ONE transaction (a failed import changes nothing)."""
        from cartrial.cohort import CohortError, load_cohort
        from cartrial.store.cohort_io import ImportRefused, import_cohort

        try:
            data = load_cohort(cohort)
        except CohortError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        engine = _open(db)
        try:
            counts = import_cohort(engine, data)
        except ImportRefused as exc:
            typer.echo(f"import refused: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo("imported " + ", ".join(f"{n} {t}" for t, n in counts.items()))

    @db_app.command("export")
    def export_cmd(
        directory: Path = typer.Argument(..., help="New (or empty) folder for the CSV files."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Write the database's cohort as the four CSV files."""
        from cartrial.cohort import CohortError, write_cohort
        from cartrial.store.cohort_io import read_cohort

        engine = _open(db)
        try:
            cohort = read_cohort(engine)
            out = write_cohort(cohort, directory)
        except (CohortError, FileExistsError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(f"wrote {cohort.summary()} to {out}")

    @db_app.command("add-user")
    def add_user(
        username: str = typer.Argument(...),
        role: str = typer.Option(..., "--role", help="admin, data_entry, monitor, statistician"),
        site: str = typer.Option(None, "--site", help="Site code (required for data_entry)."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
    ) -> None:
        """Create a user; the password is asked for (or $CARTRIAL_NEW_PASSWORD)."""
        import os

        from cartrial.store.database import session_factory
        from cartrial.store.users import create_user

        password = os.environ.get("CARTRIAL_NEW_PASSWORD") or typer.prompt(
            "Password", hide_input=True, confirmation_prompt=True
        )
        engine = _open(db)
        with session_factory(engine)() as s:
            s.info["user"] = "cli"
            try:
                create_user(s, username, password, role, site)
            except ValueError as exc:
                typer.echo(str(exc), err=True)
                raise typer.Exit(1) from None
            s.commit()
        typer.echo(f"created {role} user {username}")

    @db_app.command("verify-audit")
    def verify_audit(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
        """Check the audit trail's hash chain and append-only triggers (exit 1 if tampered)."""
        from cartrial.store.chain import verify
        from cartrial.store.database import KeyMissing

        engine = _open(db, migrate=False)
        with engine.connect() as conn:
            try:
                result = verify(conn)
            except KeyMissing as exc:
                typer.echo(f"cannot verify the audit trail: {exc}", err=True)
                raise typer.Exit(2) from None
        typer.echo(result.summary())
        for problem in result.problems[5:]:
            typer.echo(f"  - {problem}")
        if not result.ok:
            raise typer.Exit(1)

    @db_app.command("seal-audit")
    def seal_audit(db: str = typer.Option(None, "--db", help=DB_HELP)) -> None:
        """Key-tag the head of an audit chain written before keyed chains (after checking
        its unkeyed part): later entries are HMAC-keyed and the old ones stay checked."""
        from cartrial.store.chain import seal, verify

        engine = _open(db, migrate=False)
        with engine.begin() as conn:
            sealed = seal(conn, force=True)
            result = verify(conn)
        if sealed:
            typer.echo("sealed: the audit chain's head now carries the key tag")
        typer.echo(result.summary())
        if not result.ok:
            raise typer.Exit(1)

    @db_app.command("app-role-sql")
    def app_role_sql_cmd(
        role: str = typer.Argument(..., help="The PostgreSQL role the web app connects as."),
        schema: str = typer.Option("public", "--schema"),
    ) -> None:
        """Print the GRANTs for a PostgreSQL application role that cannot TRUNCATE, ALTER
        or change the audit trail (run them as the tables' owner)."""
        from cartrial.store.chain import app_role_sql

        try:
            for stmt in app_role_sql(role, schema):
                typer.echo(stmt + ";")
        except ValueError as exc:
            raise _fail(str(exc)) from None

    app.add_typer(db_app, name="db")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
