"""The `contentops` command (DESIGN.md §6)."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .errors import DomainError
from .extensions import db
from .models import ROLES, User


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _domain_fail(exc: DomainError) -> None:
    from .errors import ValidationError

    if isinstance(exc, ValidationError):
        parts = [f"{name}: {'; '.join(msgs)}" for name, msgs in exc.fields.items()]
        _fail(", ".join(parts))
    _fail(exc.message % exc.params if exc.params else exc.message)


@click.command("init")
@click.option("--admin-email", default="admin@example.com", show_default=True,
              help="E-mail of the first admin, created only when there is no user yet.")
@with_appcontext
def init_command(admin_email: str) -> None:
    """Apply migrations and create the first admin (safe to run again)."""
    from flask_migrate import upgrade

    from .services import users as user_service

    upgrade()
    if db.session.query(User.id).first() is None:
        try:
            user, password = user_service.create_user(db.session, admin_email, "admin",
                                                      name="Admin")
        except DomainError as exc:
            _domain_fail(exc)
        db.session.commit()
        click.echo(f"Created the first admin: {user.email}")
        click.echo(f"Password (shown once, change it under your settings): {password}")
    else:
        click.echo("Database is up to date.")


@click.group("user")
def user_group() -> None:
    """Manage users."""


@user_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", default=None, help="At least 10 characters; generated if omitted.")
@click.option("--name", default=None)
@with_appcontext
def user_add(email: str, role: str, password: str | None, name: str | None) -> None:
    """Add a user with a role."""
    from .services import users as user_service

    try:
        user, generated = user_service.create_user(db.session, email, role, name=name,
                                                   password=password)
    except DomainError as exc:
        _domain_fail(exc)
    db.session.commit()
    click.echo(f"Added {user.email} ({user.role}).")
    if generated:
        click.echo(f"Password (shown once): {generated}")


@click.group("token")
def token_group() -> None:
    """Manage API tokens."""


@token_group.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="A label to recognise the token by.")
@with_appcontext
def token_create(email: str, name: str) -> None:
    """Create a bearer token; it is printed alone on the last line, once."""
    from .services import users as user_service

    user = user_service.find_by_email(db.session, email)
    if user is None or not user.active:
        _fail(f"no active user with e-mail {email}")
    _token, plain = user_service.create_token(db.session, user, name)
    db.session.commit()
    click.echo(f"Token for {user.email} (store it now; it is not shown again):")
    click.echo(plain)


@click.command("demo")
@click.option("--if-empty", is_flag=True, help="Only load when there are no content pieces yet.")
@with_appcontext
def demo_command(if_empty: bool) -> None:
    """Load realistic private-domain demo data."""
    from .services import demo

    summary = demo.load_demo(db.session, only_if_empty=if_empty,
                             secret_key=current_app.config["SECRET_KEY"],
                             base_url=current_app.config["CONTENTOPS_BASE_URL"])
    db.session.commit()
    click.echo(summary)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option("--no-scheduler", is_flag=True,
              help="Serve pages only; run `contentops scheduler` elsewhere.")
@with_appcontext
def serve_command(host: str, port: int, threads: int, no_scheduler: bool) -> None:
    """Serve the app with a production WSGI server (waitress) and the embedded scheduler."""
    from waitress import serve

    from .gc_tuning import freeze_startup_objects

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    runner = None
    if not no_scheduler and app.config["CONTENTOPS_SCHEDULER"]:
        from .scheduler.runner import start_embedded

        runner = start_embedded(app)
    freeze_startup_objects()
    click.echo(f"ContentOps on http://{host}:{port}/")
    try:
        serve(app, host=host, port=port, threads=threads, ident="ContentOps")
    finally:
        if runner is not None:
            runner.shutdown()


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the scheduler only (any number may run against one PostgreSQL)."""
    from .scheduler.runner import run_forever

    run_forever(current_app._get_current_object())  # type: ignore[attr-defined]


@click.group("feedback")
def feedback_group() -> None:
    """Feedback (reads, likes, comments, shares, clicks)."""


@feedback_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Only show what would change.")
@with_appcontext
def feedback_import(file: str, dry_run: bool) -> None:
    """Import feedback from a CSV file; importing the same file again changes nothing."""
    from pathlib import Path

    from .services.feedback import csv_import as feedback_csv
    from .timeutil import utcnow

    try:
        parsed = feedback_csv.parse(feedback_csv.decode(Path(file).read_bytes()))
    except DomainError as exc:
        _domain_fail(exc)
    preview = feedback_csv.preview(db.session, parsed, now=utcnow())
    db.session.rollback()
    for error in preview.errors:
        message = error.message % error.params if error.params else error.message
        click.echo(f"row {error.row}: {message}", err=True)
    if preview.errors:
        _fail(f"{len(preview.errors)} row(s) with errors; nothing imported")
    for post_id, change in sorted(preview.changes.items()):
        click.echo(f"post {post_id}: " + ", ".join(f"+{n} {m}" for m, n in change.items()))
    if dry_run:
        click.echo(f"{preview.rows} rows: {preview.new} new events, "
                   f"{preview.duplicates} already counted (dry run, nothing written)")
        return
    report = feedback_csv.apply(db.session, parsed, now=utcnow())
    db.session.commit()
    click.echo(f"{preview.rows} rows: {report.accepted} new events, "
               f"{report.duplicates} already counted")


def register_cli(app: Flask) -> None:
    for command in (init_command, user_group, token_group, demo_command, serve_command,
                    scheduler_command, feedback_group):
        app.cli.add_command(command)


def main() -> None:
    from . import create_app

    cli = FlaskGroup(create_app=create_app, add_version_option=False, set_debug_flag=False,
                     load_dotenv=False, help="ContentOps: content calendar and publishing.")
    cli.main(prog_name="contentops")
