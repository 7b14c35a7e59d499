"""RQ entry point for contact exports too big for one request."""
from app import exports


def run_export_job(export_id):
    return exports.run_export(export_id)
