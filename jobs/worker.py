"""The worker process: RQ's own loop drains the queue and, every WORKER_TICK_SECONDS, writes
the heartbeat and re-enqueues what the database says is unfinished (so a lost Redis or a
killed worker never loses work). SIGTERM or Ctrl-C is RQ's warm shutdown: the job in hand
finishes, then the worker stops; a second signal stops it at once."""
import logging
import os
import socket

from flask import current_app
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.utils import now

from app.extensions import db
from app.queue import clear_heartbeat, get_queue, get_redis, write_heartbeat

log = logging.getLogger(__name__)


class CrmWorker(SimpleWorker):
    """Runs jobs in this process; each job starts with a fresh database session.

    With tick_seconds (`crm worker`), RQ's maintenance runs that often, followed by the tick:
    the worker waits for a job at most that long, so an idle worker ticks on time too."""

    def __init__(self, queues, tick_seconds=None, **kwargs):
        self.tick_seconds = tick_seconds
        if tick_seconds:
            kwargs["maintenance_interval"] = tick_seconds
        super().__init__(queues, **kwargs)

    @property
    def dequeue_timeout(self):
        return self.tick_seconds or super().dequeue_timeout

    def perform_job(self, job, queue, *args, **kwargs):
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            db.session.remove()

    def run_maintenance_tasks(self):
        if not self.tick_seconds:
            return super().run_maintenance_tasks()
        try:
            write_heartbeat(heartbeat_name())
            tick()
            super().run_maintenance_tasks()
        except StopRequested:  # a warm shutdown while idle: RQ's loop ends on it
            raise
        except Exception:  # noqa: BLE001 - a failed tick is logged and runs again next time
            log.exception("worker tick failed")
            self.last_cleaned_at = now()
        finally:
            db.session.remove()


def tick():
    """Re-enqueue unfinished work recorded in the database. Safe to run anywhere, any time."""
    from jobs import maintenance

    maintenance.recover_unfinished()
    db.session.remove()


def heartbeat_name():
    """This worker as /health shows it: host and process id."""
    return f"{socket.gethostname()}.{os.getpid()}"


class _WaitForRedis(ExponentialBackoff):
    """Retry a Redis command every few seconds for as long as Redis is away, and say so."""

    def __init__(self):
        super().__init__(cap=2, base=0.05)

    def compute(self, failures):
        if failures == 1 or failures % 30 == 0:
            log.warning("Redis unavailable (%s failed attempts); waiting for it", failures)
        return super().compute(failures)


def run_worker(burst=False):
    """Work until SIGTERM/SIGINT (or until the queue is empty with burst=True)."""
    redis = get_redis()
    # A restarted or unreachable Redis makes every command of this process (RQ's and the jobs')
    # wait and retry rather than end the worker: the database still holds every piece of work,
    # and the next tick re-enqueues what Redis lost.
    redis.set_retry(Retry(_WaitForRedis(), retries=-1))
    worker = CrmWorker([get_queue()], connection=redis, tick_seconds=current_app.config["WORKER_TICK_SECONDS"])
    log.info("worker %s started", heartbeat_name())
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        clear_heartbeat(heartbeat_name())
        log.info("worker %s stopped", heartbeat_name())
