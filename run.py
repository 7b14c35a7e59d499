"""The `crm` command: a Flask CLI group over the app factory, and the WSGI entry point."""
import json
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import click
import httpx
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate import upgrade

import config
from app import create_app, fake_openphone, fake_quickbooks, fake_server
from app.audit import acting_as
from app.demo import load_demo
from app.exports import export_contacts
from app.extensions import appbuilder, db
from app.history import HistoryRunning, import_history, progress
from app.import_files import BadFile
from app.imports import create_import, import_counts, run_import
from app.integration_secrets import generate_key, rotate_secrets
from app.models import ContactList
from app.money import Disconnected, quickbooks_configured, run_sync
from app.openphone import sandbox as sandbox_mode
from app.production import refuse_unsafe_production
from app.quickbooks import QuickBooksError, connect, settings
from app.quickbooks_sync import SyncBusy
from app.users import WeakPassword, ensure_admin, ensure_user, sync_roles
from jobs.worker import run_worker


class CrmGroup(FlaskGroup):
    """Flask's command group without the commands installed packages plug in: Flask-AppBuilder's
    `fab` group would create tables behind Alembic's back and users beside `crm create-user`,
    so there is one way to do each."""

    def _load_plugin_commands(self):
        self._loaded_plugin_commands = True


@click.group(cls=CrmGroup, create_app=lambda: create_app(), add_default_commands=False)
def cli():
    """Attack A Crack CRM."""


def init_database():
    """Migrate, sync roles and make sure an admin exists. Idempotent."""
    upgrade()
    sync_roles()
    try:
        user, created, generated = ensure_admin()
    except WeakPassword as exc:
        raise click.ClickException(f"ADMIN_PASSWORD: {exc}") from exc
    if generated:
        click.echo(f"\n  Admin user created: {user.username} / password: {generated}\n"
                   "  (shown once; set ADMIN_PASSWORD to choose it)\n")
    elif created:
        click.echo(f"Admin user created: {user.username}")


@cli.command("init")
@with_appcontext
def init_command():
    """Migrate the database, create the roles and the admin."""
    init_database()


@cli.command("create-user")
@click.option("--username", required=True)
@click.option("--role", type=click.Choice(["Admin", "Marketer", "Staff"]), required=True)
@click.option("--email", default=None)
@click.password_option()
@with_appcontext
def create_user_command(username, role, email, password):
    """Create a user with one role (Admin, Marketer or Staff); the password policy applies."""
    _, created = _create_user(username, password, role, email)
    click.echo("User created." if created else f"User {username} already exists.")


def _create_user(username, password, role, email):
    try:
        return ensure_user(username, password, role, email=email)
    except WeakPassword as exc:
        raise click.ClickException(f"Password refused: {exc}") from exc


@cli.command("set-password")
@click.argument("username")
@click.password_option()
@with_appcontext
def set_password_command(username, password):
    """Set a user's password (the policy applies); their sessions and API tokens end."""
    user = appbuilder.sm.find_user(username=username)
    if user is None:
        raise click.ClickException(f"No user named {username!r}.")
    try:
        appbuilder.sm.reset_password(user.id, password)
    except WeakPassword as exc:
        raise click.ClickException(f"Password refused: {exc}") from exc
    click.echo(f"Password of {username} changed; their sessions and API tokens have ended.")


