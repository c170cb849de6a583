"""Can a classifier learned from our own labelled frames tell 3D-rendered CG from live action,
where the hand-made statistics of ``content_cg_features`` and ``content_cg_natural`` could not?

A small convolutional network (four 3x3 convolutions, about 33k weights, no pretrained
weights) sees random RGB patches of the items of ``benchmarks/content_items.py``, decoded as
those two searches decode them (``decoded_run``: H.264 crf 18, area-scaled as the probe
scales). It is trained with each source held out in turn, every class and every source of a
class drawn equally often (so Demon Slayer's or DAVIS's many items do not decide alone), and
judges each item of the held-out source by its mean probability over 128 patches. Two sizes:
48 px patches (600 steps) and 64 px (1200 steps), batches of 64.

A source held out is the honest test: CG the probe meets is from a film or a game it has
never seen. Writes ``results/content_cg_learned.{json,md}``.

    nice .venv/bin/python -m benchmarks.content_cg_learned
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import log, save_result
from benchmarks.content_cg_features import decoded_run
from benchmarks.content_items import items

CONFIGS = ((48, 600), (64, 1200))  # (patch side, training steps)
BATCH = 64
JUDGED_PATCHES = 128
CLASSES = ("cg", "live-action")


def labelled_frames(folder: Path) -> dict[tuple[str, str, str], list[np.ndarray]]:
    """(source, item, label) -> the item's decoded frames in [0, 1], cg and live action only."""
    found = {}
    for source, item, label, clip in items(folder):
        if label in CLASSES:
            found[(source, item, label)] = [f.astype(np.float32) / 255 for f in decoded_run(clip)]
    return found


def patch(frames: list[np.ndarray], side: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``side``-pixel square of a random frame, mirrored half the time, CHW."""
    frame = frames[rng.integers(len(frames))]
    height, width = frame.shape[:2]
    y, x = rng.integers(height - side), rng.integers(width - side)
    square = frame[y : y + side, x : x + side]
    if rng.random() < 0.5:
        square = square[:, ::-1]
    return np.ascontiguousarray(square.transpose(2, 0, 1))


def network():
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 3), nn.ReLU(), nn.Conv2d(16, 32, 3, 2), nn.ReLU(),
        nn.Conv2d(32, 32, 3, 2), nn.ReLU(), nn.Conv2d(32, 64, 3, 2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1),
    )  # fmt: skip


def trained(frames: dict, held_out: str, side: int, steps: int):
    """The network trained on every source but ``held_out``, class and source drawn equally."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    by_class: dict[str, dict[str, list]] = {label: {} for label in CLASSES}
    for key in frames:
        if key[0] != held_out:
            by_class[key[2]].setdefault(key[0], []).append(key)
    model = network()
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(steps):
        patches, targets = [], []
        for label, sources in by_class.items():
            names = sorted(sources)
            for _ in range(BATCH // 2):
                keys = sources[names[rng.integers(len(names))]]
                patches.append(patch(frames[keys[rng.integers(len(keys))]], side, rng))
                targets.append(float(label == "cg"))
        logits = model(torch.tensor(np.stack(patches))).squeeze(1)
        loss = F.binary_cross_entropy_with_logits(logits, torch.tensor(targets))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


def cg_probability(model, frames: list[np.ndarray], side: int) -> float:
    import torch

    rng = np.random.default_rng(1)
    patches = torch.tensor(np.stack([patch(frames, side, rng) for _ in range(JUDGED_PATCHES)]))
    with torch.no_grad():
        return float(torch.sigmoid(model(patches).squeeze(1)).mean())


def held_out_rows(frames: dict, side: int, steps: int) -> list[dict]:
    """One row per source: how many of its items the network trained without it gets right."""
    rows = []
    for source in sorted({key[0] for key in frames}):
        model = trained(frames, source, side, steps)
        keys = [key for key in frames if key[0] == source]
        probabilities = {key[1]: cg_probability(model, frames[key], side) for key in keys}
        label = keys[0][2]
        right = sum((p > 0.5) == (label == "cg") for p in probabilities.values())
        rows.append({
            "patch": side, "steps": steps, "held out": source, "label": label,
            "right": f"{right}/{len(keys)}",
            "mean p(cg)": round(float(np.mean(list(probabilities.values()))), 3),
            "items p(cg)": {item: round(p, 3) for item, p in probabilities.items()},
        })  # fmt: skip
        log(f"{side} px, {source} held out: {rows[-1]['right']} right, {rows[-1]['items p(cg)']}")
    return rows


def totals(rows: list[dict]) -> str:
    counts = {label: [0, 0] for label in CLASSES}
    for row in rows:
        right, of = (int(n) for n in row["right"].split("/"))
        counts[row["label"]][0] += right
        counts[row["label"]][1] += of
    (cg_right, cg_of), (live_right, live_of) = counts["cg"], counts["live-action"]
    balanced = (cg_right / cg_of + live_right / live_of) / 2
    return (
        f"{rows[0]['patch']} px patches, {rows[0]['steps']} steps: cg {cg_right}/{cg_of}, live "
        f"action {live_right}/{live_of} right with their source held out (balanced {balanced:.2f})"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        frames = labelled_frames(Path(tmp))
    runs = [held_out_rows(frames, side, steps) for side, steps in CONFIGS]
    rows = [row for run in runs for row in run]
    save_result(
        "content_cg_learned",
        "A small network learned from our labelled frames: CG against live action, held out by source",
        ["patch", "steps", "held out", "label", "right", "mean p(cg)"],
        rows,
        notes=[
            *(totals(run) for run in runs),
            "A held-out item counts right when its mean p(cg) over 128 random patches is on "
            "its label's side of 0.5. Balanced chance is 0.5: a network that learned what "
            "rendering looks like would name most cg items of a source it never saw without "
            "calling live action cg. What it learns instead is each training source's look.",
        ],
        extra={"configs": [list(c) for c in CONFIGS]},
    )


if __name__ == "__main__":
    main()
