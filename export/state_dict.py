"""Checks shared by the loaders of user-supplied weight files."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from vx_engine.errors import WeightsError


def check_fits(state: dict, net: nn.Module, path: Path, target: str, fix: str) -> None:
    """One-line WeightsError (counts plus one example each) unless ``state`` fits ``net``."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        (key, tuple(state[key].shape), tuple(expected[key].shape))
        for key in expected
        if key in state and state[key].shape != expected[key].shape
    ]
    if not (missing or unexpected or mismatched):
        return
    problems = []
    if missing:
        problems.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
    if mismatched:
        key, got, want = mismatched[0]
        problems.append(
            f"{len(mismatched)} shape mismatches (e.g. {key}: file {got}, model {want})"
        )
    raise WeightsError(f"{path} does not fit {target}: {'; '.join(problems)}; {fix}")
