"""Threads and bounded queues shared by every scheduler: a stage's error reaches the caller.

Decode and encode run in threads of their own (PyAV releases the GIL in codec work),
the stages in the calling thread; queues of a few frames keep memory constant
however long the video is.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from vx_engine.errors import Cancelled

QUEUE_FRAMES = 4
END = object()  # end-of-stream marker on every queue


class StageThread(threading.Thread):
    """A worker whose exception is re-raised in the caller by ``check``."""

    def __init__(self, name: str, target: Callable[[], None]) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class CallerThread:
    """The calling thread as a producer: its failure is raised where it happens, so a
    consumer waiting on it only needs the stop flag."""

    name = "vx-stages"

    def check(self) -> None:
        return None


class StopSignal:
    """Shared stop flag: set on cancel or on any stage's failure."""

    def __init__(self, cancel: threading.Event | None) -> None:
        self.cancel = cancel or threading.Event()
        self.failed = threading.Event()

    def is_set(self) -> bool:
        return self.cancel.is_set() or self.failed.is_set()


def put_or_stop(
    q: queue.Queue, item: object, stop: StopSignal, consumer: StageThread | None = None
) -> None:
    while True:
        if stop.is_set():
            raise Cancelled("cancelled")
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            # a consumer that died (the encoder on a full disk) never drains the queue again
            if consumer is not None:
                consumer.check()


def get_or_stop(q: queue.Queue, stop: StopSignal, producer: StageThread | CallerThread) -> object:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            producer.check()
            # stop.failed too: when the stages fail the encoder must not wait out the
            # caller's join timeout for frames that never come
            if stop.is_set():
                raise Cancelled("cancelled") from None


def finish_stages(
    to_encode: queue.Queue, stop: StopSignal, decoder: StageThread, encoder: StageThread
) -> None:
    """Send the end marker and wait until the encoder has written every frame."""
    put_or_stop(to_encode, END, stop, encoder)
    while encoder.is_alive():
        encoder.join(0.1)
        encoder.check()
        if stop.cancel.is_set():
            raise Cancelled("cancelled")
    encoder.check()
    decoder.check()


def stop_stages(stop: StopSignal, decoder: StageThread, encoder: StageThread) -> None:
    """After a failure: stop both threads, and raise a stage's own error if it has one."""
    stop.failed.set()
    for thread in (decoder, encoder):
        if thread.ident is not None:  # started (an interrupt may come before the second is)
            thread.join(5)
    # a stage's own error explains more than the Cancelled it caused elsewhere
    for thread in (decoder, encoder):
        if thread.error is not None and not isinstance(thread.error, Cancelled):
            raise thread.error from None
