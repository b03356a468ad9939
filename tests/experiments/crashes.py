"""Callbacks that simulate a crash during training (shared by the resume tests)."""

from __future__ import annotations


class Crash(Exception):
    pass


class CrashAtStep:
    """Crash in the middle of an epoch, right after optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_batch_end(self, model, step):
        if step == self.step:
            raise Crash


class CrashAtEpochEnd:
    """Crash after the other callbacks saw epoch ``epoch`` but before its checkpoint."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, model, epoch, metrics):
        if epoch == self.epoch:
            raise Crash