@cli.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@with_appcontext
def worker_command(burst):
    """Run an RQ worker (run as many as you like, on any machine)."""
    run_worker(burst=burst)


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--list", "list_name", help="Add every imported contact to this list (created if missing).")
@click.option("--format", "fmt", type=click.Choice(["auto", "propertyradar", "contacts", "dnc"]), default="auto")
@click.option("--mapping", type=click.File(), help='JSON {"CSV column": "field"} for a contacts file.')
@with_appcontext
def import_command(path, list_name, fmt, mapping):
    """Import a CSV file (PropertyRadar export, contacts, or a do-not-contact list)."""
    try:
        with open(path, "rb") as f:
            imp = create_import(f, Path(path).name, fmt=fmt, list_name=list_name,
                                mapping=json.load(mapping) if mapping else None)
    except BadFile as exc:
        raise click.ClickException(str(exc)) from exc
    if imp.status == "queued":
        with click.progressbar(length=1, label=f"Importing {imp.filename}", show_pos=True, show_eta=True) as bar:
            def progress(done, total):
                bar.length = total
                bar.update(done - bar.pos)

            run_import(imp.id, progress=progress)
    db.session.refresh(imp)
    counts = import_counts(imp.id)
    click.echo(f"Import {imp.id}: {imp.status}. Rows: {counts['rows']}. People: {counts['people']}.")
    if imp.error:
        raise click.ClickException(imp.error)


@cli.group("export")
def export_group():
    """Export data as CSV."""


@export_group.command("contacts")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@click.option("--list", "list_name", help="Only the members of this list.")
@with_appcontext
def export_contacts_command(path, list_name):
    """Write contacts to PATH as CSV (spreadsheet formulas neutralised)."""
    list_ids = None
    if list_name:
        contact_list = db.session.query(ContactList).filter_by(name=list_name).one_or_none()
        if contact_list is None:
            raise click.ClickException(f"No list named {list_name!r}.")
        list_ids = [contact_list.id]
    with open(path, "w", newline="", encoding="utf-8") as out:
        count = export_contacts(out, list_ids=list_ids)
    click.echo(f"{count} contacts written to {path}")


@cli.command("generate-key", with_appcontext=False)
def generate_key_command():
    """Print a new key for ENCRYPTION_KEY (integration secrets at rest)."""
    click.echo(generate_key())


@cli.command("rotate-secrets")
@with_appcontext
def rotate_secrets_command():
    """Re-encrypt every stored integration secret with the first key of ENCRYPTION_KEY."""
    with acting_as(None, "cli"):
        count = rotate_secrets()
        db.session.commit()
    click.echo(f"{count} secrets re-encrypted with the first ENCRYPTION_KEY; the old key can now be removed.")


@cli.command("demo")
@with_appcontext
def demo_command():
    """Load a small fake data set so a new user sees a populated CRM."""
    click.echo(load_demo())


# How `crm run` starts each worker process.
WORKER_COMMAND = [sys.executable, "-m", "run", "worker"]


@cli.command("run")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@click.option("--workers", default=1, type=int, help="RQ worker processes to start beside the web server.")
@with_appcontext
def run_command(host, port, workers):
    """Web server plus worker(s) on this machine. Ctrl-C stops everything."""
    init_database()
    refuse_unsafe_production(current_app)
    env = dict(os.environ, REDIS_URL=current_app.config["REDIS_URL"])
    children = []
    if sandbox_mode(current_app.config):  # no key in the environment or on screen: the built-in fake
        command, extra = fake_openphone.sandbox_child(current_app.config, port)
        env.update(extra)
        children.append(subprocess.Popen(command, env=env))
        click.echo(f"Sandbox mode: no OPENPHONE_API_KEY, texts go to the fake OpenPhone on port "
                   f"{current_app.config['SANDBOX_PORT']}")
    quickbooks = spawn_quickbooks_sandbox(env, port)
    # The web server loads the app once before it forks its workers (--preload). The URL is printed
    # once the login page answers; the workers start after it, so they do not slow the web's start.
    children.append(subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "2", "--threads", "4",
         "--preload", "--log-level", "warning", "--access-logfile", "-", "run:create_wsgi()"], env=env))
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per look at the login page
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    try:
        while not stop and all(child.poll() is None for child in children) and not page_answers(url + "/login/"):
            time.sleep(0.5)
        if not stop and all(child.poll() is None for child in children):
            click.echo(f"CRM running on http://{host}:{port}  (Ctrl-C stops)")
            children += [subprocess.Popen(WORKER_COMMAND, env=env) for _ in range(workers)]
            children += connect_quickbooks_sandbox(quickbooks)
        while not stop and all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    stop_processes(children, timeout=10)


