"""The run's flag table: `vx-engine run`'s options and the server's job-setting keys come
from one declaration, so they cannot drift; the resume command gives the same options."""

from __future__ import annotations

import shlex
from fractions import Fraction
from pathlib import Path

import pytest

from vx_engine.cli import cli
from vx_engine.cli.run import AUTO_CHUNK_MIN_S, chunk_options, resume_command_line
from vx_engine.flag_values import none_or, parse_rate
from vx_engine.options import RunOptions
from vx_engine.run_flags import FLAGS, RUN_FLAGS, WEB_FLAGS, web_text

# every `vx-engine run` flag and every server JSON key that existed before the table
RUN_SPELLINGS = """--sr --denoise --scale --height --width --vfi --interp --fps --scene-threshold
--vfi-scale --order --memory-check --no-memory-check --tile --tile-overlap --tile-batch
--sr-weights --vfi-weights --pre --post --ai-strength --threads --requests --spin --no-spin
--backend --device --precision --codec --crf --pix-fmt --no-audio --overwrite --start
--duration --progress --dedup --probe --no-probe --chunk-seconds --resume --work-dir
--keep-work --ray --ray-workers --ray-ship-input""".split()
SERVER_KEYS = {"sr", "vfi", "scale", "height", "interp", "fps", "tile", "codec", "crf", "pre",
               "post", "ai_strength", "denoise", "deinterlace", "ivtc", "quality",
               "stabilize"}  # fmt: skip


def _run_context(*args: str):
    return cli.commands["run"].make_context("run", ["in.mp4", "-o", "out.mp4", *args])


def test_every_run_flag_and_server_key_is_in_the_table() -> None:
    spellings = {
        s for param in cli.commands["run"].params for s in param.opts + param.secondary_opts
    }
    assert set(RUN_SPELLINGS) <= spellings
    assert {flag.name for flag in WEB_FLAGS} == SERVER_KEYS


def test_every_row_is_an_option_field() -> None:
    from dataclasses import fields

    from vx_engine.options import ChunkOptions

    names = {f.name for cls in (RunOptions, ChunkOptions) for f in fields(cls)}
    assert {flag.name for flag in RUN_FLAGS} <= names


def test_job_settings_keys_are_the_tables_web_rows() -> None:
    pytest.importorskip("pydantic")
    from vx_engine.server.job_settings import JobSettings

    assert list(JobSettings.model_fields) == [flag.name for flag in WEB_FLAGS]
    settings = JobSettings.model_validate(
        {"sr": "none", "vfi": "rife-hdv3", "fps": "60000/1001", "pre": ["nlmeans:s=3"], "crf": 20}
    )
    options = settings.to_run_options(Path("a"), Path("b"))
    assert (options.sr, options.vfi, options.fps, options.pre, options.crf) == (
        None, "rife-hdv3", Fraction(60000, 1001), ("nlmeans:s=3",), 20,
    )  # fmt: skip


def test_the_cli_and_the_server_read_none_and_rates_alike() -> None:
    params = _run_context("--sr", "None", "--vfi", "rife-hdv3", "--fps", "59.94").params
    assert params["sr"] is None and params["fps"] == Fraction(2997, 50)
    assert none_or("NONE") is None and none_or("lanczos") == "lanczos"
    assert parse_rate("60000/1001") == Fraction(60000, 1001) and parse_rate(50) == 50
    for bad in ("1e10000000", "sixty", "60/0", float("nan")):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_plan_messages_name_keys_for_the_web() -> None:
    message = "--ai-strength 1.5: must be between 0 and 1; give --scale or --width/--height"
    assert (
        web_text(message) == "ai_strength 1.5: must be between 0 and 1; give scale or width/height"
    )
    assert web_text("--no-memory-check and --tile-overlap") == "check_memory and tile_overlap"


def test_theresume_command_line_gives_the_same_options() -> None:
    args = ["--sr", "none", "--vfi", "rife-hdv3", "--fps", "60000/1001", "--no-audio",
            "--pre", "nlmeans:s=3", "--pre", "deblock", "--no-probe", "--device", "GPU.1",
            "--chunk-seconds", "5"]  # fmt: skip
    ctx = _run_context(*args)
    with ctx:
        command = shlex.split(resume_command_line(ctx, Path("in.mp4"), Path("out.mp4")))
    assert command[:2] == ["vx-engine", "run"] and command[-1] == "--resume"
    again = cli.commands["run"].make_context("run", command[2:]).params
    assert again == {**ctx.params, "resume": True}


def test_chunk_defaults() -> None:
    params = _run_context().params
    chunking = {flag.name: params[flag.name] for flag in RUN_FLAGS if flag.chunking}
    auto = chunk_options(chunking, "cmd")
    assert auto is not None and auto.only_if_longer_than_s == AUTO_CHUNK_MIN_S
    assert chunk_options({**chunking, "chunk_seconds": 0}, "cmd") is None
    explicit = chunk_options({**chunking, "chunk_seconds": 5.0}, "cmd")
    assert explicit.chunk_seconds == 5.0 and explicit.only_if_longer_than_s is None
    assert FLAGS["ship_input"].cli == "--ray-ship-input"
