"""Double-buffered CUDA streams and pinned host buffers for the NVENC-less output path.

H100/H200 have NVDEC but no NVENC, so enhanced frames go back to the host for a
CPU encoder. ``HostDownloadRing`` overlaps those device->host copies with the
next frame's inference: each copy runs on a side stream into one of N pinned
buffers and only the consumer of a given frame waits for that frame's copy.

Without CUDA the same classes work synchronously on ordinary memory, so the
pipeline has one code path and the ring logic is tested on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vx_engine.gpu.probe import cuda_available


def _use_cuda(enabled: bool | None) -> bool:
    """CUDA streams when asked for (None: whenever there is CUDA) and there is CUDA."""
    return cuda_available() if enabled is None else enabled and cuda_available()


class RoundRobin:
    """Indices 0..count-1 in turn: which buffer/stream a new piece of work takes."""

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"need at least one slot, got {count}")
        self.count = count
        self._next = 0

    def take(self) -> int:
        index = self._next
        self._next = (self._next + 1) % self.count
        return index


class StreamSlots:
    """N CUDA streams used in turn (N=2: double buffering); ``None`` streams on CPU.

    ``enabled=False`` for a pipeline on CPU tensors, also on a machine with a GPU.
    """

    def __init__(self, count: int = 2, device: int = 0, enabled: bool | None = None) -> None:
        import torch

        self.device = device
        self.enabled = _use_cuda(enabled)
        self.streams = [
            torch.cuda.Stream(device=device) if self.enabled else None for _ in range(count)
        ]
        self._order = RoundRobin(count)

    def next(self) -> tuple[int, Any]:
        """(slot index, stream) for the next piece of work; the stream first waits on the caller's."""
        import torch

        index = self._order.take()
        stream = self.streams[index]
        if stream is not None:
            stream.wait_stream(torch.cuda.current_stream(self.device))
        return index, stream


@dataclass
class PendingDownload:
    """A device->host copy in flight; ``wait`` blocks only on this copy."""

    host: Any  # torch CPU tensor (pinned with CUDA), a view of a ring buffer
    done: Any  # torch.cuda.Event or None
    slot: int

    def wait(self):
        """The frame as a NumPy array. It aliases the ring buffer: valid until the slot is reused."""
        if self.done is not None:
            self.done.synchronize()
        return self.host.numpy()


class HostDownloadRing:
    """``count`` pinned host buffers and a copy stream for async device->host transfers.

    A buffer is reused after ``count`` further downloads; before overwriting it the
    copy stream waits for the previous copy into it (already consumed by then in a
    frame-ordered pipeline, since the consumer waits for frames in order).
    """

    def __init__(self, count: int = 3, device: int = 0, enabled: bool | None = None) -> None:
        import torch

        self.enabled = _use_cuda(enabled)
        self.device = device
        self.copy_stream = torch.cuda.Stream(device=device) if self.enabled else None
        self._order = RoundRobin(count)
        self._buffers: list[Any] = [None] * count
        self._events: list[Any] = [None] * count

    def _buffer(self, slot: int, like) -> Any:
        import torch

        buffer = self._buffers[slot]
        if buffer is None or buffer.numel() < like.numel() or buffer.dtype != like.dtype:
            buffer = torch.empty(like.numel(), dtype=like.dtype, pin_memory=self.enabled)
            self._buffers[slot] = buffer
        return buffer[: like.numel()].view(like.shape)

    def download(self, tensor) -> PendingDownload:
        """Queue a copy of ``tensor`` (produced on the current stream) into the next host buffer."""
        import torch

        slot = self._order.take()
        if self._events[slot] is not None:
            self._events[slot].synchronize()  # the slot's previous frame: normally long done
        host = self._buffer(slot, tensor)
        if not self.enabled or tensor.device.type != "cuda":
            host.copy_(tensor)
            return PendingDownload(host, None, slot)
        self.copy_stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(self.copy_stream):
            host.copy_(tensor, non_blocking=True)
            tensor.record_stream(self.copy_stream)  # keep the source alive until the copy ran
            done = torch.cuda.Event()
            done.record(self.copy_stream)
        self._events[slot] = done
        return PendingDownload(host, done, slot)
