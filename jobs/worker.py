"""The worker process: RQ's own work loop, whose maintenance step also re-enqueues what the
database says is unfinished, so a lost Redis or a killed worker never loses work."""
import logging
import os
import socket
import time

from flask import current_app
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.exceptions import StopRequested

from app.extensions import db
from app.queue import clear_heartbeat, get_queue, get_redis, write_heartbeat
from jobs.maintenance import recover_unfinished

log = logging.getLogger(__name__)
# RQ waits this much longer than its dequeue timeout before it calls a silent worker dead.
RQ_TTL_MARGIN_SECONDS = 15


class CrmWorker(SimpleWorker):
    """Runs jobs in this process, each with a fresh database session. With `tick_seconds`, RQ's
    maintenance step runs that often and also runs the recovery tick (jobs/maintenance.py);
    RQ's blocking wait for a job is cut to the same length so the tick is never late."""

    def __init__(self, queues, *, tick_seconds=None, **kwargs):
        if tick_seconds:
            kwargs.update(maintenance_interval=tick_seconds,
                          worker_ttl=max(1, round(tick_seconds)) + RQ_TTL_MARGIN_SECONDS)
        super().__init__(queues, **kwargs)
        self.recovers = bool(tick_seconds)
        self.stopping = self.ticking = False

    def perform_job(self, job, queue, *args, **kwargs):
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            db.session.remove()

    def run_maintenance_tasks(self):
        """RQ's registry cleaning, then the recovery tick. A stop signal during either waits for
        the step's end (raised inside it, the stop could be swallowed by a step's own error handling)."""
        self.ticking = True
        try:
            super().run_maintenance_tasks()
            if self.recovers:
                write_heartbeat(self.name)
                recover_unfinished()
        except StopRequested:
            raise
        except Exception:  # noqa: BLE001 - a failed tick is logged and runs again next time
            log.exception("worker %s: maintenance failed", self.name)
        finally:
            self.ticking = False
            db.session.remove()
        if self.stopping:
            raise StopRequested()

    def request_stop(self, signum, frame):
        """SIGTERM/SIGINT: RQ's warm shutdown (the job in hand finishes first); during maintenance,
        at its end. When Redis is gone there is nothing to record there: stop at once instead of
        failing in the handler."""
        self.stopping = True
        if self.ticking:
            return
        try:
            super().request_stop(signum, frame)
        except RedisError as exc:
            raise StopRequested() from exc


def run_worker(burst=False):
    """Work until SIGTERM/SIGINT (or until the queue is empty with burst=True). RQ's loop ends
    when Redis goes away mid-step; the database still holds every piece of work, so start the
    loop again, recovery tick first, once Redis answers."""
    worker = CrmWorker([get_queue()], connection=get_redis(), name=f"{socket.gethostname()}.{os.getpid()}",
                       tick_seconds=current_app.config["WORKER_TICK_SECONDS"])
    log.info("worker %s started", worker.name)
    try:
        while True:
            try:
                worker.work(burst=burst, logging_level="WARNING")
            except RedisError as exc:
                if not worker.stopping:
                    log.warning("worker %s: Redis unavailable (%s); starting again", worker.name, exc)
            except StopRequested:  # a stop signal that landed between two of RQ's steps
                worker.stopping = True
            if burst or worker.stopping:
                break
            try:
                _pause_before_restart(worker)
            except StopRequested:
                break
    finally:
        try:
            clear_heartbeat(worker.name)
        except RedisError:
            pass
        log.info("worker %s stopped", worker.name)


def _pause_before_restart(worker):
    """A second of rest, then mark the old registration dead (RQ refuses to register a name
    that is still alive) and run the recovery tick first in the next loop."""
    db.session.remove()
    time.sleep(1)
    try:
        worker.register_death()
    except RedisError:
        pass  # still down: work() fails again and we come back here
    worker.last_cleaned_at = None
