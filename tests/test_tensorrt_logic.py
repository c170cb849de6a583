"""The pure half of the TensorRT engines: profiles (export/tensorrt_profiles.py), cache keys,
file names and metadata (export/tensorrt_cache.py), availability (engine/gpu/probe.py).

The engine build itself needs TensorRT and a GPU; it is exercised by tests/test_gpu.py.
"""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from vx_engine.errors import BackendError, ExportError, VxError
from vx_engine.export import tensorrt_builder
from vx_engine.export import tensorrt_cache as tc
from vx_engine.export import tensorrt_profiles as tp
from vx_engine.export.tensorrt_cache import EngineKey
from vx_engine.gpu.probe import tensorrt_unavailable_reason

H100 = ("NVIDIA H100 80GB HBM3", (9, 0))
TRT = "10.13.0.35"


def _base_args() -> dict:
    """EngineKey's fields."""
    return dict(
        onnx_sha256="a" * 64,
        trt_version=TRT,
        gpu_name=H100[0],
        compute_capability=H100[1],
        profile=tp.profile_shapes("sr", (64, 64), (256, 256), (1088, 1920)),
        precision="fp16",
    )


def test_sr_profile_is_nchw_from_tile_sizes():
    profile = tp.profile_shapes("sr", (64, 48), (256, 256), (1080, 1920), batch=2)
    assert set(profile) == {"input"}
    assert profile["input"] == ((2, 3, 64, 48), (2, 3, 256, 256), (2, 3, 1080, 1920))


def test_vfi_profile_rounds_frames_up_to_the_size_multiple():
    frame = (720, 1278)
    profile = tp.profile_shapes("vfi", frame, frame, (1080, 1920), size_multiple=32)
    assert set(profile) == {"img0", "img1"}
    smallest, typical, largest = profile["img0"]
    assert smallest == typical == (1, 3, 736, 1280)
    assert largest == (1, 3, 1088, 1920)
    for shape in profile["img1"]:
        assert shape[2] % 32 == 0 and shape[3] % 32 == 0
    assert profile["img0"] == profile["img1"]


def test_profile_with_timestep_input_and_batch_range():
    profile = tp.profile_shapes(
        "vfi",
        (64, 64),
        (256, 448),
        (512, 896),
        batch=(1, 2, 4),
        size_multiple=32,
        input_channels={"img0": 3, "img1": 3, "timestep": 1},
    )
    assert profile["timestep"] == ((1, 1, 64, 64), (2, 1, 256, 448), (4, 1, 512, 896))


@pytest.mark.parametrize(
    "sizes",
    [
        ((256, 256), (64, 64), (512, 512)),  # min > opt
        ((64, 64), (256, 256), (128, 1024)),  # opt height > max height
        ((0, 64), (64, 64), (64, 64)),  # empty
    ],
)
def test_profile_rejects_inconsistent_ranges(sizes):
    with pytest.raises(ExportError) as raised:
        tp.profile_shapes("sr", *sizes)
    assert "\n" not in str(raised.value)


def test_profile_rejects_unknown_kind():
    with pytest.raises(ExportError, match="sr or vfi"):
        tp.profile_shapes("denoise", (8, 8), (8, 8), (8, 8))


def test_cache_key_is_stable_and_ignores_profile_input_order():
    args = _base_args()
    key = EngineKey(**args).digest()
    assert re.fullmatch(r"[0-9a-f]{64}", key)
    assert EngineKey(**_base_args()).digest() == key
    vfi = tp.profile_shapes("vfi", (64, 64), (256, 256), (512, 512), size_multiple=32)
    reordered = {"img1": vfi["img1"], "img0": vfi["img0"]}
    assert (
        EngineKey(**{**args, "profile": vfi}).digest()
        == EngineKey(**{**args, "profile": reordered}).digest()
    )


@pytest.mark.parametrize(
    "field, other",
    [
        ("onnx_sha256", "b" * 64),
        ("trt_version", "11.0.0.1"),
        ("gpu_name", "NVIDIA H200"),
        ("compute_capability", (8, 9)),
        ("profile", tp.profile_shapes("sr", (64, 64), (256, 256), (1088, 1921))),
        ("precision", "fp32"),
    ],
)
def test_cache_key_changes_with_each_input(field, other):
    args = _base_args()
    assert EngineKey(**{**args, field: other}).digest() != EngineKey(**args).digest()


def test_cache_key_changes_with_the_number_of_profiles():
    args = _base_args()
    assert EngineKey(**args, num_profiles=1).digest() != EngineKey(**args, num_profiles=2).digest()


def test_cache_key_changes_with_the_platform_and_defaults_to_this_host():
    # serialized engines are not portable across platforms (TensorRT support matrix)
    args = _base_args()
    key = EngineKey(**args)
    linux = key.digest(host="linux-x86_64")
    assert linux != key.digest(host="win32-amd64")
    assert key.digest() == key.digest(host=tc.host_platform())
    assert re.fullmatch(r"[a-z0-9]+-[a-z0-9_]+", tc.host_platform())


