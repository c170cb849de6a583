"""Which precision runs: ``--precision`` x backend x model x machine -> one choice.

``choose_precision`` is pure: the machine's facts and the stored validation figures
are its arguments; ``model_precision`` feeds it this machine's facts.

``auto`` (the default) picks the fastest precision whose stored validation against
fp32 is at least ``AUTO_MIN_PSNR_DB`` for that backend and model:

- NVIDIA GPU backends: fp16 where the model supports it (its fp16 artifact was
  validated at build time; a stored figure under the floor keeps fp32);
- openvino on a CPU with native bf16 (AVX512_BF16 or AMX): int8, then bf16, each
  only with an OpenVINO validation stored by ``vx_engine.backends.openvino_validate`` at or above the
  floor (int8 measures ~41 dB, so today it is bf16);
- openvino on an Intel GPU: fp16, OpenVINO's own GPU default (NOT RUN: no Intel GPU here);
- everything else: fp32.

Named precisions are honoured or refused in one line; the only silent-ish coercions
(logged) are fp16/int8 on models or backends that cannot run them, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vx_engine.backends.select import GPU_BACKENDS
from vx_engine.errors import OptionsError

AUTO_MIN_PSNR_DB = 45.0
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
INT8_BACKENDS = ("ort-cpu", "openvino")


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # what the runner computes in
    artifact: str  # which ONNX artifact it reads: bf16 (and fp16 on openvino) read fp32
    note: str | None  # a log line explaining a coercion or what auto chose; None if as asked


def artifact_precision(precision: str, backend: str) -> str:
    """The artifact a (precision, backend) reads: OpenVINO lowers fp32 graphs itself."""
    if precision == "bf16" or (backend == "openvino" and precision == "fp16"):
        return "fp32"
    return precision


def _choice(precision: str, backend: str, note: str | None = None) -> PrecisionChoice:
    return PrecisionChoice(precision, artifact_precision(precision, backend), note)


def choose_precision(
    requested: str,
    backend: str,
    model: str,
    kind: str,
    supports_half: bool,
    cpu_bf16: bool,
    validation_db: dict[str, float] | None = None,
    openvino_device: str = "CPU",
) -> PrecisionChoice:
    """The precision ``model`` runs in on ``backend``; OptionsError (one line) if it cannot.

    ``validation_db``: stored PSNR (dB) against fp32 per precision for this backend and
    model (openvino: from the OpenVINO sidecar; NVIDIA: the fp16 artifact's build check).
    """
    requested = requested.strip().lower()
    stored = validation_db or {}
    on_intel_gpu = backend == "openvino" and not openvino_device.startswith("CPU")
    if requested not in PRECISIONS:
        raise OptionsError(f"--precision {requested}: unknown; use one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return _choice("fp32", backend)
    if requested == "auto":
        return _auto(backend, model, kind, supports_half, cpu_bf16, stored, on_intel_gpu)
    if requested == "bf16":
        if backend != "openvino":
            raise OptionsError(
                f"--precision bf16 runs on --backend openvino, not {backend}; "
                "add --backend openvino or use --precision auto"
            )
        if on_intel_gpu:
            raise OptionsError(
                f"--precision bf16 is for OpenVINO's CPU, not {openvino_device}; use fp16 there"
            )
        if not cpu_bf16:
            raise OptionsError(
                "--precision bf16 needs a CPU with native bf16 (AVX512_BF16 or AMX); this CPU "
                "has neither; use --precision fp32 or auto"
            )
        return _choice("bf16", backend)
    if requested == "int8":
        if kind != "sr":
            return _choice("fp32", backend, f"{model} runs in fp32: int8 is for SR models")
        if backend not in INT8_BACKENDS:
            raise OptionsError(
                f"--precision int8 runs on ort-cpu or openvino, not {backend}; "
                "add --backend openvino or use --precision fp32/fp16"
            )
        return _choice("int8", backend)
    # fp16
    if not supports_half:
        return _choice("fp32", backend, f"{model} runs in fp32: it does not support fp16")
    if backend == "torch-cpu":
        return _choice("fp32", backend, f"{model} runs in fp32: torch-cpu has no fast fp16 kernels")
    if backend == "openvino" and not on_intel_gpu:
        raise OptionsError(
            "--precision fp16 on OpenVINO's CPU is emulated (slower than fp32); "
            "use --precision bf16, fp32 or auto"
        )
    return _choice("fp16", backend)


def _auto(
    backend: str,
    model: str,
    kind: str,
    supports_half: bool,
    cpu_bf16: bool,
    stored: dict[str, float],
    on_intel_gpu: bool,
) -> PrecisionChoice:
    floor = AUTO_MIN_PSNR_DB

    def passed(precision: str) -> bool:
        return stored.get(precision, float("-inf")) >= floor

    def said(precision: str, why: str) -> PrecisionChoice:
        return _choice(precision, backend, f"{model}: precision auto -> {precision} ({why})")

    if backend in GPU_BACKENDS:  # NVIDIA's
        if not supports_half:
            return said("fp32", "the model does not support fp16")
        if "fp16" in stored and not passed("fp16"):
            return said("fp32", f"fp16 validated at {stored['fp16']:.1f} dB < {floor:.0f} dB")
        return said("fp16", f"NVIDIA GPU backend {backend}")
    if backend != "openvino":
        return said("fp32", f"{backend} has no faster precision within {floor:.0f} dB")
    if on_intel_gpu:
        return (
            said("fp16", "OpenVINO GPU default; NOT RUN here")
            if supports_half
            else said("fp32", "the model does not support fp16")
        )
    for precision in ("int8", "bf16"):  # fastest first
        if precision == "int8" and kind != "sr":
            continue
        if precision == "bf16" and not cpu_bf16:
            continue
        if passed(precision):
            return said(
                precision, f"validated at {stored[precision]:.1f} dB >= {floor:.0f} dB vs fp32"
            )
    if not cpu_bf16:
        return said("fp32", "this CPU has no native bf16")
    if "bf16" in stored:
        return said("fp32", f"bf16 validated at {stored['bf16']:.1f} dB < {floor:.0f} dB")
    return said("fp32", "no stored bf16 validation for this model")


def reads_validation(requested: str, backend: str, device: int | str) -> bool:
    """Whether ``auto`` reads an OpenVINO validation here: on OpenVINO's CPU with native bf16."""
    from vx_engine.backends.select import openvino_device_name, probe_facts

    return (
        backend == "openvino"
        and requested == "auto"
        and probe_facts().cpu_bf16
        and openvino_device_name(device).startswith("CPU")
    )


def model_precision(
    desc: Any, requested: str, backend: str, device: int | str, stored: dict[str, float]
) -> PrecisionChoice:
    """``choose_precision`` for ``desc`` (a ModelDescriptor) on this machine, with the
    validation figures (dB vs fp32) stored or measured for it."""
    from vx_engine.backends.select import openvino_device_name, probe_facts

    return choose_precision(
        requested,
        backend,
        desc.name,
        desc.kind,
        desc.supports_half,
        probe_facts().cpu_bf16,
        stored,
        openvino_device=openvino_device_name(device) if backend == "openvino" else "CPU",
    )
