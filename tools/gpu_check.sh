#!/usr/bin/env bash
# GPU acceptance run (`make gpu-check`): GPU tests, then the GPU backends side by side
# with the CPU pipeline. Works on a machine with no network: nothing is downloaded.
#
#   WHEELS=dir    install the Python packages this interpreter lacks (av, PyNvVideoCodec,
#                 tensorrt, onnxruntime-gpu, ...) from folders of wheels (dir or dir:dir),
#                 with no index,
#                 into .gpu-site/ (put first on PYTHONPATH; kept between runs)
#   VX_CACHE=dir  weights and sample clips, for a machine that cannot download them
#                 (tools/device_kit.sh prepares one)
#   PARTS="..."   any of: unit (GPU tests needing no model weights: NVDEC, torch-cuda,
#                 TensorRT, kernels vs NumPy), pipeline (device pipeline vs CPU pipeline,
#                 kernels vs swscale; needs weights), bench (side-by-side fps); default all
#   VX_RESULTS_DIR=dir   where results go (default benchmarks/results)
#
# The interpreter is .venv's when `make setup` made one, else python3 (a GPU image's
# own, with its CUDA build of torch). Without a CUDA GPU it says so, runs the (skipped)
# GPU tests and exits 0, so the target is safe to call from CPU-only CI.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
[ -x "$PY" ] || PY=python3
PARTS=${PARTS:-unit pipeline bench}
RESULTS=${VX_RESULTS_DIR:-benchmarks/results}
export VX_RESULTS_DIR=$RESULTS
mkdir -p "$RESULTS"
SITE=$PWD/.gpu-site
[ -d "$SITE" ] && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

has_module() { "$PY" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('$1') is None)"; }

if [ -n "${WHEELS:-}" ]; then
    IFS=: read -r -a wheel_dirs <<<"$WHEELS"  # one folder, or several joined by ':'
    find_links=()
    for dir in "${wheel_dirs[@]}"; do
        if [ ! -d "$dir" ]; then
            echo "gpu-check: WHEELS entry $dir is not a directory" >&2
            exit 2
        fi
        find_links+=(--find-links "$dir")
    done
    has_wheel() {  # a wheel of distribution $1 in any WHEELS folder
        local pattern dir
        pattern=$(echo "$1" | tr '-' '_')
        for dir in "${wheel_dirs[@]}"; do
            ls "$dir" | grep -qi "^${pattern}-" && return 0
        done
        return 1
    }
    # module -> distribution; only what this interpreter lacks, only what the folders have
    missing=()
    for pair in av:av PyNvVideoCodec:PyNvVideoCodec tensorrt:tensorrt click:click \
                onnx:onnx onnxruntime:onnxruntime PIL:pillow pytest:pytest; do
        module=${pair%%:*}; dist=${pair#*:}
        has_module "$module" || missing+=("$dist")
    done
    if has_wheel onnxruntime_gpu && ! "$PY" -c \
        "import onnxruntime,sys; sys.exit('CUDAExecutionProvider' not in onnxruntime.get_available_providers())" 2>/dev/null; then
        missing+=(onnxruntime-gpu)  # in .gpu-site it shadows the CPU build
    fi
    for dist in "${missing[@]}"; do
        if has_wheel "$dist"; then
            echo "gpu-check: installing $dist from $WHEELS into .gpu-site" >&2
            "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check \
                --target "$SITE" --upgrade "${find_links[@]}" "$dist" ||
                echo "gpu-check: $dist did not install from $WHEELS (continuing)" >&2
        else
            echo "gpu-check: $dist is missing and $WHEELS has no wheel for it" >&2
        fi
    done
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi

# vx-engine itself: .venv has it (editable); a GPU image's python3 gets it in .gpu-site,
# built from this checkout with no index, so the run imports this tree's code
if ! has_module vx_engine || [ "$PY" = python3 ]; then
    mkdir -p "$SITE"
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-compile \
        --disable-pip-version-check --target "$SITE" --upgrade . ||
        { echo "gpu-check: could not install vx-engine into .gpu-site (needs setuptools)" >&2; exit 2; }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi

for module in torch av click numpy onnx onnxruntime pytest; do
    if ! has_module "$module"; then
        echo "gpu-check: $PY cannot import $module; run make setup, or pass WHEELS=dir with its wheel" >&2
        exit 2
    fi
done

has_cuda=$("$PY" -c 'from vx_engine.gpu.probe import cuda_available; print(int(cuda_available()))' 2>/dev/null || echo 0)
if [ "$has_cuda" != 1 ]; then
    echo "gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); GPU tests will be skipped" >&2
    "$PY" -m pytest -m gpu -q tests/test_gpu.py
    rc=$?
    # 0 = passed, 5 = nothing collected (every test skipped/deselected): both fine here
    [ $rc -eq 0 ] || [ $rc -eq 5 ] || exit $rc
    exit 0
fi
unset TRITON_INTERPRET  # compiled kernels on the GPU, not the interpreter

"$PY" - <<'PY'
import torch
from vx_engine.backends.select import available_backends, probe_facts
from vx_engine.gpu.probe import tensorrt_unavailable_reason
print(f"gpu-check: {torch.cuda.get_device_name(0)} sm_{''.join(map(str, torch.cuda.get_device_capability(0)))}, "
      f"torch {torch.__version__} (CUDA {torch.version.cuda})")
print(f"gpu-check: facts {probe_facts()}")
print(f"gpu-check: backends {available_backends()}; tensorrt: {tensorrt_unavailable_reason() or 'ok'}")
PY

status=0
log="$RESULTS/gpu-check-$(hostname -s 2>/dev/null || hostname).log"
: >"$log"
for part in $PARTS; do
    case $part in
        unit) files="tests/test_gpu.py tests/test_kernels.py tests/test_nvdec_logic.py" ;;
        pipeline) files="tests/test_one_pipeline.py tests/test_kernels_ffmpeg.py" ;;
        bench) files="" ;;
        *) echo "gpu-check: unknown part '$part' (unit, pipeline, bench)" >&2; exit 2 ;;
    esac
    if [ -n "$files" ]; then
        echo "gpu-check: pytest ($part): $files" >&2
        # shellcheck disable=SC2086
        "$PY" -m pytest -v -rs -p no:cacheprovider $files 2>&1 | tee -a "$log" || status=1
    else
        echo "gpu-check: side by side: ${CONTENDERS:-default contenders}" >&2
        "$PY" -m benchmarks.gpu_side_by_side ${CONTENDERS:+--contenders "$CONTENDERS"} 2>&1 |
            tee -a "$log" || status=1
        # per-stage latency of each GPU backend (vx-engine bench)
        backends=${BACKENDS:-$("$PY" -c 'from vx_engine.backends.select import available_backends as a; print(" ".join(b for b in a() if b in ("tensorrt", "ort-cuda", "torch-cuda")))')}
        for backend in $backends; do
            for precision in fp16 fp32; do
                out="$RESULTS/gpu-bench-$backend-$precision.json"
                echo "gpu-check: bench $backend $precision -> $out" >&2
                "$PY" -m vx_engine.cli bench --backend "$backend" --precision "$precision" \
                    --json "$out" 2>&1 | tee -a "$log" || status=1
            done
        done
    fi
done
echo "gpu-check: log in $log; results in $RESULTS" >&2
exit $status
