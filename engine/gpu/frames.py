"""Device-side stages and sources: the CPU pipeline's semantics on torch tensors.

Frames are float32 ``[3, H, W]`` RGB in [0, 1] on one torch device (CUDA normally,
CPU in the tests with ``TRITON_INTERPRET=1``). Geometry, bisection and scene
logic come from ``engine.tiling``, ``engine.stages`` and ``engine.timeline``; only
the array operations are re-expressed in torch so no frame leaves the device and
no scalar is read back to the host (see ``scene_cut``).

torch and the Triton kernels are imported inside the functions: this module sits
under ``engine`` and must not make ``import engine`` heavy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from engine.backends.base import Runner
from engine.stages import RifeMidpoint, RifeTimestep
from engine.tiling import Tile, plan

# (tensor in) -> a callable giving the result: lets a runner with ``infer_async``
# keep the next tile batch queued while this one's result is blended.
Submit = Callable[[Any], Callable[[], Any]]


class SourceClock:
    """Source time (s) of each decoded frame, with ``VideoReader``'s exact rules.

    Frames before ``start`` are dropped, frames at or after ``start + duration``
    end the stream, missing or non-increasing timestamps are replaced by the
    previous one plus a frame duration, and times count from the first kept
    frame, so the device path sees the very timeline the CPU path sees.
    """

    def __init__(
        self, origin: Fraction, fps: Fraction, start: float | None, duration: float | None
    ) -> None:
        # same float -> Fraction conversion as the reader: 0.1 means 1/10
        start_offset = Fraction(start).limit_denominator(1_000_000) if start else Fraction(0)
        self.start_abs = origin + start_offset
        self.end_abs = (
            None
            if duration is None
            else self.start_abs + Fraction(duration).limit_denominator(1_000_000)
        )
        self.frame_step = 1 / Fraction(fps)
        self.last_time: Fraction | None = None
        self.first_time: Fraction | None = None
        self.ended = False

    def place(self, pts: int | None, time_base: Fraction) -> Fraction | None:
        """Output pts (s) of a decoded frame, or None to drop it; sets ``ended`` past the range."""
        if pts is not None:
            time = pts * Fraction(time_base)
        else:  # raw elementary streams carry no timestamps
            time = self.start_abs if self.last_time is None else self.last_time + self.frame_step
        if self.last_time is not None and time <= self.last_time:
            time = self.last_time + self.frame_step  # an encoder would reject going backwards
        if time < self.start_abs:
            return None
        if self.end_abs is not None and time >= self.end_abs:
            self.ended = True
            return None
        self.last_time = time
        if self.first_time is None:
            self.first_time = time
        return time - self.first_time


# -- scene detection ---------------------------------------------------------------------
def device_luma(rgb, target_width: int = 64):
    """``engine.timeline.downscaled_luma`` on a device tensor (same weights, same box step)."""
    luma = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    step = max(1, luma.shape[1] // target_width)
    height, width = (luma.shape[0] // step) * step, (luma.shape[1] // step) * step
    boxes = luma[:height, :width].reshape(height // step, step, width // step, step)
    return boxes.mean(dim=(1, 3))


def scene_cut(threshold: float, luma_a, luma_b):
    """``SceneDetector.is_cut`` as a 0-d bool device tensor, or None when detection is off.

    The decision stays on the device: reading it back would stall the host once
    per frame pair. The pipeline selects repeated frames with ``torch.where``
    instead of branching, and sums the flags on the device for the cut count.
    """
    if threshold <= 0:
        return None
    return (luma_a - luma_b).abs().mean() > threshold


# -- super-resolution ----------------------------------------------------------------------
class FeatherMasks:
    """``engine.tiling.ramp`` outer products as ``kernels.feather_mask`` tensors, built once per shape."""

    def __init__(self, device) -> None:
        self.device = device
        self._masks: dict[tuple, Any] = {}

    def get(self, tile: Tile, height: int, width: int, band: int):
        rows, cols = tile.rows, tile.cols
        key = (height, width, rows.fade_in, rows.fade_out, cols.fade_in, cols.fade_out, band)
        mask = self._masks.get(key)
        if mask is None:
            import kernels

            # ramp() caps the band at the kept length; feather_mask requires it
            vertical, horizontal = min(band, height), min(band, width)
            mask = kernels.feather_mask(
                height, width,
                vertical if rows.fade_in else 0, vertical if rows.fade_out else 0,
                horizontal if cols.fade_in else 0, horizontal if cols.fade_out else 0,
                device=self.device,
            )  # fmt: skip
            self._masks[key] = mask
        return mask


def run_tiled_device(
    frame,
    submit: Submit,
    scale: int,
    tile: int,
    tile_overlap: int,
    batch: int = 1,
    masks: FeatherMasks | None = None,
):
    """``engine.tiling.run_tiled`` on a device frame, blended by the Triton kernels.

    The tile plan is ``engine.tiling.plan``; weights are the same ramps, so the
    result equals ``run_tiled`` up to float rounding. One batch stays queued
    ahead of the one being blended (double buffering with ``infer_async``).
    """
    import torch

    import kernels

    channels, height, width = frame.shape
    tiles = plan(height, width, tile, tile_overlap)
    if len(tiles) == 1:
        return submit(frame[None])()[0]
    masks = masks or FeatherMasks(frame.device)
    out_shape = (height * scale, width * scale)
    acc = torch.zeros((channels, *out_shape), dtype=torch.float32, device=frame.device)
    weight_acc = torch.zeros(out_shape, dtype=torch.float32, device=frame.device)
    band = tile_overlap * scale

    def queue(group: list[Tile]) -> tuple[list[Tile], Callable[[], Any]]:
        windows = torch.stack(
            [
                frame[
                    :,
                    t.rows.window_start : t.rows.window_end,
                    t.cols.window_start : t.cols.window_end,
                ]
                for t in group
            ]
        )
        return group, submit(windows)

    def blend(group: list[Tile], collect: Callable[[], Any]) -> None:
        for t, result in zip(group, collect(), strict=True):
            r, c = t.rows, t.cols
            top = (r.keep_start - r.window_start) * scale
            left = (c.keep_start - c.window_start) * scale
            h, w = (r.keep_end - r.keep_start) * scale, (c.keep_end - c.keep_start) * scale
            kernels.blend_accumulate(
                acc,
                weight_acc,
                result[:, top : top + h, left : left + w],
                masks.get(t, h, w, band),
                r.keep_start * scale,
                c.keep_start * scale,
            )

    groups = [tiles[start : start + batch] for start in range(0, len(tiles), batch)]
    pending = queue(groups[0])
    for group in groups[1:]:
        ahead = queue(group)  # enqueued before the previous batch is waited on
        blend(*pending)
        pending = ahead
    blend(*pending)
    # ramps sum to one, so this divides by ~1; it keeps seams exact if a plan ever overlaps more
    return kernels.blend_normalize(acc, weight_acc)


def runner_submit(runner: Runner, input_name: str = "input") -> Submit:
    """Submit for a runner: ``infer_async`` (TensorRT) when it has one, else a plain ``infer``."""
    infer_async = getattr(runner, "infer_async", None)
    if infer_async is not None:

        def submit_async(batch):
            pending = infer_async({input_name: batch})
            return lambda: _first_output(pending.result()).float().clamp(0.0, 1.0)

        return submit_async

    def submit(batch):
        result = _first_output(runner.infer({input_name: batch})).float().clamp(0.0, 1.0)
        return lambda: result

    return submit


def _first_output(outputs: dict[str, Any]):
    return outputs["output"] if "output" in outputs else next(iter(outputs.values()))


class DeviceSuperResolution:
    """``engine.stages.SuperResolution`` on device tensors."""

    def __init__(
        self, runner: Runner, scale: int, tile: int, tile_overlap: int, tile_batch: int = 1
    ) -> None:
        self.submit = runner_submit(runner)
        self.scale, self.tile, self.tile_overlap = scale, tile, tile_overlap
        self.tile_batch = tile_batch
        self.masks: FeatherMasks | None = None

    def process(self, frame):
        if self.masks is None:
            self.masks = FeatherMasks(frame.device)
        return run_tiled_device(
            frame,
            self.submit,
            self.scale,
            self.tile,
            self.tile_overlap,
            self.tile_batch,
            self.masks,
        )


class DeviceResize:
    """``engine.stages.Resize`` on device tensors (bicubic, antialiased when shrinking)."""

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = height, width

    def process(self, frame):
        if tuple(frame.shape[1:]) == (self.height, self.width):
            return frame
        import torch.nn.functional as F

        out = F.interpolate(
            frame[None],
            size=(self.height, self.width),
            mode="bicubic",
            align_corners=False,
            antialias=True,
        )
        return out[0].clamp_(0.0, 1.0)


# -- interpolation -------------------------------------------------------------------------
def pad_to_multiple_device(frame, multiple: int):
    """``engine.stages.pad_to_multiple``: zero padding at the bottom/right."""
    import torch.nn.functional as F

    height, width = frame.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return frame
    return F.pad(frame, (0, pad_w, 0, pad_h))


class DeviceRifeMidpoint(RifeMidpoint):
    """``RifeMidpoint`` (bisection + per-pair cache, inherited as is) with a device ``_mid``."""

    def _mid(self, a, b):
        height, width = a.shape[1:]
        feeds = {
            "img0": pad_to_multiple_device(a, self.size_multiple)[None],
            "img1": pad_to_multiple_device(b, self.size_multiple)[None],
        }
        self.inferences += 1
        out = _first_output(self.runner.infer(feeds))[0, :, :height, :width]
        return out.float().clamp(0.0, 1.0)


class DeviceRifeTimestep(RifeTimestep):
    """``engine.stages.RifeTimestep`` on device tensors: one inference per output frame."""

    def interpolate(self, a, b, t: Fraction):
        import torch

        if t == 0:
            return a
        height, width = a.shape[1:]
        padded_a = pad_to_multiple_device(a, self.size_multiple)[None]
        # a host float fills the tensor: no device scalar is read
        timestep = torch.full(
            (1, 1, *padded_a.shape[2:]), float(t), dtype=padded_a.dtype, device=padded_a.device
        )
        feeds = {
            "img0": padded_a,
            "img1": pad_to_multiple_device(b, self.size_multiple)[None],
            "timestep": timestep,
        }
        self.inferences += 1
        out = _first_output(self.runner.infer(feeds))[0, :, :height, :width]
        return out.float().clamp(0.0, 1.0)


# -- sources: decoded frames on the device --------------------------------------------
# Sources the NV12 kernel converts exactly like ``frame_to_rgb`` (left-sited chroma):
# yuvj420p is centred horizontally on the CPU path, so it goes through the reader.
NV12_PIX_FMTS = frozenset({"yuv420p", "nv12"})


@dataclass
class RawFrame:
    """A decoded frame on the device, not yet converted: NV12 planes or RGB."""

    index: int
    pts: Fraction
    y: Any = None
    uv: Any = None
    rgb: Any = None
    ready: Any = None  # CUDA event after the upload (decode thread's stream)


def device_source_reason(info: Any) -> str | None:
    """Why a stream is not decoded as NV12 (it is then read as RGB), or None."""
    if getattr(info, "is_rgb", False) or info.pix_fmt not in NV12_PIX_FMTS:
        return f"{info.pix_fmt} is not 8-bit 4:2:0 with left-sited chroma"
    return None


def _stream_origin(path: Path) -> Fraction:
    """The video stream's start_time in seconds (what ``VideoReader`` counts from)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        return (stream.start_time or 0) * time_base


