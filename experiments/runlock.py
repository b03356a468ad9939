"""One writer per run directory: a lock file that names the process holding it.

Two ``gaaf train`` (or ``gaaf reproduce``) processes on the same run would interleave
checkpoints and overwrite each other's record. The first to start creates
``<run>/.lock`` (``O_EXCL``: atomic) holding its pid and host; a second one stops at
once with a message that names the lock. A lock left by a process that died (same host,
pid gone) is stale and replaced. Holding the lock, the run removes the temporary files
that an interrupted atomic write left behind.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

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


class RunLock:
    """``with RunLock(run_dir):`` holds ``run_dir/.lock`` for the block."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK
        self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Create the lock (and the directory); RunLockedError if a live process holds it,
        OSError (a file in the way, no permission) as it comes."""
        self.directory.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": platform.node()}
        for _ in range(2):  # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None and holder.get("host") == me["host"] and \
                        isinstance(holder.get("pid"), int) and not _alive(holder["pid"]):
                    self.path.unlink(missing_ok=True)  # stale: its process is gone
                    continue
                who = (f"pid {holder.get('pid')} on {holder.get('host')}" if holder
                       else "a process that left no pid")
                raise RunLockedError(
                    f"{self.directory} is being written by another run ({who}): lock file "
                    f"{self.path}. Wait for that run, or delete the lock file if it is gone."
                ) from None
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            self._remove_stray_temporaries()
            return
        raise RunLockedError(f"could not take the lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _remove_stray_temporaries(self) -> None:
        # experiments/atomic.py writes ".<name>.<random>.tmp" beside the file it replaces
        for stray in self.directory.glob(".*.tmp"):
            stray.unlink(missing_ok=True)
