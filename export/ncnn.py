"""Reader for ncnn's ``.param`` (graph, text) and ``.bin`` (weights, binary) files.

Pure Python + NumPy, no ncnn needed. Only the weight-bearing layer types our
models use are decoded (Convolution, Deconvolution, InnerProduct, PReLU, MemoryData);
any other layer that ncnn would
read weights for is refused, because skipping it would silently shift every
later weight in the ``.bin``.

Format notes (ncnn ``src/paramdict.cpp``, ``src/modelbin.cpp``):
- ``.param``: magic ``7767517``, then ``layer_count blob_count``, then one line per
  layer: ``Type Name n_in n_out in_blobs... out_blobs... key=value ...``. Keys
  ``<= -23300`` hold arrays: ``-23300-k=n,v1,...,vn`` is array param ``k``. A value
  is a float when it contains ``.``, ``e`` or ``E``, else an int.
- ``.bin``: the layers' weights back to back in layer order. A weight read with
  "auto" type starts with a 4-byte flag word: ``0x01306B47`` = fp16 data (padded
  to 4 bytes), ``0`` = raw fp32; other flags (int8, quantised tables) we refuse.
  Biases and PReLU slopes are read "raw": fp32 with no flag word.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vx_engine.errors import WeightsError

PARAM_MAGIC = 7767517
FLAG_FP16 = 0x01306B47
FLAG_FP32 = 0
_ARRAY_KEY_BASE = -23300

ParamValue = int | float | list[int | float]

# Layer types that have no weights in the .bin; anything not here and not in
# _WEIGHT_READERS is an error, so an unsupported model fails loudly at load time.
WEIGHTLESS_TYPES = frozenset(
    {
        "Input",
        "Split",
        "Concat",
        "Eltwise",
        "BinaryOp",
        "Interp",
        "PixelShuffle",
        "ReLU",
        "Sigmoid",
        "Crop",
        "Reshape",
        "Permute",
        "Slice",
        "Noop",
        "Clip",
        "Pooling",
        "UnaryOp",
        "Swish",
    }
)


@dataclass
class NcnnLayer:
    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, ParamValue]
    # role ("weight", "bias", "slope") -> array, filled by read_weights
    weights: dict[str, np.ndarray] = field(default_factory=dict)

    def param(self, key: int, default: ParamValue | None = None) -> ParamValue | None:
        return self.params.get(key, default)


@dataclass
class NcnnModel:
    layer_count: int
    blob_count: int
    layers: list[NcnnLayer]

    def layers_of_type(self, layer_type: str) -> list[NcnnLayer]:
        return [layer for layer in self.layers if layer.type == layer_type]


def _parse_number(text: str, where: str) -> int | float:
    try:
        if any(ch in text for ch in ".eE"):
            return float(text)
        return int(text)
    except ValueError:
        raise WeightsError(f"{where}: '{text}' is not a number") from None


def _parse_param_item(item: str, where: str) -> tuple[int, ParamValue]:
    key_text, sep, value_text = item.partition("=")
    if not sep:
        raise WeightsError(f"{where}: expected key=value, got '{item}'")
    key = int(_parse_number(key_text, where))
    if key <= _ARRAY_KEY_BASE:
        values = [_parse_number(v, where) for v in value_text.split(",")]
        count = int(values[0])
        if count != len(values) - 1:
            raise WeightsError(
                f"{where}: array param {key} says {count} values, has {len(values) - 1}"
            )
        return _ARRAY_KEY_BASE - key, values[1:]
    return key, _parse_number(value_text, where)


def parse_param_text(text: str, source: str = "<param>") -> NcnnModel:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].strip() != str(PARAM_MAGIC):
        raise WeightsError(f"{source} is not an ncnn .param file (magic {PARAM_MAGIC} missing)")
    try:
        layer_count, blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise WeightsError(f"{source}: line 2 must be 'layer_count blob_count'") from None
    layers: list[NcnnLayer] = []
    for line_no, line in enumerate(lines[2:], start=3):
        where = f"{source}:{line_no}"
        tokens = line.split()
        if len(tokens) < 4:
            raise WeightsError(f"{where}: layer line too short: '{line}'")
        layer_type, name = tokens[0], tokens[1]
        n_in, n_out = int(tokens[2]), int(tokens[3])
        blobs_end = 4 + n_in + n_out
        if len(tokens) < blobs_end:
            raise WeightsError(f"{where}: layer {name} lists fewer than {n_in}+{n_out} blobs")
        params = dict(_parse_param_item(item, where) for item in tokens[blobs_end:])
        layers.append(
            NcnnLayer(layer_type, name, tokens[4 : 4 + n_in], tokens[4 + n_in : blobs_end], params)
        )
    if len(layers) != layer_count:
        raise WeightsError(f"{source}: header says {layer_count} layers, file has {len(layers)}")
    return NcnnModel(layer_count, blob_count, layers)


class _BinCursor:
    """Sequential reader over the .bin bytes, mirroring ncnn's ModelBinFromDataReader."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.offset = 0
        self.source = source

    def _take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise WeightsError(
                f"{self.source} ends at byte {len(self.data)} but {what} needs "
                f"{size} bytes from byte {self.offset}; .param and .bin do not match"
            )
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def raw_fp32(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self._take(4 * count, what), dtype="<f4").astype(np.float32)

    def flagged(self, count: int, what: str) -> np.ndarray:
        (flag,) = struct.unpack("<I", self._take(4, what + " flag"))
        if flag == FLAG_FP16:
            padded = (2 * count + 3) // 4 * 4  # fp16 data is padded to a 4-byte boundary
            chunk = self._take(padded, what)
            return np.frombuffer(chunk[: 2 * count], dtype="<f2").astype(np.float32)
        if flag == FLAG_FP32:
            return self.raw_fp32(count, what)
        raise WeightsError(
            f"{what}: weight storage flag 0x{flag:08X} is not supported (only fp16 "
            f"0x{FLAG_FP16:08X} and fp32 0); re-export the model without int8/quantisation"
        )


