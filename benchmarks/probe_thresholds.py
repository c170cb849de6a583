"""The values behind ``vx-engine probe``'s thresholds, and how long a probe takes.

Every clip of ``benchmarks/probe_clips.py`` (Big Buck Bunny / bikes.mp4, 640x360,
40 frames, one known degradation each) is probed; the table gives each measured
value next to the threshold in ``engine/analysis/report.py``. Then the probe's
speed: a two-hour file (a 10 s bikes clip remuxed 720 times) with the default
sampling, and the fast probe ``vx-engine run`` does first, on both clips.

    python -m benchmarks.probe_thresholds   # -> results/probe_thresholds.{json,md}
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import av

from benchmarks.common import log, save_result
from benchmarks.probe_clips import CASES, encode, make_case, source_frames
from vx_engine.analysis import FAST, probe
from vx_engine.analysis import report as thresholds

COLUMNS = [
    "case", "height", "blockiness", "blur", "noise", "cuts", "fields", "held", "pattern",
    "contrast", "saturation", "hdr", "vfr", "codes", "probe_s",
]  # fmt: skip


def remux_repeated(clip: Path, out: Path, copies: int) -> Path:
    """``copies`` back-to-back copies of ``clip``'s packets (no re-encode)."""
    with av.open(str(clip)) as source:
        stream = source.streams.video[0]
        packets = [p for p in source.demux(stream) if p.size]
        step = round(1 / (stream.average_rate * stream.time_base))  # one frame, in ticks
        length = max(p.pts for p in packets) - min(p.pts for p in packets) + step
        with av.open(str(out), "w") as target:
            video = target.add_stream_from_template(stream)
            for copy in range(copies):
                for packet in packets:
                    if copy:
                        packet.pts += length
                        if packet.dts is not None:
                            packet.dts += length
                    packet.stream = video
                    target.mux(packet)
    return out


def run_overhead(clip: Path, folder: Path) -> list[dict]:
    from vx_engine.api import run
    from vx_engine.options import RunOptions

    walls: dict[bool, list[float]] = {True: [], False: []}
    for probe_first in (True, False) * 3:
        options = RunOptions(
            input=clip, output=folder / "o.mkv", sr=None, scale=1.0, progress="none",
            overwrite=True, probe=probe_first,
        )  # fmt: skip
        started = time.perf_counter()
        run(options, log=lambda line: None)
        walls[probe_first].append(time.perf_counter() - started)
    return [{"probe": str(k), "wall_s": round(min(v), 3)} for k, v in walls.items()]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in CASES:
            path = make_case(name, Path(folder) / f"{name}.mkv")
            started = time.perf_counter()
            r = probe(path)
            elapsed = time.perf_counter() - started
            rows.append({
                "case": name, "height": r["height"], "blockiness": r["blockiness"],
                "blur": r["blur"], "noise": r["noise"], "cuts": r["scene_cuts"],
                "fields": r["interlace"]["share"], "held": r["held"]["share"],
                "pattern": r["held"]["pattern"], "contrast": r["colour"]["contrast"],
                "saturation": r["colour"]["saturation"], "hdr": r["hdr"], "vfr": r["vfr"],
                "codes": " ".join(w["code"] for w in r["warnings"]) or "-",
                "probe_s": round(elapsed, 3),
            })  # fmt: skip
            log(f"{name}: {rows[-1]}")
        clip = encode(
            Path(folder) / "ten.mkv",
            source_frames("bikes.mp4", 250, (320, 180)),
            options={"crf": "30", "g": "250", "bf": "0"},
        )
        film = remux_repeated(clip, Path(folder) / "film.mkv", 720)
        speed = []
        for label, path, setting in (
            ("2 h film (720 x 10 s bikes 320x180), default 8x24", film, None),
            ("2 h film, fast probe before run (3x8)", film, FAST),
            ("clean 640x360 1.6 s, fast probe", Path(folder) / "clean.mkv", FAST),
            ("bigbuckbunny.mp4 1280x720 5.3 s, fast probe", None, FAST),
            ("bigbuckbunny.mp4 1280x720 5.3 s, default", None, None),
        ):
            if path is None:
                from vx_engine.samples import sample_video

                path = sample_video("bigbuckbunny.mp4")
            started = time.perf_counter()
            r = probe(path, *setting) if setting else probe(path)
            elapsed = time.perf_counter() - started
            speed.append({
                "file": label, "duration_s": r["duration_s"], "sampled_frames": r["sampled_frames"],
                "seconds": round(elapsed, 3), "codes": " ".join(w["code"] for w in r["warnings"]),
            })  # fmt: skip
            log(f"{label}: {speed[-1]}")
        overhead = run_overhead(Path(folder) / "clean.mkv", Path(folder))
    limits = {
        k: getattr(thresholds, k)
        for k in (
            "LOW_LINES", "BLOCK_MAX", "BLUR_MAX", "NOISE_MAX", "CONTRAST_MIN",
            "INTERLACED_SHARE", "HELD_SHARE", "VFR_SPREAD",
        )
    }  # fmt: skip
    from benchmarks.common import markdown_table

    save_result(
        "probe_thresholds",
        "Probe: measured values per degraded clip (thresholds in engine/analysis/report.py)",
        COLUMNS,
        rows,
        notes=[
            f"Thresholds: {limits}.",
            "Probe speed (sampling: seeks, short runs):",
            markdown_table(["file", "duration_s", "sampled_frames", "seconds", "codes"], speed),
            "What the fast probe adds to the cheapest run there is (no model: decode, resize x1, "
            "encode; 40 frames 640x360), best of three each:",
            markdown_table(["probe", "wall_s"], overhead),
        ],
        extra={"thresholds": limits, "speed": speed, "run_overhead": overhead},
    )


if __name__ == "__main__":
    main()
