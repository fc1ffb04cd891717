"""Worker processes that never outlive the command that started them.

Killed with SIGKILL (or crashing), a command cannot shut its process pool down, and idle workers
(ingest's feature workers are ~340 MB each) and the multiprocessing resource tracker would wait for
tasks forever. :func:`die_with_parent` is a pool ``initializer``: on Linux the kernel sends the worker
SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``); a daemon thread polling ``os.getppid()``
does the same everywhere else, and covers a parent that died before the prctl call. Ctrl-C is the
parent's business (it shuts the pool down), so workers ignore SIGINT.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1            # linux/prctl.h
PARENT_POLL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer (``initializer=die_with_parent, initargs=(os.getpid(),)``)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still works
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent_pid:   # re-parented: the command is gone
            os._exit(1)
