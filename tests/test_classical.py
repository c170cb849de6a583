"""Classical stages against FFmpeg's own filters run by the ``ffmpeg`` CLI, and --ai-strength.

Reference: the Debian ``ffmpeg`` binary (``make setup``) runs ``format=gbrpf32le,FILTER,
format=gbrp16le`` on the same lossless RGB clip (FFV1 gbrp16le, real frames from
bikes.mp4); the engine runs the stage in its pipeline and writes FFV1 gbrp16le. Both are
compared frame by frame at >= 45 dB with the same frame count (measured: 72-99 dB; nlmeans
lowest). An 8-bit RGB clip would put a 53 dB floor under every comparison: swscale widens
8 bits to 16 as v << 8, the engine as v / 255. The CLI is FFmpeg 5.1, PyAV bundles 8.1.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.media import make_clip, psnr
from vx_engine.api import run
from vx_engine.export.registry import MODELS
from vx_engine.options import RunOptions
from vx_engine.pipeline.ffmpeg.specs import POST_FILTERS, PRE_FILTERS, SR_FLAGS, VFI_FILTERS

REPO = Path(__file__).resolve().parents[1]
FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="no ffmpeg CLI (make setup installs it)")
FRAMES, WIDTH, HEIGHT, FPS = 6, 64, 48, 25
SR_MODEL = "realesr-animevideov3-x2"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("classical") / "in.mkv"
    make_clip(path, FRAMES, WIDTH, HEIGHT, fps=FPS, pix_fmt="gbrp16le", content="bikes.mp4")
    return path


def frames_of(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb48le") for f in container.decode(video=0)]
    return np.stack([f.transpose(2, 0, 1).astype(np.float64) / 65535 for f in decoded])


def engine_run(source: Path, output: Path, **options: object) -> np.ndarray:
    options = {"sr": None, "codec": "ffv1", "pix_fmt": "gbrp16le", **options}
    run(RunOptions(input=source, output=output, progress="none", **options), log=lambda m: None)
    return frames_of(output)


def ffmpeg_run(source: Path, output: Path, graph: str) -> np.ndarray:
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-i", str(source), "-vf",
         f"format=gbrpf32le,{graph},format=gbrp16le", "-c:v", "ffv1", str(output)],
        check=True,
    )  # fmt: skip
    return frames_of(output)


def assert_close(ours: np.ndarray, reference: np.ndarray, floor: float = 45.0) -> None:
    assert ours.shape == reference.shape
    scores = [psnr(a, b) for a, b in zip(ours, reference, strict=True)]
    assert min(scores) >= floor, scores


def test_classical_names_do_not_collide_with_models() -> None:
    classical = set(SR_FLAGS) | set(PRE_FILTERS) | set(POST_FILTERS) | set(VFI_FILTERS)
    assert classical.isdisjoint(MODELS)


@needs_ffmpeg
@pytest.mark.parametrize(
    ("options", "graph"),
    [
        ({"sr": "lanczos"}, "scale=128:96:flags=lanczos"),
        ({"sr": "bicubic", "width": 96}, "scale=96:72:flags=bicubic"),
        ({"sr": "spline", "scale": 2.5}, "scale=160:120:flags=spline"),
        ({"pre": ("nlmeans:s=4",)}, "nlmeans=s=4"),
        ({"pre": ("bm3d:sigma=8",)}, "bm3d=sigma=8"),
        ({"pre": ("deblock",)}, "deblock"),
        ({"pre": ("atadenoise",)}, "atadenoise"),  # temporal: outputs lag its window
        ({"post": ("unsharp:la=1.5",)}, "unsharp=la=1.5"),
        ({"post": ("cas:strength=0.8",)}, "cas=strength=0.8"),
        (
            {"pre": ("deblock",), "sr": "lanczos", "post": ("cas",)},
            "deblock,scale=128:96:flags=lanczos,cas",
        ),
    ],
    ids=lambda value: str(value),
)
def test_stage_matches_ffmpeg_cli(clip: Path, tmp_path: Path, options: dict, graph: str) -> None:
    ours = engine_run(clip, tmp_path / "ours.mkv", **options)
    assert len(ours) == FRAMES
    assert_close(ours, ffmpeg_run(clip, tmp_path / "ref.mkv", graph))


@needs_ffmpeg
def test_minterpolate_matches_ffmpeg_cli(clip: Path, tmp_path: Path) -> None:
    """Whole-sequence minterpolate at 2x: timestamps k/50, the last interval closed as the
    CLI closes it with the last frame cloned twice (tpad)."""
    output = tmp_path / "ours.mkv"
    ours = engine_run(clip, output, vfi="minterpolate", interp=2)
    assert len(ours) == 2 * FRAMES
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        times = [f.pts * Fraction(stream.time_base) for f in container.decode(stream)]
    assert times == [Fraction(k, 2 * FPS) for k in range(2 * FRAMES)]
    graph = "tpad=stop=2:stop_mode=clone,minterpolate=fps=50"
    reference = ffmpeg_run(clip, tmp_path / "ref.mkv", graph)[: 2 * FRAMES]
    assert_close(ours, reference)


@needs_ffmpeg
def test_blend_matches_ffmpeg_blend(clip: Path, tmp_path: Path) -> None:
    """--vfi blend at 2x: source frames, then FFmpeg's blend of each pair at t = 1/2."""
    ours = engine_run(clip, tmp_path / "ours.mkv", vfi="blend", interp=2)
    assert len(ours) == 2 * FRAMES
    reference = tmp_path / "mid.mkv"
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-i", str(clip), "-filter_complex",
         "[0:v]format=gbrpf32le,split[a][b];[b]trim=start_frame=1,setpts=PTS-STARTPTS[c];"
         "[a][c]blend=all_mode=normal:all_opacity=0.5:shortest=1,format=gbrp16le",
         "-c:v", "ffv1", str(reference)],
        check=True,
    )  # fmt: skip
    middles = frames_of(reference)
    assert len(middles) == FRAMES - 1
    assert_close(ours[1:-1:2], middles)
    assert_close(ours[0::2], frames_of(clip))  # the source frames themselves


