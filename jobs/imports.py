"""RQ entry point for imports: the Import row holds all state, the job only carries its id."""
from app.imports import run_import


def run_import_job(import_id):
    return run_import(import_id)