class _FakeTimingConfig:
    """Stands in for IBuilderConfig: create_timing_cache / set_timing_cache only."""

    def __init__(self, corrupt: bytes = b"", foreign: bytes = b""):
        self.corrupt, self.foreign, self.attached = corrupt, foreign, None

    def create_timing_cache(self, data: bytes):
        if data and data == self.corrupt:
            raise RuntimeError("truncated timing cache")
        return ("cache", data)

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        assert ignore_mismatch is False
        if cache[1] and cache[1] == self.foreign:
            return False  # the header's device properties differ
        self.attached = cache
        return True


@pytest.mark.parametrize("kind", ["missing", "good", "corrupt", "foreign"])
def test_timing_cache_fails_open_to_a_fresh_cache(tmp_path, kind):
    path = tmp_path / "timing.cache"
    if kind != "missing":
        path.write_bytes(b"bytes-" + kind.encode())
    config = _FakeTimingConfig(corrupt=b"bytes-corrupt", foreign=b"bytes-foreign")
    said: list[str] = []
    cache = tensorrt_builder._attach_timing_cache(config, path, said.append)
    assert cache is config.attached
    assert cache[1] == (b"bytes-good" if kind == "good" else b"")
    assert len(said) == (1 if kind in ("corrupt", "foreign") else 0)


def test_engine_file_name_is_readable_prefix_plus_hash(tmp_path):
    args = _base_args()
    path = tc.engine_path(tmp_path, "realesr-animevideov3-x2", EngineKey(**args))
    key = EngineKey(**args).digest()
    assert path.parent == tmp_path
    assert path.suffix == ".engine"
    assert re.fullmatch(r"[A-Za-z0-9._-]+", path.name), path.name
    assert path.name.startswith("realesr-animevideov3-x2_fp16_b1_64x64-256x256-1088x1920_")
    assert "NVIDIA-H100-80GB-HBM3_sm90_trt10.13.0.35" in path.name
    assert path.stem.endswith(key[:16])
    # another GPU -> another file; same inputs -> same file
    assert (
        tc.engine_path(
            tmp_path, "realesr-animevideov3-x2", EngineKey(**{**args, "gpu_name": "NVIDIA H200"})
        )
        != path
    )
    assert tc.engine_path(tmp_path, "realesr-animevideov3-x2", EngineKey(**_base_args())) == path


def test_timing_cache_is_per_gpu_and_trt_version_only(tmp_path):
    cache = tc.timing_cache_path(tmp_path, TRT, *H100)
    assert cache.parent == tmp_path and cache.suffix == ".cache"
    assert "sm90" in cache.name and TRT in cache.name
    assert tc.timing_cache_path(tmp_path, "11.0.0", *H100) != cache
    assert tc.timing_cache_path(tmp_path, TRT, "NVIDIA H200", (9, 0)) != cache
    # every engine for this GPU + TensorRT shares the file, whatever the model or profile
    engine_a = tc.engine_path(tmp_path, "a", EngineKey(**_base_args()))
    engine_b = tc.engine_path(tmp_path, "b", EngineKey(**{**_base_args(), "precision": "fp32"}))
    assert engine_a != engine_b


def test_engine_metadata_records_the_key_and_is_json():
    args = _base_args()
    meta = tc.engine_metadata("realesr-animevideov3-x2", EngineKey(**args), build_s=12.345)
    assert meta["cache_key"] == EngineKey(**args).digest()
    assert meta["compute_capability"] == [9, 0]
    assert meta["profile"]["input"][2] == [1, 3, 1088, 1920]
    assert meta["strongly_typed"] is True and meta["build_s"] == 12.35
    assert meta["platform"] == tc.host_platform()
    assert json.loads(json.dumps(meta)) == meta


def test_default_profiles_cover_1080p_tiles_and_4k_frames():
    sr = tp.default_profile("sr")["input"]
    assert sr[2][2:] == (1088, 1920)
    vfi = tp.default_profile(
        "vfi", size_multiple=32, input_channels={"img0": 3, "img1": 3, "timestep": 1}
    )
    assert vfi["img0"][2][2:] == (2176, 3840) and vfi["timestep"][2][1] == 1
    assert all(d % 32 == 0 for shape in vfi["img0"] for d in shape[2:])


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here"
)
def test_unavailable_reason_here_names_the_missing_package(tmp_path):
    reason = tensorrt_unavailable_reason()
    assert reason is not None and reason.startswith("tensorrt is not installed")
    assert "\n" not in reason
    # building says the same in one line, as a user-facing error
    with pytest.raises(BackendError) as raised:
        tensorrt_builder.build_engine(tmp_path / "model.onnx", _base_args()["profile"], tmp_path)
    assert isinstance(raised.value, VxError)
    assert "tensorrt is not installed" in str(raised.value) and "\n" not in str(raised.value)
    assert not list(tmp_path.iterdir())  # nothing written
