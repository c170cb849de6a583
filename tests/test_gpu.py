"""GPU checks: NVDEC vs PyAV, torch-cuda precision, TensorRT and ORT-CUDA runners, no host syncs.

Marker ``gpu``; every test is skipped without CUDA (``make gpu-check`` runs them on
a CUDA machine). Test clips are encoded here with PyAV's bundled FFmpeg, so the
file needs no network and no cache.
"""

from __future__ import annotations

import importlib.util
import json
import time

import numpy as np
import pytest
import torch

from vx_engine.backends.base import RunnerSpec
from vx_engine.errors import BackendError
from vx_engine.export.descriptors import SR_INPUTS, ModelIO

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

needs_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None, reason="tensorrt not installed"
)
needs_pynvvideocodec = pytest.mark.skipif(
    importlib.util.find_spec("PyNvVideoCodec") is None, reason="PyNvVideoCodec not installed"
)
# CUDA runtime calls that block the host ("cudaMemcpy" is the blocking one, not ...Async)
SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy")


def psnr(reference: np.ndarray, test: np.ndarray, peak: float) -> float:
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


# -- fixtures: clips and a small network --------------------------------------------------
def write_clip(path, codec: str, frames: int = 48, height: int = 360, width: int = 640) -> None:
    """Moving gradients + a bar: motion for B-frames, detail for the quantiser."""
    import av

    rows = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    cols = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            red = (rows + 4 * index) % 256 + 0 * cols
            green = (cols + 6 * index) % 256 + 0 * rows
            blue = ((rows + cols) / 2 + 3 * index) % 256
            image = np.stack([red, green, blue], axis=-1).astype(np.uint8)
            image[:, (10 * index) % width : (10 * index) % width + 24] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def pyav_nv12(path) -> list[tuple[np.ndarray, int]]:
    import av

    with av.open(str(path)) as container:
        return [(frame.to_ndarray(format="nv12"), frame.pts) for frame in container.decode(video=0)]


TINY_IO = ModelIO(SR_INPUTS, scale=2)  # SRNet's calling convention


class SRNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, padding=1),
            torch.nn.PReLU(32),
            torch.nn.Conv2d(32, 32, 3, padding=1),
            torch.nn.PReLU(32),
            torch.nn.Conv2d(32, 12, 3, padding=1),
            torch.nn.PixelShuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