def _read_weight_and_bias(
    layer: NcnnLayer, cursor: _BinCursor, size_key: int, bias_key: int
) -> None:
    """A weight blob of param ``size_key`` values, and ``0=num_output`` biases when
    ``bias_key`` is set; ``8`` marks int8 quantisation in every such layer."""
    what = f"{layer.type} {layer.name}"
    if layer.param(8, 0):
        raise WeightsError(f"{what} is int8-quantised (8={layer.param(8)}); not supported")
    layer.weights["weight"] = cursor.flagged(int(layer.param(size_key, 0)), f"{what} weight")
    if layer.param(bias_key, 0):
        layer.weights["bias"] = cursor.raw_fp32(int(layer.param(0, 0)), f"{what} bias")


def _read_convolution(layer: NcnnLayer, cursor: _BinCursor) -> None:
    # 0=num_output 5=bias_term 6=weight_data_size 8=int8
    _read_weight_and_bias(layer, cursor, size_key=6, bias_key=5)


def _read_inner_product(layer: NcnnLayer, cursor: _BinCursor) -> None:
    # Real-CUGAN's SE blocks: 0=num_output 1=bias_term 2=weight_data_size 8=int8
    _read_weight_and_bias(layer, cursor, size_key=2, bias_key=1)


def _read_prelu(layer: NcnnLayer, cursor: _BinCursor) -> None:
    layer.weights["slope"] = cursor.raw_fp32(int(layer.param(0, 0)), f"PReLU {layer.name} slope")


def _read_memory_data(layer: NcnnLayer, cursor: _BinCursor) -> None:
    """A constant blob (SPAN's RGB mean): 0=w 1=h 11=d 2=c, 21=load_type (1 raw fp32, 0 flagged).

    Kept in ncnn's outermost-first order, (c, d, h, w) without the absent dimensions.
    """
    sizes = {key: int(layer.param(key, 0)) for key in (2, 11, 1, 0)}  # c, d, h, w
    shape = tuple(size for size in sizes.values() if size) or (1,)
    count = int(np.prod(shape))
    what = f"MemoryData {layer.name}"
    load_type = int(layer.param(21, 1))
    if load_type == 1:
        layer.weights["data"] = cursor.raw_fp32(count, what).reshape(shape)
    elif load_type == 0:
        layer.weights["data"] = cursor.flagged(count, what).reshape(shape)
    else:
        raise WeightsError(f"{what}: load type {load_type} is not supported (only 0 and 1)")


# Deconvolution stores its weights like Convolution (same keys 0/5/6/8)
_WEIGHT_READERS = {
    "Convolution": _read_convolution,
    "Deconvolution": _read_convolution,
    "InnerProduct": _read_inner_product,
    "PReLU": _read_prelu,
    "MemoryData": _read_memory_data,
}


def read_weights(model: NcnnModel, data: bytes, source: str = "<bin>") -> None:
    """Fill every layer's ``weights`` from ``data``; the whole buffer must be consumed."""
    cursor = _BinCursor(data, source)
    for layer in model.layers:
        reader = _WEIGHT_READERS.get(layer.type)
        if reader is not None:
            reader(layer, cursor)
        elif layer.type not in WEIGHTLESS_TYPES:
            raise WeightsError(
                f"ncnn layer type {layer.type} ({layer.name}) is not supported; "
                f"supported: {', '.join(sorted(WEIGHTLESS_TYPES | set(_WEIGHT_READERS)))}"
            )
    if cursor.offset != len(data):
        raise WeightsError(
            f"{source}: {len(data) - cursor.offset} bytes left after the last layer; "
            ".param and .bin do not match"
        )


def load_ncnn(param_path: Path, bin_path: Path) -> NcnnModel:
    """Parse ``param_path`` and read all weights from ``bin_path``."""
    try:
        text = Path(param_path).read_text(encoding="utf-8")
        data = Path(bin_path).read_bytes()
    except OSError as error:
        raise WeightsError(f"cannot read ncnn model files: {error}") from None
    model = parse_param_text(text, str(param_path))
    read_weights(model, data, str(bin_path))
    return model
