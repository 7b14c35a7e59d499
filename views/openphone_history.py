"""Settings -> Integrations, OpenPhone part: import the history (button, live progress, what the
nightly pull found that webhooks had missed) and the webhooks OpenPhone has for this CRM."""
from datetime import datetime

from flask import current_app, flash, jsonify, redirect, request, url_for

from app import history, webhook_health
from app.extensions import db
from app.openphone import OpenPhoneError


def screen():
    """Template values for the OpenPhone history and webhooks panels."""
    runs = history.latest_runs()
    latest = runs[0] if runs else None
    nightly = next((r for r in runs if r.kind == "nightly" and r.status == "done"), None)
    return {"history_runs": [history.progress(r) for r in runs],
            "history_latest": history.progress(latest) if latest else None,
            "history_skipped": history.skipped_items(latest.id) if latest else [],
            "history_nightly": history.missed_by_webhooks(nightly.id) if nightly else None,
            "webhooks": webhook_health.registered_webhooks()}


def start(user_id):
    since_text = request.form.get("since", "").strip()
    try:
        since = datetime.strptime(since_text, "%Y-%m-%d") if since_text else None
    except ValueError:
        flash("Write the start day as YYYY-MM-DD, like 2025-01-31, or leave it empty for the whole history.",
              "danger")
        return redirect(url_for("IntegrationsView.index"))
    run = history.start_history_import("full", since=since, user_id=user_id)
    flash(f"History import {run.id} is under way: its progress below updates by itself until it is done.", "success")
    return redirect(url_for("IntegrationsView.index") + "#openphone-history")


def progress_json():
    runs = history.latest_runs(1)
    shown = history.progress(runs[0]) if runs else {}
    return jsonify({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in shown.items()})


def register_missing(user_id):
    url = webhook_health.crm_webhook_url(request.url_root)
    try:
        created = webhook_health.register_missing(url, user_id=user_id)
    except OpenPhoneError as exc:  # the webhooks created before the failure are kept, with their keys
        db.session.rollback()
        current_app.logger.warning("registering webhooks failed: %s", exc)
        flash(f"OpenPhone did not register the webhooks: {exc}", "danger")
        return redirect(url_for("IntegrationsView.index") + "#openphone-webhooks")
    db.session.commit()
    flash(f"Registered {len(created)} webhook(s) for {url}." if created else "Every webhook is already registered.",
          "success")
    return redirect(url_for("IntegrationsView.index") + "#openphone-webhooks")