def current_stream(device) -> Any:
    import torch

    return torch.cuda.current_stream(device) if device.type == "cuda" else None


def record_event(device) -> Any:
    """An event at the end of the current thread's queued work (None on CPU)."""
    import torch

    if device.type != "cuda":
        return None
    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(device))
    return event


def decode_nv12(options: Any, info: Any, device, stats: Any) -> Iterator[RawFrame]:
    import av

    from engine.gpu.nvdec import Nv12Decoder

    # Built in the decode thread: NVDEC then writes on this thread's stream, where the
    # clone (and the event below) are queued too.
    on_gpu = device.type == "cuda"
    # a CPU-device run (the interpreter tests) keeps PyAV's planes on the host even on a
    # CUDA machine: a round trip through the GPU would need an event it has no stream for
    decoder = Nv12Decoder(
        Path(options.input), device=device.index or 0, prefer_nvdec=on_gpu, upload=on_gpu
    )
    stats.decoder, stats.fallback_reason = decoder.backend, decoder.fallback_reason
    clock = SourceClock(
        _stream_origin(Path(options.input)), info.fps, options.start, options.duration
    )
    kept = 0
    try:
        for frame in decoder:
            pts = clock.place(frame.pts, frame.time_base)
            if clock.ended:
                return
            if pts is None:
                continue
            y = frame.y.to(device, non_blocking=True)
            uv = frame.uv.to(device, non_blocking=True)
            yield RawFrame(
                kept, pts, y=y, uv=uv.reshape(uv.shape[0], -1), ready=record_event(device)
            )
            kept += 1
    except av.error.FFmpegError as error:  # as VideoReader: keep what decoded, say why
        reason = getattr(error, "strerror", None) or str(error)
        stats.warnings.append(f"decoding stopped at frame {kept}: {reason}")


def decode_rgb(reader: Any, device) -> Iterator[RawFrame]:
    import torch

    pin = device.type == "cuda"
    for frame in reader:
        rgb = torch.from_numpy(frame.rgb)
        if pin:  # pinned source: the upload is a true async copy
            rgb = rgb.pin_memory().to(device, non_blocking=True)
        yield RawFrame(frame.index, frame.pts, rgb=rgb, ready=record_event(device))
