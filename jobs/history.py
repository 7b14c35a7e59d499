"""RQ entry point for OpenPhone history imports: the HistoryImport row holds all state."""
from app.history import run_history_import


def run_history_job(import_id):
    return run_history_import(import_id)
