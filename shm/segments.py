"""Named shared-memory segments: creation, attachment, and cleanup of dead runs.

Every segment of a run is named ``earwig-<pid>-<token>-<ring>``, the pid being the run's
first process (the supervisor's, or the monitor's screen that started it), so a later run
can tell which segments belong to a process that no longer exists and remove them, and a
test can count what one run left behind. Segments are created and unlinked by the
supervisor (a screen removes what its supervisor's process left, should it die); actors
and the screen attach by name.

Python's ``resource_tracker`` is kept out of it: before 3.13 it unlinks a segment when *any*
process that attached it exits, which would destroy a ring the moment an actor is
restarted (python/cpython#82300). Ownership is explicit instead: the supervisor unlinks on
every exit path it survives, and the next start removes what a killed supervisor left.
"""

from __future__ import annotations

import mmap
import os
import secrets
import sys
from multiprocessing import shared_memory
from pathlib import Path

PREFIX = "earwig-"
SHM_DIR = Path("/dev/shm")


def run_prefix() -> str:
    """A prefix unique to this process and run: ``earwig-<pid>-<token>-``."""
    return f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}-"


class _Attached:
    """An existing POSIX segment mapped without the tracker (Python < 3.13). Registering and
    unregistering around an attach is not enough there: the processes of a run share one
    tracker that keeps a set of names, so two actors attaching the same ring at once (the
    preview and final actors at the first speech) unregister it twice, and the tracker
    prints a traceback on the terminal."""

    def __init__(self, name: str) -> None:
        from _posixshmem import shm_open

        self._name = "/" + name
        descriptor = shm_open(self._name, os.O_RDWR, mode=0o600)
        try:
            self._mmap = mmap.mmap(descriptor, os.fstat(descriptor).st_size)
        finally:
            os.close(descriptor)
        self.buf = memoryview(self._mmap)

    def close(self) -> None:
        self.buf.release()
        self._mmap.close()


def create(name: str, size: int) -> shared_memory.SharedMemory | _Attached:
    """A new segment of ``size`` bytes; OSError where shared memory cannot hold it (nothing
    is left behind then). Before 3.13 it is made and mapped without the tracker: Python's
    own create registers the name only after sizing it, so a segment too big for /dev/shm
    was unregistered before it was registered and the tracker printed a traceback."""
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, create=True, size=size, track=False)
    from _posixshmem import shm_open, shm_unlink

    descriptor = shm_open("/" + name, os.O_CREAT | os.O_EXCL | os.O_RDWR, mode=0o600)
    try:
        os.ftruncate(descriptor, size)
    except OSError:
        shm_unlink("/" + name)
        raise
    finally:
        os.close(descriptor)
    return _Attached(name)


def attach(name: str) -> shared_memory.SharedMemory | _Attached:
    if sys.version_info >= (3, 13):
        return shared_memory.SharedMemory(name=name, track=False)
    if os.name != "posix":  # named file mappings: no tracker
        return shared_memory.SharedMemory(name=name)
    return _Attached(name)


def unlink(segment: shared_memory.SharedMemory) -> None:
    """Remove the segment's name; mappings still open stay valid until closed."""
    if sys.version_info >= (3, 13):
        segment.unlink()
    else:  # SharedMemory.unlink() would unregister from the tracker a second time
        from _posixshmem import shm_unlink

        shm_unlink(segment._name)  # type: ignore[attr-defined]


def remove(name: str) -> bool:
    """Unlink a segment by name; False when it was already gone."""
    try:
        segment = attach(name)
    except FileNotFoundError:
        return False
    segment.close()
    unlink(segment)
    return True


def existing(prefix: str = PREFIX) -> list[str]:
    """Names of the segments on this machine that start with ``prefix`` (Linux only)."""
    if not SHM_DIR.is_dir():
        return []
    return sorted(p.name for p in SHM_DIR.iterdir() if p.name.startswith(prefix))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Unlink the segments of runs whose supervisor process is gone; returns their names."""
    removed = []
    for name in existing():
        pid_text = name[len(PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)) and remove(name):
            removed.append(name)
    return removed
