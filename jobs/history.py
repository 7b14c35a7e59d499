"""RQ entry point for OpenPhone history imports: the HistoryImport row holds all state."""


def run_history_job(import_id):
    from app.history import run_history_import

    return run_history_import(import_id)
