#!/usr/bin/env bash
# GPU acceptance run (`make gpu-check`): GPU tests, then benchmarks of the GPU backends.
#
#   WHEELS=dir   install missing GPU packages (tensorrt, onnxruntime-gpu, PyNvVideoCodec)
#                from a local wheel folder: pip install --no-index --find-links dir
#   BACKENDS=... backends to benchmark (default: every GPU backend available here)
#
# Without a CUDA GPU it says so, runs the (skipped) GPU tests and exits 0, so the
# target is safe to call from CPU-only CI.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=python3
HOST=$(hostname -s 2>/dev/null || hostname)
RESULTS=benchmarks/results
mkdir -p "$RESULTS"

has_cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)

if [ -n "${WHEELS:-}" ]; then
    if [ ! -d "$WHEELS" ]; then
        echo "gpu-check: WHEELS=$WHEELS is not a directory" >&2
        exit 2
    fi
    # module name -> pip requirement; only what is missing is installed
    for pair in tensorrt:tensorrt PyNvVideoCodec:PyNvVideoCodec; do
        module=${pair%%:*}; requirement=${pair#*:}
        if ! "$PY" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$module') is None)"; then
            echo "gpu-check: installing $requirement from $WHEELS" >&2
            "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$requirement" || \
                echo "gpu-check: $requirement not installable from $WHEELS (continuing)" >&2
        fi
    done
    if ! "$PY" -c "import onnxruntime,sys; sys.exit('CUDAExecutionProvider' not in onnxruntime.get_available_providers())" 2>/dev/null; then
        echo "gpu-check: replacing CPU onnxruntime with onnxruntime-gpu from $WHEELS" >&2
        if ls "$WHEELS"/onnxruntime_gpu-*.whl >/dev/null 2>&1; then
            "$PY" -m pip uninstall -q -y onnxruntime
            "$PY" -m pip install -q --no-index --find-links "$WHEELS" onnxruntime-gpu || \
                "$PY" -m pip install -q --no-index --find-links "$WHEELS" onnxruntime
        else
            echo "gpu-check: no onnxruntime_gpu wheel in $WHEELS (continuing)" >&2
        fi
    fi
fi

if [ "$has_cuda" != 1 ]; then
    echo "gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); GPU tests will be skipped" >&2
    "$PY" -m pytest -m gpu -q tests/test_gpu.py
    rc=$?
    # 0 = passed, 5 = nothing collected (every test skipped/deselected): both fine here
    [ $rc -eq 0 ] || [ $rc -eq 5 ] || exit $rc
    exit 0
fi

"$PY" - <<'PY'
import torch
from engine.backends.select import available_backends, probe_facts
from export.tensorrt_build import unavailable_reason
print(f"gpu-check: {torch.cuda.get_device_name(0)} sm_{''.join(map(str, torch.cuda.get_device_capability(0)))}, "
      f"torch {torch.__version__} (CUDA {torch.version.cuda})")
print(f"gpu-check: facts {probe_facts()}")
print(f"gpu-check: backends {available_backends()}; tensorrt: {unavailable_reason() or 'ok'}")
PY

status=0
"$PY" -m pytest -m gpu -v tests/test_gpu.py || status=1

if [ -z "${BACKENDS:-}" ]; then
    BACKENDS=$("$PY" -c 'from engine.backends.select import available_backends as a; print(" ".join(b for b in a() if b in ("tensorrt", "ort-cuda", "torch-cuda")))')
fi
for backend in $BACKENDS; do
    for precision in fp16 fp32; do
        out="$RESULTS/gpu-$HOST-$backend-$precision.json"
        echo "gpu-check: bench $backend $precision -> $out" >&2
        "$PY" -m engine.cli bench --backend "$backend" --precision "$precision" --json "$out" || status=1
    done
done
exit $status