def page_answers(url):
    """True once the web server serves this page."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def spawn_quickbooks_sandbox(env, port):
    """Without QUICKBOOKS_CLIENT_ID: start the seeded fake QuickBooks (connect_quickbooks_sandbox
    connects to it), so a fresh install's morning screen has money on it. Returns (process,
    refresh token), or None; sets the webhook verifier in env."""
    if not settings(current_app.config)["sandbox"]:
        return None
    sandbox_port = current_app.config["QUICKBOOKS_SANDBOX_PORT"]
    if not fake_server.port_free(sandbox_port):
        click.echo(f"QUICKBOOKS_SANDBOX_PORT {sandbox_port} is in use: the fake QuickBooks is not started "
                   "(set QUICKBOOKS_SANDBOX_PORT to a free port).")
        return None
    command, extra, token = fake_quickbooks.sandbox_child(current_app.config, port)
    env["QUICKBOOKS_WEBHOOK_VERIFIER"] = extra["QUICKBOOKS_WEBHOOK_VERIFIER"]
    return subprocess.Popen(command, env=dict(env, **extra)), token


def connect_quickbooks_sandbox(started):
    """Wait for the fake QuickBooks and connect to it. Returns the running process (or none)."""
    if started is None:
        return []
    child, token = started
    if not fake_server.wait_until_up(settings(current_app.config)["base_url"], timeout=60) or child.poll() is not None:
        click.echo("The fake QuickBooks did not start; QuickBooks stays disconnected.")
        stop_processes([child], timeout=5)
        return []
    try:
        with acting_as(None, "sandbox"):
            connect(fake_quickbooks.SANDBOX_REALM_ID, token)
    except QuickBooksError as exc:
        click.echo(f"Could not connect to the fake QuickBooks: {exc}")
    click.echo(f"Sandbox mode: no QUICKBOOKS_CLIENT_ID, connected to the fake QuickBooks on port "
               f"{current_app.config['QUICKBOOKS_SANDBOX_PORT']}")
    return [child]


def stop_processes(processes, timeout):
    """SIGTERM every process still running, then SIGKILL the ones not gone after `timeout` s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@cli.command("fake-openphone", with_appcontext=False)
@click.option("--port", default=lambda: config.SANDBOX_PORT, type=int)
@click.option("--webhook-url", default="http://127.0.0.1:5000/webhooks/openphone")
@click.option("--api-key", default="sandbox", help="The Authorization header it accepts.")
def fake_openphone_command(port, webhook_url, api_key):
    """Run the fake OpenPhone (sandbox mode and tests); signs webhooks with OPENPHONE_WEBHOOK_SECRET."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    fake_openphone.serve(port, webhook_url, api_key=api_key, webhook_secret=config.OPENPHONE_WEBHOOK_SECRET)


@cli.command("fake-quickbooks", with_appcontext=False)
@click.option("--port", default=lambda: int(os.environ.get("QUICKBOOKS_SANDBOX_PORT", "5056")), type=int)
@click.option("--webhook-url", default=None, help="Where to send signed webhooks (none: kept).")
@click.option("--seed/--no-seed", default=True, help="A small realistic company.")
@click.option("--volume", is_flag=True, help="The benchmark's volume (10,000 customers, 20,000 estimates, ...).")
@click.option("--rate", default=500, type=int, help="Requests per minute before 429 (0: no limit).")
def fake_quickbooks_command(port, webhook_url, seed, volume, rate):
    """Run the fake QuickBooks (sandbox mode, tests, benchmark); signs webhooks with
    QUICKBOOKS_WEBHOOK_VERIFIER and accepts QUICKBOOKS_SANDBOX_REFRESH_TOKEN as a refresh token."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    fake_quickbooks.serve(port, webhook_url, verifier=os.environ.get("QUICKBOOKS_WEBHOOK_VERIFIER") or "sandbox-verifier",
          seed=seed, volume=volume, refresh_token=os.environ.get("QUICKBOOKS_SANDBOX_REFRESH_TOKEN"), rate=rate)


