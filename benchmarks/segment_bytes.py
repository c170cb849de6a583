"""Segment bytes per second of output at 1080p and 4K: what a cluster's driver takes in.

``scale_out.py`` measures segment bytes at 640x384; the cluster estimate
(results/scale_out_limits.md) needs them at the sizes users upscale to. Real x2 SR
output (realesr-animevideov3-x2, engine defaults) of bigbuckbunny frames 40+ (Lanczos to
960x540 and 1920x1080 first, libx264 crf 16), written as the chunk segments are:

* FFV1 (lossless, what the equivalence tests compare): the engine's own run;
* libx264 at the engine's defaults (what ``--codec auto`` picks on a CPU): the FFV1
  frames re-encoded by the engine's writer, so SR runs once per size.

Bytes are the video packets of each file (container overhead left out), per second at
24 fps, with one keyframe per segment as a 1-second chunk has.

The driver's assembly speed with 4K packets (``scale_out.py`` measures it with 2.5 kB
ones): ASSEMBLY_FRAMES of bigbuckbunny at 3840x2160 (a keyframe every second) run
chunked (``--sr none``, 1-second chunks, work kept) in each codec, and ``assemble``
timed over the segments, best of ASSEMBLY_ROUNDS.

    flock -x /tmp/vx-cpu.lock python -m benchmarks.segment_bytes
"""

from __future__ import annotations

import argparse
import tempfile
from fractions import Fraction
from pathlib import Path

from benchmarks.common import save_result
from benchmarks.memory_runs import make_clip

MODEL = "realesr-animevideov3-x2"
FRAMES, FPS = 24, 24  # one second: a 1-second chunk's segment
SOURCES = [(960, 540), (1920, 1080)]  # -> 1920x1080 and 3840x2160
ASSEMBLY_ROUNDS = 5
ASSEMBLY_FRAMES = 120  # bigbuckbunny.mp4 has 132


def video_bytes(path: Path) -> tuple[int, int]:
    """(bytes, packets) of the video stream's packets."""
    import av

    total = packets = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            if packet.size:
                total += packet.size
                packets += 1
    return total, packets


def reencode(source: Path, target: Path, codec: str) -> None:
    from vx_engine.video import VideoReader, VideoWriter

    with VideoReader(source) as reader:
        writer = VideoWriter(target, reader.info.width, reader.info.height, Fraction(FPS),
                             codec=codec, colour=reader.info)  # fmt: skip
        with writer:
            for frame in reader:
                writer.write(frame.rgb, Fraction(frame.index, FPS))


def assembly_speed(source: Path, folder: Path, codec: str) -> tuple[int, int, float, float]:
    """(bytes, packets, best wall s with the source opened, without) of assembling a kept
    chunked run's segments."""
    from vx_engine.api import run
    from vx_engine.distributed.assemble import assemble
    from vx_engine.options import ChunkOptions, RunOptions

    work = folder / f"work-{codec}"
    chunks = ChunkOptions(chunk_seconds=1.0, work_dir=work, keep_work=True)
    run(
        RunOptions(input=source, output=folder / f"chunked-{codec}.mkv", sr=None, vfi=None,
                   codec=codec, probe=False, progress="none", chunks=chunks),
        log=lambda message: None,
    )  # fmt: skip
    segments = sorted(work.glob("segment-*.nut"))
    walls: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(ASSEMBLY_ROUNDS):
        for with_source in (True, False):  # the source opened for its audio, or not at all
            joined = folder / f"joined-{codec}-{round_}-{with_source}.mkv"
            audio = source if with_source else None
            walls[with_source].append(assemble(segments, joined, audio, 0.0, None).wall_s)
    size, packets = video_bytes(folder / f"joined-{codec}-0-True.mkv")
    return size, packets, min(walls[True]), min(walls[False])


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    from vx_engine.api import run
    from vx_engine.options import RunOptions

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for width, height in SOURCES:
            clip = make_clip(width, height, FRAMES)
            lossless = folder / f"sr-{width}.mkv"
            summary = run(
                RunOptions(input=clip, output=lossless, sr=MODEL, codec="ffv1", probe=False,
                           progress="none", audio=False),
                log=lambda message: None,
            )  # fmt: skip
            encoded = folder / f"sr-{width}.mp4"
            reencode(lossless, encoded, "libx264")
            for codec, path in (("ffv1", lossless), ("libx264 (defaults)", encoded)):
                size, packets = video_bytes(path)
                assert packets == FRAMES, (path, packets)
                pixels = summary.width * summary.height
                rows.append(
                    {
                        "output": f"{summary.width}x{summary.height}",
                        "codec": codec,
                        "bytes_per_frame": size // FRAMES,
                        "bytes_per_pixel": round(size / FRAMES / pixels, 4),
                        "MB_per_s_at_24fps": round(size / FRAMES * FPS / 1e6, 3),
                    }
                )
        from tests.media import h264_excerpt as clip_with_keyframes
        from vx_engine.samples import sample_video

        frames_4k = clip_with_keyframes(sample_video("bigbuckbunny.mp4"), folder / "4k.mp4",
                                        ASSEMBLY_FRAMES, 3840, 2160, fps=FPS, keyframe_every=FPS)  # fmt: skip
        assembly = []
        for codec in ("ffv1", "libx264"):
            size, packets, wall, bare = assembly_speed(frames_4k, folder, codec)
            assembly.append(
                {"codec": codec, "bytes": size, "packets": packets, "wall_s": round(wall, 4),
                 "wall_without_source_s": round(bare, 4),
                 "MB_per_s_without_source": round(size / bare / 1e6, 1),
                 "packets_per_s_without_source": round(packets / bare)}
            )  # fmt: skip
    assembly_notes = [
        f"assembly, 4K {row['codec']}: {row['bytes']} B in {row['packets']} packets, "
        f"{ASSEMBLY_FRAMES // FPS} segments: {row['wall_s']} s with the source opened for "
        f"its audio and subtitles, {row['wall_without_source_s']} s without: "
        f"{row['MB_per_s_without_source']} MB/s, {row['packets_per_s_without_source']} packets/s"
        for row in assembly
    ]
    save_result(
        "segment_bytes",
        "Segment bytes per second of output (x2 SR output, 1-second segments)",
        ["output", "codec", "bytes_per_frame", "bytes_per_pixel", "MB_per_s_at_24fps"],
        rows,
        notes=[
            f"clips: bigbuckbunny frames 40-{40 + FRAMES - 1} Lanczos-scaled to "
            + ", ".join(f"{w}x{h}" for w, h in SOURCES)
            + f" (libx264 crf 16), x2 {MODEL} at the engine's defaults",
            "FFV1: the engine's run; libx264: those frames re-encoded by the engine's writer "
            "at its defaults (--codec auto on a CPU); video packet bytes only",
            *assembly_notes,
        ],
        extra={"assembly": assembly},
    )


if __name__ == "__main__":
    main()
