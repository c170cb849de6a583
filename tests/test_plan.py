"""Target geometry and frame-rate planning, and its error messages."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from vx_engine.backends.select import probe_facts
from vx_engine.errors import OptionsError, UnknownModelError
from vx_engine.options import RunOptions
from vx_engine.plan import make_plan

REFERENCE_SR = "realesr-animevideov3-x2"


def _opts(**kw) -> RunOptions:
    # the model the plan's sizes are checked with (not --sr auto, which follows the source)
    return RunOptions(input=Path("in.mp4"), output=Path("out.mp4"), **{"sr": REFERENCE_SR, **kw})


def test_default_is_model_scale():
    plan = make_plan(_opts(), 640, 360, Fraction(24))
    assert (plan.out_width, plan.out_height) == (1280, 720)
    assert plan.out_fps == Fraction(24)


def test_target_height_keeps_aspect_and_even_sizes():
    plan = make_plan(_opts(height=1080), 640, 360, Fraction(25))
    assert (plan.out_width, plan.out_height) == (1920, 1080)
    plan = make_plan(_opts(sr=None, height=722), 853, 480, Fraction(25))
    assert plan.out_height == 722 and plan.out_width % 2 == 0
    assert abs(plan.out_width / 722 - 853 / 480) < 0.01


def test_rates():
    assert make_plan(_opts(vfi="rife-hdv3", interp=2), 64, 64, Fraction(25)).out_fps == 50
    plan = make_plan(
        _opts(vfi="rife-hdv3", fps=Fraction(60000, 1001)), 64, 64, Fraction(24000, 1001)
    )
    assert plan.out_fps == Fraction(60000, 1001)


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"scale": 16.0}, "larger than 8K"),
        ({"width": 1001}, "even"),
        ({"interp": 2}, "--vfi"),
        ({"tile": 8, "tile_overlap": 8}, "larger than"),
        ({"vfi": "realesrgan-x4plus"}, "rife-hdv3"),
    ],
)
def test_bad_options_say_what_to_do(kw, needle):
    with pytest.raises(OptionsError, match=needle):
        make_plan(_opts(**kw), 1280, 720, Fraction(25))


def test_unknown_model_lists_known_names():
    with pytest.raises(UnknownModelError, match="realesr-animevideov3-x4"):
        make_plan(_opts(sr="esrgan-9000"), 64, 64, Fraction(25))


# Runs make_plan in a child whose audit hook refuses every write under VX_CACHE, every
# connection and every child process: root ignores a read-only mode, the hook does not.
_SANDBOXED_PLAN = r"""
import os, sys
from fractions import Fraction
from pathlib import Path

from vx_engine.options import RunOptions
from vx_engine.plan import make_plan

cache = os.path.realpath(os.environ["VX_CACHE"])
WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
CHANGES = ("os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.chmod", "os.utime",
           "os.truncate", "os.link", "os.symlink", "shutil.copyfile", "shutil.rmtree")
OUTSIDE = ("socket.connect", "socket.getaddrinfo", "subprocess.Popen", "os.system",
           "os.posix_spawn", "os.exec", "os.fork", "urllib.Request")

def inside(path):
    if not isinstance(path, (str, bytes, os.PathLike)):
        return False  # a file descriptor
    return os.path.realpath(os.fsdecode(path)).startswith(cache)

def guard(event, args):
    if event in OUTSIDE:
        raise PermissionError(f"make_plan went outside: {event} {args[:2]!r}")
    if event == "open" and inside(args[0]) and (args[2] or 0) & WRITES:
        raise PermissionError(f"make_plan wrote into the cache: {args[0]}")
    if event == "os.mkdir" and inside(args[0]) and os.path.isdir(args[0]):
        return  # an existing folder: nothing changes
    if event in CHANGES and any(inside(a) for a in args[:2]):
        raise PermissionError(f"make_plan changed the cache: {event} {args[:2]!r}")

sys.addaudithook(guard)
options = RunOptions(Path("in.mp4"), Path("out.mp4"), sr="realesr-animevideov3-x2",
                     vfi="rife-hdv3", backend="openvino")
print(repr(make_plan(options, 640, 360, Fraction(24))))
"""


def test_make_plan_reads_no_network_and_writes_no_cache(tmp_path, monkeypatch):
    """The plan of an openvino auto run (the one that waits for a measurement on a bf16
    CPU) with a read-only empty cache is the plan with a writable empty one."""
    import os
    import subprocess
    import sys

    read_only, writable = tmp_path / "read-only", tmp_path / "writable"
    read_only.mkdir(mode=0o555)
    writable.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", _SANDBOXED_PLAN],
        env={**os.environ, "VX_CACHE": str(read_only)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert not any(read_only.iterdir())
    monkeypatch.setenv("VX_CACHE", str(writable))
    options = RunOptions(
        Path("in.mp4"), Path("out.mp4"), sr="realesr-animevideov3-x2", vfi="rife-hdv3",
        backend="openvino",
    )  # fmt: skip
    plan = make_plan(options, 640, 360, Fraction(24))
    assert result.stdout.strip() == repr(plan)
    assert not any(writable.iterdir())
    # on a CPU with native bf16 the choice waits for a measurement that prepare makes
    assert [m.awaits_validation for m in plan.models] == [probe_facts().cpu_bf16] * 2


def test_server_limits_size_the_output_as_the_plan_does():
    """The job limits price RIFE at the plan's own output size (vx_engine.geometry)."""
    from vx_engine.server.job_settings import JobSettings
    from vx_engine.server.limits import Header, JobLimits, LimitError, check_job

    settings = JobSettings(sr=None, vfi="rife-hdv3", height=722)
    options = settings.to_run_options(Path("in.mp4"), Path("out.mp4"))
    plan = make_plan(options, 853, 480, Fraction(25), "ort-cpu")
    pixels = plan.out_width * plan.out_height
    header = Header(853, 480, Fraction(25), 10, 0.4)
    check_job(settings, header, JobLimits(10**9, pixels, 10**6, 3600.0))
    with pytest.raises(LimitError, match="interpolating"):
        check_job(settings, header, JobLimits(10**9, pixels - 1, 10**6, 3600.0))
