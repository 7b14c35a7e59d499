"""RQ entry point for imports: the Import row holds all state, the job only carries its id."""


def run_import_job(import_id):
    from app.imports import run_import

    return run_import(import_id)
