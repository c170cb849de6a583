"""Backend selection, import guards, the CPU runners against direct calls, and the CPU side of engine/gpu.

GPU runners themselves are checked in tests/test_gpu.py on a CUDA machine.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from vx_engine.backends import select
from vx_engine.backends.base import RunnerSpec
from vx_engine.backends.select import ALL_BACKENDS, AUTO_ORDER, BackendFacts
from vx_engine.cpu_features import cpu_has_bf16, cpu_int8_saturates
from vx_engine.errors import BackendError

CPU_EP = ("CPUExecutionProvider",)
CUDA_EPS = ("CUDAExecutionProvider", "CPUExecutionProvider")
TRT_EPS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


# -- selection ------------------------------------------------------------------------------
def _all_facts() -> list[BackendFacts]:
    combos = itertools.product(
        [False, True],
        [False, True],
        [(), CPU_EP, CUDA_EPS, TRT_EPS],
        [False, True],
        [False, True],
        # openvino: absent; installed with CPU (+ an Intel GPU); installed but no CPU device
        [(False, ()), (True, ("CPU",)), (True, ("CPU", "GPU.0", "GPU.1")), (True, ())],
        [False, True],  # native bf16
    )
    return [
        BackendFacts(
            has_cuda=cuda,
            has_tensorrt=trt,
            ort_providers=eps,
            has_torch=has_torch,
            has_onnxruntime=has_ort and bool(eps),
            has_openvino=ov[0],
            openvino_devices=ov[1],
            cpu_bf16=bf16,
        )
        for cuda, trt, eps, has_torch, has_ort, ov, bf16 in combos
    ]


# The requirements restated independently of the implementation (the spec of each backend).
REQUIREMENTS = {
    "tensorrt": lambda f: f.has_tensorrt and f.has_cuda,
    "ort-cuda": lambda f: (
        f.has_onnxruntime and "CUDAExecutionProvider" in f.ort_providers and f.has_cuda
    ),
    "torch-cuda": lambda f: f.has_torch and f.has_cuda,
    "torch-cpu": lambda f: f.has_torch,
    "ort-cpu": lambda f: f.has_onnxruntime,
    "openvino": lambda f: f.has_openvino and "CPU" in f.openvino_devices,
}


def test_auto_ranks_openvino_above_ort_cpu_and_below_the_gpu_backends():
    cpu = BackendFacts(has_cuda=False, has_tensorrt=False, has_openvino=True,
                       openvino_devices=("CPU",), cpu_bf16=True)  # fmt: skip
    assert select.resolve_backend("auto", cpu) == "openvino"
    no_bf16 = BackendFacts(has_cuda=False, has_tensorrt=False, has_openvino=True,
                           openvino_devices=("CPU",), cpu_bf16=False)  # fmt: skip
    assert select.resolve_backend("auto", no_bf16) == "ort-cpu"
    assert select.resolve_backend("openvino", no_bf16) == "openvino"  # still there by name
    assert select.resolve_backend("auto", BackendFacts(has_cuda=False, has_tensorrt=False)) == (
        "ort-cpu"
    )
    gpu = BackendFacts(has_cuda=True, has_tensorrt=False, ort_providers=CUDA_EPS,
                       has_openvino=True, openvino_devices=("CPU",), cpu_bf16=True)  # fmt: skip
    assert select.resolve_backend("auto", gpu) == "ort-cuda"


@pytest.mark.parametrize(
    "device,available,ok",
    [
        (0, ("CPU",), True),
        ("CPU", ("CPU",), True),
        ("cpu", ("CPU",), True),
        ("GPU", ("CPU",), False),
        ("GPU", ("CPU", "GPU.0", "GPU.1"), True),  # OpenVINO's alias for the first GPU
        ("GPU.1", ("CPU", "GPU.0", "GPU.1"), True),
        ("GPU.2", ("CPU", "GPU.0", "GPU.1"), False),
        ("NPU", ("CPU", "GPU"), False),
    ],
)
def test_openvino_device_problem(device, available, ok):
    problem = select.openvino_device_problem(device, available)
    assert (problem is None) == ok
    if not ok:
        assert "\n" not in problem and f"--device {device}" in problem
        assert "available: " + ", ".join(available) in problem


def test_cpu_bf16_flag_from_cpuinfo():
    zen4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 avx_vnni\n"
    sapphire = "flags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n"
    zen3 = "flags\t\t: fpu avx2 fma\n"
    assert cpu_has_bf16(zen4) and cpu_has_bf16(sapphire)
    assert not cpu_has_bf16(zen3) and not cpu_has_bf16("")
    # ORT's u8 x s8 convolution saturates on AVX2 without VNNI (the int8 recipe then
    # quantizes with 7-bit weights); VNNI/AMX machines and non-x86 flags do not
    assert cpu_int8_saturates(zen3)
    assert not cpu_int8_saturates(zen4) and not cpu_int8_saturates(sapphire)
    assert not cpu_int8_saturates("flags\t\t: fp asimd\n") and not cpu_int8_saturates("")
    # this machine (the CI box): the probe reads the real /proc/cpuinfo
    with open("/proc/cpuinfo") as handle:
        real = "avx512_bf16" in handle.read() or False
    assert select.probe_facts().cpu_bf16 == real


@pytest.mark.parametrize("facts", _all_facts(), ids=str)
def test_selection_over_every_fact_combination(facts):
    runnable = {b for b in ALL_BACKENDS if REQUIREMENTS[b](facts)}
    assert set(select.available_backends(facts)) == runnable
    # auto takes openvino only where it runs bf16 (at fp32 it measured slower than ort-cpu)
    ranked = [b for b in AUTO_ORDER if b != "openvino" or facts.cpu_bf16]
    best = next((b for b in ranked if b in runnable), None)
    if best is None:
        with pytest.raises(BackendError):
            select.resolve_backend("auto", facts)
    else:
        assert select.resolve_backend("auto", facts) == best
    for backend in ALL_BACKENDS:
        if backend in runnable:
            assert select.resolve_backend(backend, facts) == backend
        else:
            with pytest.raises(BackendError) as raised:
                select.resolve_backend(backend, facts)
            message = str(raised.value)
            assert "\n" not in message
            assert f"backend '{backend}' is not available here" in message
            assert "available:" in message and "fix:" in message


def test_auto_prefers_tensorrt_then_ort_cuda_then_torch_cuda_then_ort_cpu():
    assert select.resolve_backend("auto", BackendFacts(True, True, TRT_EPS)) == "tensorrt"
    assert select.resolve_backend("auto", BackendFacts(True, False, CUDA_EPS)) == "ort-cuda"
    assert select.resolve_backend("auto", BackendFacts(True, False, CPU_EP)) == "torch-cuda"
    assert select.resolve_backend("auto", BackendFacts(False, True, TRT_EPS)) == "ort-cpu"


def test_unavailable_messages_say_what_is_missing_and_the_fix():
    cpu_box = BackendFacts(has_cuda=False, has_tensorrt=False, ort_providers=CPU_EP)
    with pytest.raises(
        BackendError,
        match=r"tensorrt package is not installed.*available: ort-cpu, torch-cpu"
        r".*pip install tensorrt",
    ):
        select.resolve_backend("tensorrt", cpu_box)
    with pytest.raises(BackendError, match=r"CPU-only.*onnxruntime-gpu"):
        select.resolve_backend(
            "ort-cuda", BackendFacts(has_cuda=True, has_tensorrt=False, ort_providers=CPU_EP)
        )
    with pytest.raises(BackendError, match=r"known: auto, tensorrt, ort-cuda"):
        select.resolve_backend("ncnn-vulkan", cpu_box)


def test_probe_here_matches_the_installed_packages():
    import onnxruntime

    facts = select.probe_facts()
    assert facts.has_cuda == torch.cuda.is_available()
    assert facts.has_tensorrt == (importlib.util.find_spec("tensorrt") is not None)
    assert facts.ort_providers == tuple(onnxruntime.get_available_providers())
    has_openvino = importlib.util.find_spec("openvino") is not None
    assert facts.has_openvino == has_openvino
    if has_openvino:
        import openvino

        assert facts.openvino_devices == tuple(openvino.Core().available_devices)
    if not torch.cuda.is_available():
        fast = has_openvino and facts.cpu_bf16
        assert select.resolve_backend("auto") == ("openvino" if fast else "ort-cpu")


def test_importing_engine_and_select_loads_no_heavy_module():
    code = (
        "import sys, vx_engine, vx_engine.backends.select, vx_engine.backends.tensorrt, "
        "vx_engine.export.artifact_builders, vx_engine.export.tensorrt_builder, "
        "vx_engine.gpu, vx_engine.gpu.probe, vx_engine.gpu.nvdec; "
        "print(sorted(m for m in ('torch', 'tensorrt', 'onnxruntime', 'PyNvVideoCodec', 'av', "
        "'openvino', 'vx_engine.backends.openvino') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


# -- import guards --------------------------------------------------------------------------
def _spec(tmp_path, model="realesr-animevideov3-x2", precision="fp32") -> RunnerSpec:
    return RunnerSpec(model=model, onnx_path=tmp_path / "m.onnx", precision=precision)


def _one_line_backend_error(call) -> str:
    with pytest.raises(BackendError) as raised:
        call()
    message = str(raised.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here"
)
def test_tensorrt_runner_without_tensorrt_is_one_clear_line(tmp_path):
    from vx_engine.backends.tensorrt import TensorRTRunner

    message = _one_line_backend_error(lambda: TensorRTRunner(_spec(tmp_path)))
    assert message.startswith("backend tensorrt cannot run here: tensorrt is not installed")
    # through the selector: the same family of error, before any runner is built
    message = _one_line_backend_error(lambda: select.create_runner("tensorrt", _spec(tmp_path)))
    assert "tensorrt package is not installed" in message


def test_ort_cuda_runner_on_cpu_onnxruntime_is_one_clear_line(tmp_path):
    import onnxruntime

    from vx_engine.backends.ort_cuda import OrtCudaRunner, cuda_provider_missing

    if (
        "CUDAExecutionProvider" in onnxruntime.get_available_providers()
        and torch.cuda.is_available()
    ):
        pytest.skip("onnxruntime-gpu with a GPU is installed here")
    message = _one_line_backend_error(lambda: OrtCudaRunner(_spec(tmp_path)))
    assert message.startswith("backend ort-cuda cannot run here:")
    reason = cuda_provider_missing(["CPUExecutionProvider"], "1.99")
    assert "CPU-only" in reason and "onnxruntime-gpu" in reason


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_torch_cuda_runner_without_cuda_is_one_clear_line(tmp_path):
    from vx_engine.backends.torch_backend import TorchRunner

    message = _one_line_backend_error(lambda: TorchRunner(_spec(tmp_path), _sr_net, device="cuda"))
    assert "torch-cuda cannot run here" in message and "CPU-only build" in message


def test_torch_runner_without_a_model_factory_says_so(tmp_path):
    message = _one_line_backend_error(lambda: select.create_runner("torch-cpu", _spec(tmp_path)))
    assert "needs the PyTorch model" in message


@pytest.mark.parametrize(
    "backend,device,count,phrase",
    [
        ("torch-cuda", 0, 1, None),
        ("tensorrt", 3, 4, None),
        ("ort-cuda", 1, 1, "this machine has 1 GPU"),
        ("torch-cuda", 4, 4, "GPUs 0-3"),
        ("torch-cuda", 0, 0, "this machine has 0 GPU"),
        ("ort-cpu", 0, 0, None),
        ("torch-cpu", 0, 2, None),
        ("ort-cpu", 1, 2, "ort-cpu runs on the CPU"),
        ("tensorrt", -1, 2, "0 or more"),
    ],
)
def test_device_problem(backend, device, count, phrase):
    problem = select.device_problem(backend, device, count)
    if phrase is None:
        assert problem is None
    else:
        assert phrase in problem and "\n" not in problem


def test_create_runner_routes_the_device_index(tmp_path):
    runner = select.create_runner(
        "torch-cpu", _spec(tmp_path, precision="fp32"), model_factory=_sr_net, device=0
    )
    assert runner.name == "torch-cpu" and str(runner.device) == "cpu"
    with runner:
        image = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
        got = runner.infer({"input": image})["output"]
    with torch.no_grad():
        expected = runner.model_factory()(torch.from_numpy(image)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_ort_cuda_provider_options():
    from vx_engine.backends.ort_cuda import provider_list

    profile = {"input": ((1, 3, 64, 64), (1, 3, 256, 256), (1, 3, 1088, 1920))}
    providers = provider_list(list(TRT_EPS), 0, 1234, True, None, profile)
    assert [name for name, _ in providers] == ["TensorrtExecutionProvider", "CUDAExecutionProvider"]
    trt_options = providers[0][1]
    assert trt_options["trt_profile_min_shapes"] == "input:1x3x64x64"
    assert trt_options["trt_profile_max_shapes"] == "input:1x3x1088x1920"
    assert trt_options["user_compute_stream"] == "1234" and trt_options["trt_fp16_enable"] is False
    cuda_only = provider_list(list(CUDA_EPS), 0, 1, True, None, profile)
    assert [n for n, _ in cuda_only] == ["CUDAExecutionProvider"]
    assert cuda_only[0][1]["use_tf32"] == "0" and cuda_only[0][1]["user_compute_stream"] == "1"
    assert [n for n, _ in provider_list(list(TRT_EPS), 0, 1, False, None, None)] == [
        "CUDAExecutionProvider"
    ]


def test_ort_cuda_async_run_options_are_accepted_by_onnxruntime(tmp_path):
    """The no-sync run entry is set, and a real ORT session runs with it unchanged (CPU EP)."""
    import onnxruntime as ort

    from vx_engine.backends.ort_cuda import async_run_options

    options = async_run_options(ort)
    assert options.get_run_config_entry("disable_synchronize_execution_providers") == "1"
    net = _sr_net().eval()
    image = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(3))
    onnx_path = tmp_path / "tiny.onnx"
    torch.onnx.export(net, (image,), str(onnx_path), input_names=["input"], dynamo=False)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"input": image.numpy()}
    with_entry = session.run(None, feeds, options)[0]
    plain = session.run(None, feeds)[0]
    np.testing.assert_array_equal(with_entry, plain)
    with torch.no_grad():
        np.testing.assert_allclose(with_entry, net(image).numpy(), atol=1e-5)


def test_runner_profiles_follow_the_video(tmp_path):
    from vx_engine.backends.tensorrt import profile_for_spec

    facts = {"kind": "vfi", "size_multiple": 32, "inputs": ["img0", "img1"]}
    spec = RunnerSpec("rife-hdv3", None, "fp16", max_input_hw=(720, 1280))
    assert profile_for_spec(spec, facts)["img1"] == ((1, 3, 736, 1280),) * 3
    sr = RunnerSpec("x", None, "fp16", max_input_hw=(272, 640), opt_input_hw=(144, 144))
    assert profile_for_spec(sr, {"kind": "sr", "inputs": ["input"]})["input"] == (
        (1, 3, 64, 64),
        (1, 3, 144, 144),
        (1, 3, 272, 640),
    )
    batched = RunnerSpec("x", None, "fp16", max_input_hw=(160, 160), max_batch=4)
    assert profile_for_spec(batched, {"kind": "sr", "inputs": ["input"]})["input"] == (
        (1, 3, 64, 64),
        (4, 3, 160, 160),
        (4, 3, 160, 160),
    )


# -- CPU runners against direct calls ------------------------------------------------------
class _SRNet(torch.nn.Module):
    """A small SRVGG-like net: conv -> PReLU -> conv -> pixel shuffle x2, plus the nearest upsample."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, padding=1),
            torch.nn.PReLU(16),
            torch.nn.Conv2d(16, 12, 3, padding=1),
            torch.nn.PixelShuffle(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


class _TwoInputNet(torch.nn.Module):
    """Not symmetric in its inputs, so a swapped argument order shows."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([img0, 2 * img1], dim=1)) + img0


def _sr_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return _SRNet().eval()


def _frame(rng: np.random.Generator, h: int = 40, w: int = 56) -> np.ndarray:
    return rng.random((1, 3, h, w), dtype=np.float32)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_torch_cpu_runner_matches_a_direct_module_call(tmp_path, precision):
    rng = np.random.default_rng(1)
    image = _frame(rng)
    with torch.no_grad():
        expected = _sr_net()(torch.from_numpy(image)).numpy()
    runner = select.create_runner(
        "torch-cpu", _spec(tmp_path, precision=precision), model_factory=_sr_net
    )
    with runner:
        assert runner.name == "torch-cpu"
        actual = runner.infer({"input": image})["output"]
    assert isinstance(actual, np.ndarray) and actual.dtype == np.float32
    assert actual.shape == (1, 3, 80, 112)
    # CPU always computes fp32 (fp16 asked or not): identical kernels, identical numbers
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
    assert not runner.is_active


def test_torch_runner_passes_inputs_in_forward_order(tmp_path):
    torch.manual_seed(3)
    net = _TwoInputNet().eval()
    rng = np.random.default_rng(2)
    img0, img1 = _frame(rng, 32, 32), _frame(rng, 32, 32)
    with torch.no_grad():
        expected = net(torch.from_numpy(img0), torch.from_numpy(img1)).numpy()
    with select.create_runner(
        "torch-cpu", _spec(tmp_path, "rife-hdv3"), model_factory=lambda: net
    ) as runner:
        # dict order reversed on purpose
        actual = runner.infer({"img1": img1, "img0": img0})["output"]
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


def _export(net: torch.nn.Module, path, names: list[str], sample: list[np.ndarray]) -> None:
    dims = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(
            net,
            tuple(torch.from_numpy(a) for a in sample),
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_axes={n: dims for n in names + ["output"]},
            opset_version=17,
            dynamo=False,
        )


# the TorchScript exporter warns; export/onnx_export.py uses it on purpose
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_ort_cpu_runner_matches_onnxruntime_direct_and_torch(tmp_path):
    import onnxruntime as ort

    rng = np.random.default_rng(4)
    onnx_path = tmp_path / "sr.onnx"
    _export(_sr_net(), onnx_path, ["input"], [_frame(rng, 16, 16)])
    (tmp_path / "sr.json").write_text(
        json.dumps({"model": "tiny", "kind": "sr", "scale": 2, "inputs": ["input"]})
    )
    image = _frame(rng, 48, 64)  # another size than exported: the axes are dynamic
    direct = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(
        None, {"input": image}
    )[0]
    with torch.no_grad():
        reference = _sr_net()(torch.from_numpy(image)).numpy()
    spec = RunnerSpec(model="tiny", onnx_path=onnx_path, precision="fp32")
    with select.create_runner("ort-cpu", spec) as runner:
        actual = runner.infer({"input": image})["output"]
    np.testing.assert_allclose(actual, direct, rtol=0, atol=1e-6)  # same library, same graph
    np.testing.assert_allclose(actual, reference, rtol=0, atol=1e-4)  # and the model it came from


# -- CPU side of engine/gpu -----------------------------------------------------------------
def test_nvdec_fallback_reasons():
    from vx_engine.gpu.nvdec_checks import StreamInfo, nvdec_fallback_reason

    def info(codec="h264", pix_fmt="yuv420p"):
        return StreamInfo(codec, 1280, 720, pix_fmt, time_base=None, average_rate=None, frames=0)  # type: ignore[arg-type]

    assert nvdec_fallback_reason(info(), True, True, (9, 0)) is None
    assert nvdec_fallback_reason(info("hevc"), True, True, (9, 0)) is None
    assert "PyNvVideoCodec is not installed" in nvdec_fallback_reason(info(), False, True)
    assert "no CUDA GPU" in nvdec_fallback_reason(info(), True, False)
    assert "no decoder for prores" in nvdec_fallback_reason(info("prores"), True, True, (9, 0))
    assert "not 8-bit 4:2:0" in nvdec_fallback_reason(
        info("hevc", "yuv420p10le"), True, True, (9, 0)
    )
    assert "no AV1 decoder" in nvdec_fallback_reason(info("av1"), True, True, (9, 0))
    assert nvdec_fallback_reason(info("av1"), True, True, (8, 9)) is None  # Ada decodes AV1


def test_split_nv12_recovers_planes_from_a_padded_pitched_surface():
    from vx_engine.gpu.nvdec import split_nv12

    rng = np.random.default_rng(5)
    height, width, coded_height, pitch = 270, 478, 272, 512
    y = rng.integers(0, 256, (height, width), dtype=np.uint8)
    uv = rng.integers(0, 256, (135, 239, 2), dtype=np.uint8)
    surface = np.zeros((coded_height * 3 // 2, pitch), dtype=np.uint8)
    surface[:height, :width] = y
    surface[coded_height : coded_height + 135, : 2 * 239] = uv.reshape(135, -1)
    got_y, got_uv = split_nv12(torch.from_numpy(surface), height, width)
    np.testing.assert_array_equal(got_y.numpy(), y)
    np.testing.assert_array_equal(got_uv.numpy(), uv)


def test_decoder_falls_back_to_pyav_and_yields_the_same_planes_as_ffmpeg():
    import av

    from vx_engine.gpu.nvdec import Nv12Decoder
    from vx_engine.samples import sample_video

    path = sample_video("bikes.mp4")
    decoder = Nv12Decoder(path)
    if decoder.backend == "nvdec":
        pytest.skip("NVDEC is available: tests/test_gpu.py compares it with PyAV")
    assert decoder.fallback_reason and "\n" not in decoder.fallback_reason
    with av.open(str(path)) as container:
        reference = [(f.to_ndarray(format="yuv420p"), f.pts) for f in container.decode(video=0)]
    frames = list(decoder)
    assert len(frames) == len(reference) == 250
    h, w = decoder.info.height, decoder.info.width
    for frame, (planar, pts) in zip(frames[::25], reference[::25], strict=True):
        assert frame.pts == pts
        np.testing.assert_array_equal(frame.y.cpu().numpy(), planar[:h])
        chroma = planar[h:].reshape(2, h // 2, w // 2)  # yuv420p: U plane then V plane
        np.testing.assert_array_equal(frame.uv[..., 0].cpu().numpy(), chroma[0])
        np.testing.assert_array_equal(frame.uv[..., 1].cpu().numpy(), chroma[1])


def test_round_robin_and_host_download_ring():
    from vx_engine.gpu.streams import HostDownloadRing, RoundRobin

    order = RoundRobin(3)
    assert [order.take() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError):
        RoundRobin(0)
    ring = HostDownloadRing(count=2)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tensors = [torch.full((4, 5), float(i), device=device) for i in range(3)]
    pending = [ring.download(t) for t in tensors[:2]]
    assert [p.slot for p in pending] == [0, 1]
    values = [p.wait().copy() for p in pending]
    for value, tensor in zip(values, tensors, strict=False):
        np.testing.assert_array_equal(value, tensor.cpu().numpy())
    third = ring.download(tensors[2])
    assert third.slot == 0
    np.testing.assert_array_equal(third.wait(), np.full((4, 5), 2.0, dtype=np.float32))
    # the first frame's array aliased slot 0, which the third download reused (documented)
    np.testing.assert_array_equal(pending[0].wait(), np.full((4, 5), 2.0, dtype=np.float32))
