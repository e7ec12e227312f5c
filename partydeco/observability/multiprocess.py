"""The directory prometheus-client's multiprocess mode shares between worker processes.

With ``partydeco serve --workers N`` (``app.run(workers=N)``) and metrics on, the
parent process makes a fresh directory, names it in ``PROMETHEUS_MULTIPROC_DIR``
before forking, so every worker writes its values there and a scrape of any
worker reads them all; when a worker exits its live gauges are dropped, and when
the server stops the directory is removed. A directory the environment already
names is used as it is (emptied at start, as prometheus-client asks, and kept).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

__all__ = ["ENV_VAR", "shared_directory", "worker_exited"]

logger = logging.getLogger("partydeco")

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_directory() -> Iterator[str]:
    """Set up the shared directory for the workers started in the block (see the module)."""
    given = os.environ.get(ENV_VAR)
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
        yield given
        return
    directory = tempfile.mkdtemp(prefix="partydeco-metrics-")
    os.environ[ENV_VAR] = directory
    try:
        yield directory
    finally:
        os.environ.pop(ENV_VAR, None)
        shutil.rmtree(directory, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """Drop the live gauges (open connections, loaded rooms) of worker *pid*."""
    directory = os.environ.get(ENV_VAR)
    if not directory:
        return
    try:
        from prometheus_client import multiprocess
    except ImportError:
        return
    try:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    except OSError as exc:
        logger.warning("could not drop the metrics of worker %d: %s", pid, exc)
