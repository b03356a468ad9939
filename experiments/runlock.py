"""One writer per run directory: a lock file that names the process holding it.

Two ``gaaf train`` (or ``gaaf reproduce``) processes on the same run would interleave
checkpoints and overwrite each other's record. The first to start holds ``<run>/.lock``
and writes its pid and host into it; a second one stops at once with a message that
names the lock. Holding means an exclusive ``flock`` on the open file: the kernel
releases it when the process ends however it ends, so a lock file left by a process
that died (``kill -9``, a crash) is stale and simply taken over, with no race between
two processes that find it at the same moment. Where ``flock`` is missing, or a lock
file names another host (whose processes this host cannot see), the file's content
decides: a lock of a dead pid on this host is replaced, any other is respected.
Holding the lock, the run removes the temporary files that an interrupted atomic write
left behind.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: the lock file's content alone decides
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


class RunLockedError(RuntimeError):
    """Another live process writes this run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read(fd: int) -> dict | None:
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    try:
        holder = json.loads(data)
    except ValueError:
        return None
    return holder if isinstance(holder, dict) else None


class RunLock:
    """``with RunLock(run_dir):`` holds ``run_dir/.lock`` for the block."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (creating the directory); RunLockedError if a live process holds
        it, OSError (a file in the way, no permission) as it comes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": platform.node()}
        for _ in range(10):  # a retry when the file changed under us (released, replaced)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                holder = self._take(fd, me)
            except BaseException:
                os.close(fd)
                raise
            if holder is _RETRY:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(me).encode())
            os.fsync(fd)
            self._fd = fd
            self._remove_stray_temporaries()
            return
        raise RunLockedError(f"could not take the lock {self.path}: it keeps changing")

    def _take(self, fd: int, me: dict) -> object:
        """Lock the open file ``fd``: None when taken, _RETRY when the path no longer
        names this file; RunLockedError when another process holds it."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._locked(_read(fd)) from None
        try:
            if os.stat(self.path).st_ino != os.fstat(fd).st_ino:
                return _RETRY  # released (unlinked) and made again since we opened it
        except FileNotFoundError:
            return _RETRY
        holder = _read(fd)
        if not holder or holder == me:
            return None
        if holder.get("host") != me["host"]:
            raise self._locked(holder)  # another host: its processes are not visible here
        pid = holder.get("pid")
        if fcntl is None and isinstance(pid, int) and _alive(pid):
            raise self._locked(holder)
        return None  # this host, and not holding the flock (or dead): stale, taken over

    def _locked(self, holder: dict | None) -> RunLockedError:
        who = (f"pid {holder.get('pid')} on {holder.get('host')}" if holder
               else "a process that has not written its pid yet")
        return RunLockedError(
            f"{self.directory} is being written by another run ({who}): lock file "
            f"{self.path}. Wait for that run, or delete the lock file if it is gone.")

    def release(self) -> None:
        """Remove the lock file, then let go of it (in this order: a process that opens
        the old file after the unlink sees it is no longer the lock, and retries)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def _remove_stray_temporaries(self) -> None:
        # experiments/atomic.py writes ".<name>.<random>.tmp" beside the file it replaces
        for stray in self.directory.glob(".*.tmp"):
            stray.unlink(missing_ok=True)


_RETRY = object()
