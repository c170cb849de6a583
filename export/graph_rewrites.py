"""ONNX graph rewrites applied before a runtime loads an artifact (bit-exact).

``rewrite_prelu``: ORT runs PRelu only in plain NCHW, so each one costs two layout
reorders besides its own slow broadcast kernel; rewritten, the whole net stays in
ORT's blocked NCHWc layout (realesr-animevideov3-x4 1.5x faster, RIFE 1.15x, on 2
cores; see benchmarks/results). The int8 builder quantizes the rewritten graph.

``prelu_rewritten``: the rewrite as a cached file, named by its source's content, so a
runner's load neither imports ``onnx`` (0.85 s on a 2-core AMD EPYC) nor rewrites again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vx_engine.export.artifacts import write_bytes_atomic
from vx_engine.export.locks import exclusive
from vx_engine.export.weights import cache_dir, sha256_file

PRELU_REWRITE_VERSION = 1  # bump when rewrite_prelu's output changes, so cached copies rebuild


def _constant_slopes(graph) -> dict[str, np.ndarray]:
    """PRelu slope tensors known at load time: initializers, also behind Identity nodes."""
    from onnx import numpy_helper

    known = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # the TorchScript exporter puts Identity in front of shared weights
        if node.op_type == "Identity" and node.input[0] in known:
            known[node.output[0]] = known[node.input[0]]
    return known


def _depthwise_prelu(node, slope: np.ndarray, prefix: str) -> tuple[list, list]:
    """(initializers, nodes) for Relu(y) + DepthwiseConv1x1(-a)(Relu(DepthwiseConv1x1(-1)(y)))."""
    from onnx import helper, numpy_helper

    y = node.input[0]
    channels = slope.shape[0]
    weights = [
        numpy_helper.from_array(np.full((channels, 1, 1, 1), -1.0, slope.dtype), prefix + "_m1"),
        numpy_helper.from_array(-slope.reshape(channels, 1, 1, 1), prefix + "_ma"),
    ]
    depthwise = {"group": channels, "kernel_shape": [1, 1]}
    nodes = [
        helper.make_node("Relu", [y], [prefix + "_pos"], name=prefix + "_relu"),
        helper.make_node(
            "Conv", [y, prefix + "_m1"], [prefix + "_neg"], name=prefix + "_negate", **depthwise
        ),
        helper.make_node(
            "Relu", [prefix + "_neg"], [prefix + "_negpart"], name=prefix + "_relu_neg"
        ),
        helper.make_node(
            "Conv",
            [prefix + "_negpart", prefix + "_ma"],
            [prefix + "_scaled"],
            name=prefix + "_scale",
            **depthwise,
        ),
        helper.make_node(
            "Add", [prefix + "_scaled", prefix + "_pos"], list(node.output), name=prefix + "_add"
        ),
    ]
    return weights, nodes


def _min_mul_prelu(node, dtype: np.dtype, prefix: str) -> tuple[list, list]:
    """(initializers, nodes) for Relu(y) + a * Min(y, 0), any slope ``a``."""
    from onnx import helper, numpy_helper

    y, slope = node.input
    zero = prefix + "_zero"
    nodes = [
        helper.make_node("Relu", [y], [prefix + "_pos"], name=prefix + "_relu"),
        helper.make_node("Min", [y, zero], [prefix + "_neg"], name=prefix + "_min"),
        helper.make_node(
            "Mul", [prefix + "_neg", slope], [prefix + "_scaled"], name=prefix + "_mul"
        ),
        helper.make_node(
            "Add", [prefix + "_pos", prefix + "_scaled"], list(node.output), name=prefix + "_add"
        ),
    ]
    return [numpy_helper.from_array(np.zeros((1,), dtype), zero)], nodes


def _drop_unused_initializers(graph) -> None:
    """Drop the slopes now folded into depthwise weights (ORT warns about each one otherwise);
    not in graphs with subgraphs, whose inputs this does not follow."""
    import onnx

    if any(
        attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for node in graph.node
        for attr in node.attribute
    ):
        return
    used = {name for node in graph.node for name in node.input}
    used.update(output.name for output in graph.output)
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def rewrite_prelu(model_bytes: bytes) -> bytes:
    """Rewrite every PRelu(y, slope) so ORT keeps the whole net in its blocked (NCHWc) layout.

    ORT runs PRelu only in plain NCHW, so each one costs two layout reorders besides
    its own slow broadcast kernel (together ~45% of realesr-animevideov3's time on
    2 cores). With a constant per-channel slope ``a`` it becomes

        Relu(y) + DepthwiseConv1x1(-a)(Relu(DepthwiseConv1x1(-1)(y)))

    where ORT fuses the inner Relu and the outer Add into the depthwise convolutions,
    all in NCHWc. Other slopes get Relu(y) + a * Min(y, 0). Both are bit-exact: one
    of the two terms is an exact zero, and (-a)(-y) rounds exactly as a*y.
    """
    import onnx

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    if not any(node.op_type == "PRelu" for node in graph.node):
        return model_bytes
    slopes = _constant_slopes(graph)
    nodes = []
    for index, node in enumerate(graph.node):
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        prefix = f"vx_prelu{index}"
        constant = slopes.get(node.input[1])
        if constant is not None and constant.ndim == 3 and constant.shape[1:] == (1, 1):
            weights, rewritten = _depthwise_prelu(node, constant, prefix)
        else:
            # new constants take the slope's type: fp16 artifacts compute in fp16 in-graph
            dtype = constant.dtype if constant is not None else np.dtype(np.float32)
            weights, rewritten = _min_mul_prelu(node, dtype, prefix)
        graph.initializer.extend(weights)
        nodes += rewritten
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return model.SerializeToString()


def prelu_rewritten(onnx_path: Path) -> Path:
    """``rewrite_prelu`` of the model at ``onnx_path`` as a file in the cache (the source
    itself when it has no PRelu), built once under a lock and written atomically; named by
    the source's SHA-256, so a rebuilt artifact at the same path gets its own copy."""
    source = Path(onnx_path)
    digest = sha256_file(source)[:16]
    target = cache_dir() / "rewritten" / f"{source.stem}-prelu{PRELU_REWRITE_VERSION}-{digest}.onnx"
    unchanged = target.with_suffix(".unchanged")  # the marker of a model without PRelu
    if not (target.is_file() or unchanged.is_file()):
        with exclusive(target):
            if not (target.is_file() or unchanged.is_file()):
                original = source.read_bytes()
                rewritten = rewrite_prelu(original)
                if rewritten == original:
                    write_bytes_atomic(unchanged, b"")
                else:
                    write_bytes_atomic(target, rewritten)
    return target if target.is_file() else source
