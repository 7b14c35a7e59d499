"""The worker process: drains the queue and, every few seconds, re-enqueues what the
database says is unfinished (so a lost Redis or a killed worker never loses work)."""
import logging
import os
import signal
import socket
import time

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import SimpleWorker
from rq.exceptions import StopRequested

from app.extensions import db
from app.queue import clear_heartbeat, get_queue, get_redis, write_heartbeat

log = logging.getLogger(__name__)
TICK_SECONDS = float(os.environ.get("WORKER_TICK_SECONDS", "5"))


class CrmWorker(SimpleWorker):
    """Runs jobs in this process; each job starts with a fresh database session."""

    def perform_job(self, job, queue, *args, **kwargs):
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            db.session.remove()


def tick():
    """Re-enqueue unfinished work recorded in the database. Safe to run anywhere, any time."""
    from jobs import maintenance

    maintenance.recover_unfinished()
    db.session.remove()


def run_worker(burst=False):
    """Work until SIGTERM/SIGINT (or until the queue is empty with burst=True)."""
    name = f"{socket.gethostname()}.{os.getpid()}"
    stopping = []

    def stop(*_):
        stopping.append(1)

    signal.signal(signal.SIGTERM, stop)
    redis = get_redis()
    last_tick = 0.0
    log.info("worker %s started", name)
    try:
        while not stopping:
            try:
                last_tick = _work_once(name, redis, last_tick, stopping, stop)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # Redis restarted or unreachable: the database still holds every piece of work,
                # so wait and carry on; the next tick re-enqueues what Redis lost.
                log.warning("worker %s: Redis unavailable (%s); retrying", name, exc)
                db.session.remove()
                time.sleep(1)
            if burst:
                break
    finally:  # RQ's own SIGTERM handler may end the process from inside work()
        try:
            clear_heartbeat(name)
        except (RedisConnectionError, RedisTimeoutError):
            pass
        log.info("worker %s stopped", name)


def _work_once(name, redis, last_tick, stopping, stop):
    """One tick (when due) and one burst of jobs; returns when the tick last ran."""
    now = time.monotonic()
    if now - last_tick >= TICK_SECONDS:
        write_heartbeat(name)
        try:
            tick()
        except Exception:  # noqa: BLE001 - a failed tick is logged and retried next time
            log.exception("worker tick failed")
            db.session.remove()
        last_tick = now
    worker = CrmWorker([get_queue()], connection=redis)
    try:
        worker.work(burst=True, with_scheduler=True, logging_level="WARNING")
    except StopRequested:  # a stop signal that landed in RQ's teardown
        stopping.append(1)
    # work() installs RQ's own SIGTERM/SIGINT handlers: take the stop request over and
    # put ours back for the time between bursts.
    if worker._stop_requested:
        stopping.append(1)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    time.sleep(0.2)
    return last_tick
