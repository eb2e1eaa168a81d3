"""A bound on how long a rank waits for the others.

MPI's collectives block until every rank of the communicator has joined. A
rank that stops without dying (a deadlock, an endless loop, a process
stopped by a debugger or the scheduler) would leave the others waiting for
ever. Each exchange of ``MPIDataParallel`` runs inside ``Watchdog.waiting``:
a daemon thread wakes when the exchange's deadline passes, prints which
exchange timed out and ends the whole job through ``MPI_Abort``. The
blocked call releases the GIL (mpi4py does for every blocking call), so
the thread can run while the main thread waits.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator


class Watchdog:
    """Ends the job when one exchange lasts more than ``timeout`` seconds.

    ``abort`` is called from the watchdog's thread (``comm.Abort``); should
    it return, the process exits with status 1 so that ``mpirun`` ends the
    others.
    """

    def __init__(self, timeout: float | None, rank: int, abort: Callable[[], None]) -> None:
        self.timeout = timeout
        self.rank = rank
        self._abort = abort
        self._lock = threading.Condition()
        self._what: str | None = None
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """The block, an exchange described by ``what``, must end in time."""
        if self.timeout is None:
            yield
            return
        with self._lock:
            self._what, self._deadline = what, time.monotonic() + self.timeout
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, daemon=True,
                                                name="fastconv-mpi-watchdog")
                self._thread.start()
            self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                self._what = self._deadline = None
                self._lock.notify()

    def _watch(self) -> None:
        with self._lock:
            while True:
                if self._deadline is None:
                    self._lock.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left <= 0:
                    what = self._what
                    break
                self._lock.wait(left)
        sys.stderr.write(
            f"fastconv.distribute: rank {self.rank} waited more than {self.timeout:g} s "
            f"for the other ranks in {what}: one of them has stopped or hangs. "
            "Aborting the job (MPIDataParallel(timeout=...) sets the bound).\n")
        sys.stderr.flush()
        sys.stdout.flush()
        try:
            self._abort()
        finally:
            os._exit(1)
