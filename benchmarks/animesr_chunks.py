"""AnimeSR chunked against the single pass: chunks start at confirmed scene cuts only.

AnimeSR's state never forgets, so a chunk that restarts it away from a cut cannot give the
single pass's frames (a 4-frame warm-up reached 46-48 dB on a chunk's first frames, 46.6 dB
throughout on a still shot). A run with a recurrent stage therefore starts chunks only at
cuts that the pipeline's own decision confirms, where the single pass restarts the state
too. This runs 24 frames at 64x48 with a cut at frame 8 (a sample clip, then another),
``--chunk-seconds 0.16`` (4 frames), FFV1, and gives: where the chunks start, where a run
of a per-frame model would start them, the frames the cut search decoded for each plan,
and the PSNR of every output frame of the chunked run against the single pass's.

    python -m benchmarks.animesr_chunks      # writes results/animesr_chunks.{json,md}
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import save_result

CLIPS = ("bigbuckbunny.mp4", "bikes.mp4")
FRAMES, CUT, CHUNK_SECONDS = 24, 8, 0.16


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def _decoded(path: Path) -> tuple[list[np.ndarray], list]:
    import av

    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        base = container.streams.video[0].time_base
    return [f.to_ndarray(format="gbrp") / 255.0 for f in frames], [f.pts * base for f in frames]


def _starts(clip: Path, dedup: str, cuts_only: bool) -> tuple[str, int]:
    from vx_engine.distributed.boundaries import CutSearch
    from vx_engine.distributed.chunks import plan_chunks

    search = CutSearch(0.12, "bt709", False, dedup != "off")
    plan = plan_chunks(clip, CHUNK_SECONDS, context=(1, 1), cuts=search, cuts_only=cuts_only)
    text = ", ".join(f"{c.first} ({c.boundary})" for c in plan.chunks)
    return text, plan.scan_frames


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from media import make_clip

    from vx_engine.api import run
    from vx_engine.options import ChunkOptions, RunOptions

    rows = []
    with tempfile.TemporaryDirectory(prefix="vx-animesr-chunks-") as tmp:
        folder = Path(tmp)
        for name in CLIPS:
            clip = folder / f"{name}.mkv"
            make_clip(clip, frames=FRAMES, width=64, height=48, scene_cut_at=CUT, content=name)
            for dedup in ("off", "auto"):
                base = RunOptions(
                    input=clip, output=folder / "single.mkv", sr="animesr-v2", codec="ffv1",
                    probe=False, progress="none", backend="ort-cpu", overwrite=True, dedup=dedup,
                )  # fmt: skip
                run(base, log=lambda message: None)
                chunking = ChunkOptions(chunk_seconds=CHUNK_SECONDS)
                chunked = replace(base, output=folder / "chunked.mkv", chunks=chunking)
                summary = run(chunked, log=lambda message: None)
                single, chunks = _decoded(folder / "single.mkv"), _decoded(folder / "chunked.mkv")
                scores = [_psnr(a, b) for a, b in zip(single[0], chunks[0], strict=True)]
                ours, scanned = _starts(clip, dedup, cuts_only=True)
                per_frame, per_frame_scanned = _starts(clip, dedup, cuts_only=False)
                rows.append(
                    {
                        "clip": name,
                        "dedup": dedup,
                        "chunk starts (AnimeSR)": ours,
                        "cut search decoded": scanned,
                        "starts of a per-frame model": per_frame,
                        "its cut search decoded": per_frame_scanned,
                        "frames single / chunked": f"{len(single[0])} / {len(chunks[0])}",
                        "timestamps equal": single[1] == chunks[1],
                        "worst dB": min(scores),
                        "summary": summary.chunk_rule,
                    }
                )
    save_result(
        "animesr_chunks",
        "AnimeSR chunked vs single pass: chunk starts at confirmed scene cuts only",
        list(rows[0]),
        rows,
        notes=[
            f"{FRAMES} frames at 64x48 with a cut at frame {CUT}, --chunk-seconds "
            f"{CHUNK_SECONDS} (4 frames), FFV1, ort-cpu fp32; worst dB over every output frame",
            "the 16-frame shot after the cut stays one chunk: a shot is never split",
            "the cuts-only plan searches every frame from half the target length on up to "
            "the next cut; a per-frame model's plan decodes only its 75-125% windows",
            "before (4-frame warm-up at a chunk start away from a cut, no cut in the clip): "
            "46-48 dB on the chunk's first frames, 46.6 dB throughout on bikes' still shot",
        ],
    )


if __name__ == "__main__":
    main()