def test_ai_strength_zero_is_lanczos_and_loads_no_model(clip: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    options = RunOptions(
        input=clip, output=tmp_path / "zero.mkv", sr=SR_MODEL, ai_strength=0.0,
        codec="ffv1", pix_fmt="gbrp16le", progress="none",
    )  # fmt: skip
    summary = run(options, log=lines.append)
    assert summary.precision == ""  # no model ran
    assert any("not loaded" in line for line in lines)
    lanczos = engine_run(clip, tmp_path / "lanczos.mkv", sr="lanczos", scale=2)
    np.testing.assert_array_equal(frames_of(tmp_path / "zero.mkv"), lanczos)


def test_ai_strength_blends_the_model_with_lanczos(clip: Path, tmp_path: Path) -> None:
    model = engine_run(clip, tmp_path / "model.mkv", sr=SR_MODEL)
    one = engine_run(clip, tmp_path / "one.mkv", sr=SR_MODEL, ai_strength=1.0)
    np.testing.assert_array_equal(one, model)  # 1 is the model alone
    lanczos = engine_run(clip, tmp_path / "lanczos.mkv", sr="lanczos")
    half = engine_run(clip, tmp_path / "half.mkv", sr=SR_MODEL, ai_strength=0.3)
    expected = 0.3 * model + 0.7 * lanczos
    assert min(psnr(a, b) for a, b in zip(half, expected, strict=True)) >= 60.0
    assert psnr(half[0], model[0]) < 50.0  # it is a blend, not the model


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--sr", "none", "--pre", "hqdn3d"], "known: nlmeans, bm3d, deblock, atadenoise"),
        (["--sr", "none", "--pre", "nlmeans:bogus=1"], "its options: s, p, pc, r, rc"),
        (["--sr", "none", "--post", "unsharp:lx=4"], "its options: lx"),
        (["--sr", "lanczoz"], "classical --sr: lanczos, bicubic, spline"),
        (["--sr", "none", "--vfi", "blender"], "classical --vfi: blend, minterpolate"),
        (["--ai-strength", "1.5"], "--ai-strength 1.5: must be between 0 and 1"),
        (["--sr", "lanczos", "--ai-strength", "0.5"], "is no model"),
    ],
)
def test_bad_classical_input_is_one_line(
    clip: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    output = tmp_path / "out.mkv"
    result = subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "run", str(clip), "-o", str(output),
         "--progress", "none", *args],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not output.exists() and list(tmp_path.iterdir()) == []


def test_job_settings_take_the_classical_stages_as_the_cli_does(tmp_path: Path) -> None:
    pytest.importorskip("pydantic")
    from pydantic import ValidationError

    from vx_engine.server.job_settings import JobSettings, validation_message

    settings = JobSettings(sr="lanczos", vfi="blend", pre=["nlmeans:s=3"], post=["cas"])
    options = settings.to_run_options(tmp_path / "in.mp4", tmp_path / "out.mp4")
    assert (options.sr, options.vfi, options.pre, options.post) == (
        "lanczos", "blend", ("nlmeans:s=3",), ("cas",),
    )  # fmt: skip
    blended = JobSettings(sr=SR_MODEL, ai_strength=0.4).to_run_options(tmp_path, tmp_path)
    assert blended.ai_strength == 0.4
    for bad, expected in (
        ({"pre": ["hqdn3d"]}, "known: nlmeans, bm3d, deblock, atadenoise"),
        ({"post": ["unsharp:lx=4"]}, "its options: lx"),
        ({"sr": "lanczoz"}, "classical: lanczos, bicubic, spline"),
        ({"ai_strength": 1.5}, "ai_strength"),
        ({"sr": "lanczos", "ai_strength": 0.5}, "is no model"),
    ):
        with pytest.raises(ValidationError) as caught:
            JobSettings(**bad)
        assert expected in validation_message(caught.value)
