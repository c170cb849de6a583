"""What the CPU can do, from its flags (/proc/cpuinfo on Linux; elsewhere nothing is
assumed): native bf16 for the precision and backend choice, and whether ONNX Runtime's
int8 convolution saturates, for the int8 recipe. Backends and export both ask."""

from __future__ import annotations


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The first core's flags from /proc/cpuinfo (Linux; elsewhere empty)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as handle:
                cpuinfo = handle.read(1 << 16)  # the first core's flags are enough
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Native bf16 (Linux flags; elsewhere False, so bf16 is opt-in)."""
    return bool(cpu_flags(cpuinfo) & {"avx512_bf16", "amx_bf16"})


def cpu_int8_saturates(cpuinfo: str | None = None) -> bool:
    """Whether ONNX Runtime's u8 x s8 convolution saturates here: an x86 CPU with AVX2 but
    no VNNI multiplies through VPMADDUBSW, whose 16-bit sums clip (ORT's quantization
    docs; on a 2-core AMD EPYC with AVX2 only, animevideov3-x4 int8 fell to 32.2 dB)."""
    flags = cpu_flags(cpuinfo)
    vnni = {"avx512_vnni", "avx_vnni", "amx_int8"}
    return "avx2" in flags and not flags & vnni
