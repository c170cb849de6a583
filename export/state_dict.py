"""Reading and checking user-supplied weight files, shared by the SR and VFI loaders."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vx_engine.errors import WeightsError


def tensors_of(loaded: dict) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors, with DataParallel's ``module.`` prefix stripped."""
    return {
        key.removeprefix("module."): value
        for key, value in loaded.items()
        if isinstance(value, torch.Tensor)
    }


def load_fitting(
    net: nn.Module, state: dict[str, torch.Tensor], path: Path, target: str, fix: str
) -> None:
    """``state`` into ``net`` as fp32, once ``check_fits`` found that it fits."""
    check_fits(state, net, path, target, fix)
    net.load_state_dict({key: value.float() for key, value in state.items()}, strict=True)


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
