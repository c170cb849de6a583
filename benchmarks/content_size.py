"""How the probe's content verdict holds up as frames get small: the labelled items of
``benchmarks/content_thresholds.py`` area-downscaled to the heights the quality benchmark's
inputs have (``benchmarks/quality_inputs.py``: 384x216 truth, so 192x108 at x2 and 96x54
at x4) and a few between, each judged with the fitted constants of
``vx_engine.analysis.content`` (each item's held-frame pattern from ``results/content.json``).

Frames are read from each item's clip (the same crf-18 clips ``content_thresholds`` makes),
at most ``FRAMES`` per item, area-scaled to the height (width kept in proportion, even),
measured with ``frame_features`` and judged on the median, as the probe does. An item is
only measured at heights below its own. The result sets ``content.MIN_LINES``: the
smallest height from which up no class names its own items right less often than at their
full size by more than ``WORSE_BY`` (the same items compared). cg is named right at no
size (results/content.md: no held-out cg source is called cg), so it constrains nothing.

    nice .venv/bin/python -m benchmarks.content_size   # -> results/content_size.{json,md}
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import av

from benchmarks.common import RESULTS_DIR, log, markdown_table, save_result
from benchmarks.content_thresholds import items
from vx_engine.analysis.content import KINDS, MIN_LINES, clip_features, frame_features, judge

HEIGHTS = (54, 68, 90, 108, 144, 180, 240, 360)  # 54 and 108: the quality inputs' heights
FRAMES = 8
WORSE_BY = 0.10  # a class's wrong share may grow this much over full size and still count


def item_frames(clip: Path) -> list:
    with av.open(str(clip)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame)
            if len(frames) == FRAMES:
                break
    return frames


def judged_at(frames: list, height: int | None, held: str) -> str:
    features = []
    for frame in frames:
        h = height or frame.height
        w = max(2, round(frame.width * h / frame.height / 2) * 2)
        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA")
        features.append(frame_features(rgb.to_ndarray()))
    return judge(clip_features(features), held).kind or "unsure"


def measure() -> list[dict]:
    held = {
        (r["source"], r["item"]): r["held"]
        for r in json.loads((RESULTS_DIR / "content.json").read_text())["rows"]
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source, item, label, clip in items(Path(tmp)):
            if label not in KINDS:
                continue
            frames = item_frames(clip)
            pattern = held.get((source, item), "none")
            row = {"source": source, "item": item, "label": label, "height": frames[0].height}
            row["full"] = judged_at(frames, None, pattern)
            for height in HEIGHTS:
                if height < frames[0].height:
                    row[str(height)] = judged_at(frames, height, pattern)
            rows.append(row)
            log(f"{source}/{item} {label}: {row}")
    return rows


def shares(rows: list[dict], column: str) -> dict[str, dict[str, float]]:
    """Per class, over the items measured at ``column`` (those taller than it): the share
    named right at full size and at ``column``, and the share named another kind there."""
    table = {}
    for kind in KINDS:
        mine = [row for row in rows if row["label"] == kind and column in row]
        if mine:
            table[kind] = {
                "full_right": round(sum(r["full"] == kind for r in mine) / len(mine), 3),
                "right": round(sum(r[column] == kind for r in mine) / len(mine), 3),
                "wrong": round(sum(r[column] not in (kind, "unsure") for r in mine) / len(mine), 3),
                "items": len(mine),
            }  # fmt: skip
    return table


def minimum_lines(table: dict[str, dict]) -> int:
    """The smallest height from which up no class names its own items right less often
    than at full size by more than ``WORSE_BY`` (the same items compared)."""
    trusted = None
    for height in sorted(HEIGHTS, reverse=True):
        column = table[str(height)]
        if any(c["full_right"] - c["right"] > WORSE_BY for c in column.values()):
            break
        trusted = height
    return trusted or max(HEIGHTS)


def main() -> None:
    rows = measure()
    table = {column: shares(rows, column) for column in map(str, HEIGHTS)}
    found = minimum_lines(table)
    summary = [
        {"lines": column, **{f"{k}: right at full -> here, wrong here (items)":
                             "{full_right:.2f} -> {right:.2f}, {wrong:.2f} ({items})".format(**c)
                             for k, c in table[column].items()}}
        for column in table
    ]  # fmt: skip
    notes = [
        f"MIN_LINES found: {found} (content.py holds {MIN_LINES}); below it the probe says "
        f"unsure. Rule: at every height from it up, each class's share named right is at "
        f"most {WORSE_BY:.2f} below the same items' share at full size.",
        f"Each item: at most {FRAMES} frames of its crf-18 clip, area-scaled; held pattern "
        "from results/content.json.",
    ]
    columns = list(summary[0])
    save_result(
        "content_size", "Content verdict against frame height (lines)", columns, summary,
        notes=notes, extra={"items": rows, "shares": table, "min_lines": found},
    )  # fmt: skip
    print(markdown_table(columns, summary))


if __name__ == "__main__":
    main()