class Fp16Graph(torch.nn.Module):
    """fp32 I/O, fp16 inside: how export/onnx_export.py makes fp16 artifacts (strongly typed TensorRT)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.half()).float()


def sr_net() -> torch.nn.Module:
    """Seeded random weights, frozen: outputs need no no_grad() to become numpy."""
    torch.manual_seed(0)
    return SRNet().eval().requires_grad_(False)


def smooth_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A natural-ish image in [0, 1]: low-frequency noise, upsampled."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, height // 8, width // 8, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic").clamp(0, 1)


@pytest.fixture
def no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def export(net: torch.nn.Module, path, sample: torch.Tensor, scale: int = 2) -> None:
    dims = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(
            net,
            (sample,),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": dims, "output": dims},
            opset_version=17,
            dynamo=False,
        )
    path.with_suffix(".json").write_text(
        json.dumps(
            {"model": "tiny", "kind": "sr", "scale": scale, "inputs": ["input"], "size_multiple": 1}
        )
    )


# -- NVDEC ---------------------------------------------------------------------------------
@needs_pynvvideocodec
@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_nvdec_frames_match_pyav(tmp_path, codec):
    from vx_engine.gpu.nvdec import Nv12Decoder

    clip = tmp_path / f"clip-{codec}.mp4"
    write_clip(clip, codec)
    reference = pyav_nv12(clip)
    decoder = Nv12Decoder(clip)
    assert decoder.backend == "nvdec", decoder.fallback_reason
    frames = list(decoder)
    assert len(frames) == len(reference)
    worst = float("inf")
    for frame, (planes, pts) in zip(frames, reference, strict=True):
        assert frame.y.is_cuda and frame.y.dtype == torch.uint8
        height, width = frame.y.shape
        got = np.concatenate([frame.y.cpu().numpy(), frame.uv.flatten(1).cpu().numpy()])
        assert got.shape == planes.shape == (height * 3 // 2, width)
        worst = min(worst, psnr(planes, got, 255.0))
        assert frame.pts == pts
    print(f"NVDEC vs PyAV ({codec}): worst-frame PSNR {worst:.1f} dB over {len(frames)} frames")
    assert worst >= 45.0


@needs_pynvvideocodec
def test_nvdec_falls_back_to_pyav_for_av1_where_the_gpu_cannot(tmp_path):
    from vx_engine.gpu.nvdec import Nv12Decoder

    clip = tmp_path / "clip-av1.mp4"
    write_clip(clip, "libsvtav1", frames=16, height=288, width=512)
    reference = pyav_nv12(clip)
    decoder = Nv12Decoder(clip)
    if decoder.backend == "pyav":
        assert decoder.fallback_reason and "\n" not in decoder.fallback_reason
    frames = list(decoder)
    assert len(frames) == len(reference)
    for frame, (planes, _) in zip(frames, reference, strict=True):
        got = np.concatenate([frame.y.cpu().numpy(), frame.uv.flatten(1).cpu().numpy()])
        assert psnr(planes, got, 255.0) >= 45.0


# -- torch-cuda ----------------------------------------------------------------------------
def test_torch_cuda_fp16_is_close_to_fp32_and_fp32_to_cpu(no_tf32):
    from vx_engine.backends.torch_backend import TorchRunner

    image = smooth_image(256, 320)
    with TorchRunner(RunnerSpec("tiny", None, "fp32", io=TINY_IO), sr_net, device="cpu") as cpu:
        on_cpu = cpu.infer({"input": image})["output"]
    with TorchRunner(RunnerSpec("tiny", None, "fp32", io=TINY_IO), sr_net, device="cuda") as fp32:
        assert not fp32.half and fp32.channels_last
        full = fp32.infer({"input": image.cuda()})["output"]
    with TorchRunner(RunnerSpec("tiny", None, "fp16", io=TINY_IO), sr_net, device="cuda") as fp16:
        assert fp16.half
        half = fp16.infer({"input": image.cuda()})["output"]
    assert half.dtype == full.dtype == torch.float32 and half.is_cuda
    cpu_err = (full.cpu() - on_cpu).abs().max().item()
    db = psnr(full.clamp(0, 1).cpu().numpy(), half.clamp(0, 1).cpu().numpy(), 1.0)
    print(f"torch-cuda fp32 vs cpu max abs err {cpu_err:.2e}; fp16 vs fp32 PSNR {db:.1f} dB")
    assert cpu_err <= 1e-4
    assert db >= 45.0


LOOP_RANGE = "vx-steady-loop"


def _profiled_sync_calls(loop) -> list[str]:
    """Run ``loop`` with torch's sync debug mode raising and return the host-sync API calls
    made inside it. Only calls within the loop's own ``record_function`` range count: the
    profiler itself calls cudaDeviceSynchronize when it stops."""
    from torch.profiler import ProfilerActivity, profile, record_function

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any implicit sync inside torch ops raises
    try:
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as profiler:
            with record_function(LOOP_RANGE):
                loop()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.cuda.synchronize()
    events = profiler.events()
    window = [e.time_range for e in events if e.name == LOOP_RANGE]
    assert window, "the profiler recorded no loop range"
    start, end = min(w.start for w in window), max(w.end for w in window)
    return [e.name for e in events if e.name in SYNC_CALLS and start <= e.time_range.start <= end]


def test_torch_cuda_steady_state_loop_issues_no_host_sync():
    from vx_engine.backends.torch_backend import TorchRunner
    from vx_engine.gpu.streams import HostDownloadRing

    tiles = [smooth_image(128, 128, seed).cuda() for seed in range(4)]
    ring = HostDownloadRing(count=3)
    with TorchRunner(RunnerSpec("tiny", None, "fp16", io=TINY_IO), sr_net, device="cuda") as runner:
        for tile in tiles:  # warm-up: cuDNN autotuning, allocator growth
            runner.infer({"input": tile})
        pending = []

        def loop() -> None:
            for step in range(12):
                output = runner.infer({"input": tiles[step % 4]})["output"]
                pending.append(ring.download(output))

        syncs = _profiled_sync_calls(loop)
        frames = [p.wait().copy() for p in pending[-3:]]
    assert syncs == [], f"host syncs in the steady-state loop: {syncs}"
    expected = sr_net().cuda().half()(tiles[(12 - 1) % 4].half()).float().cpu().numpy()
    assert psnr(expected.clip(0, 1), frames[-1].clip(0, 1), 1.0) >= 40.0


# -- TensorRT ------------------------------------------------------------------------------
@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_engine_build_cache_and_runner(tmp_path, precision, no_tf32):
    from vx_engine.backends.tensorrt import TensorRTRunner
    from vx_engine.export.tensorrt_builder import build_engine
    from vx_engine.export.tensorrt_profiles import profile_shapes

    net = sr_net()
    onnx_path = tmp_path / f"tiny-{precision}.onnx"
    graph = Fp16Graph(sr_net()) if precision == "fp16" else net
    export(graph, onnx_path, smooth_image(64, 64))
    profile = profile_shapes("sr", (32, 32), (64, 64), (128, 160))
    started = time.perf_counter()
    engine = build_engine(onnx_path, profile, tmp_path / "engines", precision=precision)
    build_s = time.perf_counter() - started
    assert engine.is_file() and engine.with_suffix(".json").is_file()
    assert list((tmp_path / "engines").glob("timing_*.cache"))
    started = time.perf_counter()
    assert build_engine(onnx_path, profile, tmp_path / "engines", precision=precision) == engine
    assert time.perf_counter() - started < 1.0  # reused, not rebuilt

    inputs = [
        smooth_image(64, 64, 1).cuda(),
        smooth_image(48, 160, 2).cuda(),
        smooth_image(128, 96, 3).cuda(),
    ]
    with torch.no_grad():
        expected = [net.cuda()(x) for x in inputs]
    with TensorRTRunner(
        RunnerSpec("tiny", onnx_path, precision, io=TINY_IO), engine_path=engine
    ) as runner:
        assert len(runner.slots) == 2
        pending = [runner.infer_async({"input": x}) for x in inputs]  # both contexts in flight
        outputs = [p.result()["output"] for p in pending]
        # a host feed is uploaded on the slot stream
        host_feed = runner.infer({"input": inputs[0].cpu().numpy()})["output"]
        with pytest.raises(BackendError, match="accepts input shapes"):
            runner.infer({"input": smooth_image(256, 256).cuda()})
        # steady state of a tiled video: one tile shape, alternating contexts
        warm = [inputs[0], smooth_image(64, 64, 9).cuda()]

        def loop() -> None:
            for step in range(10):
                runner.infer({"input": warm[step % 2]})

        syncs = _profiled_sync_calls(loop)
    floor = 50.0 if precision == "fp32" else 40.0
    for got, want in zip(outputs + [host_feed], expected + [expected[0]], strict=True):
        assert got.shape == want.shape
        db = psnr(want.clamp(0, 1).cpu().numpy(), got.clamp(0, 1).cpu().numpy(), 1.0)
        assert db >= floor, f"TensorRT {precision} vs torch fp32: {db:.1f} dB"
    print(f"TensorRT {precision}: built in {build_s:.1f} s; PSNR vs torch >= {floor} dB")
    assert syncs == [], f"host syncs in the TensorRT loop: {syncs}"


# -- ORT CUDA ------------------------------------------------------------------------------
def test_ort_cuda_runner_matches_torch(tmp_path, no_tf32):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu not installed")
    from vx_engine.backends.ort_cuda import OrtCudaRunner

    net = sr_net()
    onnx_path = tmp_path / "tiny.onnx"
    export(net, onnx_path, smooth_image(64, 64))
    image = smooth_image(96, 128, 5).cuda()
    with torch.no_grad():
        expected = net.cuda()(image)
    spec = RunnerSpec("tiny", onnx_path, "fp32", max_input_hw=(128, 128), io=TINY_IO)
    with OrtCudaRunner(spec, use_tensorrt=False) as runner:
        assert runner.providers[0] == "CUDAExecutionProvider"
        got = runner.infer({"input": image})["output"]
    assert got.is_cuda and got.shape == expected.shape
    assert (got - expected).abs().max().item() <= 1e-3
