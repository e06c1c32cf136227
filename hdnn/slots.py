"""Machine-wide slots for graph searches: HDNN_SEARCH_SLOTS=DIR:N.

A recipe runs several systems' decodings side by side, each split into jobs, and `run_demo.sh`
runs two recipes (IHM and SDM) at once, so far more searches than cores can be running at a
time. A search walks a graph of a few hundred MB and its token lists; several of them taking
turns on one core evict each other's caches, and the same search costs more CPU time (README.md,
"Measured"). With HDNN_SEARCH_SLOTS set, a decoding job waits until it holds one of N lock
files in DIR before it reads its graph and searches, and frees it when done, so at most N
searches run on the machine whatever the number of recipes, systems and jobs.

Unset (the default), nothing waits. Set it only for jobs that share one machine: lock files on
a network file system would limit the jobs of every node together.
"""
import os
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from hdnn.errors import HdnnError

ENV = "HDNN_SEARCH_SLOTS"
POLL_SECONDS = 0.2


def parse_slots(spec):
    """(Path DIR, int N) of a `DIR:N` value of HDNN_SEARCH_SLOTS."""
    where, _, count = spec.rpartition(":")
    if not where or not count.isdigit() or int(count) < 1:
        raise HdnnError(f"{ENV}={spec!r}: not DIR:N (a directory and a number of slots, at least 1)")
    return Path(where), int(count)


@contextmanager
def search_slot(spec=None):
    """Hold one of the N slots of `spec` (default: $HDNN_SEARCH_SLOTS) for the body; no wait
    when neither is set. Slots are tried in order and polled every POLL_SECONDS; a job that
    dies frees its slot (the lock is the open file's)."""
    spec = os.environ.get(ENV) if spec is None else spec
    if not spec:
        yield
        return
    where, count = parse_slots(spec)
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise HdnnError(f"{ENV}: cannot make the slot directory {where}: {e.strerror}") from None
    locks = [FileLock(where / f"slot.{i}.lock") for i in range(count)]
    while True:
        for lock in locks:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield
            finally:
                lock.release()
            return
        time.sleep(POLL_SECONDS)