@cli.group("openphone")
def openphone_group():
    """OpenPhone: its conversation history."""


@openphone_group.command("import-history")
@click.option("--since", default=None, help="Only what happened on or after this day (YYYY-MM-DD).")
@with_appcontext
def import_history_command(since):
    """Import every past OpenPhone text and call (resumable, idempotent, at the shared 10/s)."""
    try:
        since_at = datetime.strptime(since, "%Y-%m-%d") if since else None
    except ValueError as exc:
        raise click.BadParameter("write the day as YYYY-MM-DD, like 2025-01-31", param_hint="--since") from exc
    with acting_as(None, "cli"):
        try:
            run = import_history(since=since_at)
        except HistoryRunning as exc:
            raise click.ClickException(f"{exc}; wait for it or let recovery resume it") from exc
    shown = progress(run)
    click.echo(f"History import {run.id}: {run.status}. Texts: {shown['messages_created']} new, "
               f"{shown['messages_existing']} already here. Calls: {shown['calls_created']} new, "
               f"{shown['calls_existing']} already here. Skipped: {shown['skipped']}.")
    if run.status != "done":
        raise click.ClickException(run.error or "the import did not finish")


@cli.group("quickbooks")
def quickbooks_group():
    """The QuickBooks connection and its read-only mirror."""


@quickbooks_group.command("sync")
@click.option("--full", is_flag=True, help="Read every record, not only the changes since the last sync.")
@with_appcontext
def quickbooks_sync_command(full):
    """Run one QuickBooks sync now; exits 0 when it finished."""
    if not quickbooks_configured():
        raise click.ClickException("QuickBooks is not connected: connect it in Settings -> Integrations "
                                   "or with `crm quickbooks connect`.")
    try:
        with acting_as(None, "cli"):
            counts = run_sync(full=full)
    except Disconnected as exc:
        raise click.ClickException(f"QuickBooks refused the connection ({exc}); reconnect it in Settings -> "
                                   "Integrations, then sync again. Nothing was deleted.") from exc
    except SyncBusy as exc:
        raise click.ClickException(f"{exc} Try again when it has finished.") from exc
    except QuickBooksError as exc:  # 5xx, timeouts or 429s past the retries: what was read is kept
        raise click.ClickException(f"QuickBooks did not answer ({exc}); what was read so far is kept and the "
                                   "next sync starts from the last finished one.") from exc
    for entity in ("Customer", "Estimate", "Invoice", "Payment"):
        numbers = counts.get(entity) or {}
        click.echo(f"{entity}: " + ", ".join(f"{numbers.get(k, 0)} {k}" for k in
                                              ("created", "updated", "deleted", "unchanged")))
    click.echo(f"Contacts created: {counts.get('contacts_created', 0)}. Jobs: {counts['jobs']['created']} new, "
               f"{counts['jobs']['paid']} paid. To-dos: {counts['todos']['created']} new, "
               f"{counts['todos']['closed']} closed. ({counts['how']} sync)")


@quickbooks_group.command("connect")
@click.option("--realm-id", required=True, help="The QuickBooks company id (realmId).")
@click.option("--refresh-token", required=True, help="A refresh token for that company (e.g. from Intuit's "
                                                     "OAuth Playground); it is rotated at once and stored encrypted.")
@with_appcontext
def quickbooks_connect_command(realm_id, refresh_token):
    """Connect a headless server to QuickBooks with a refresh token."""
    try:
        with acting_as(None, "cli"):
            connect(realm_id, refresh_token)
    except QuickBooksError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Connected to QuickBooks company {realm_id}.")


def create_wsgi():
    """WSGI entry point for gunicorn: `gunicorn 'run:create_wsgi()'`. With CRM_ENV=production it
    refuses unsafe settings (app/production.py)."""
    app = create_app()
    refuse_unsafe_production(app)
    with app.app_context():  # gunicorn --preload forks after this: no connection may be shared
        db.engine.dispose()
    return app


def main():
    cli(prog_name="crm")


if __name__ == "__main__":
    main()
