"""ONNX graph rewrites applied before a runtime loads an artifact (bit-exact).

``rewrite_prelu``: ORT runs PRelu only in plain NCHW, so each one costs two layout
reorders besides its own slow broadcast kernel; rewritten, the whole net stays in
ORT's blocked NCHWc layout (realesr-animevideov3-x4 1.5x faster, RIFE 1.15x, on 2
cores; see benchmarks/results). The int8 builder quantizes the rewritten graph.
"""

from __future__ import annotations

import numpy as np


def _constant_slopes(graph) -> dict[str, np.ndarray]:
    """PRelu slope tensors known at load time: initializers, also behind Identity nodes."""
    from onnx import numpy_helper

    known = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # the TorchScript exporter puts Identity in front of shared weights
        if node.op_type == "Identity" and node.input[0] in known:
            known[node.output[0]] = known[node.input[0]]
    return known


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
    from onnx import helper, numpy_helper

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
        y, slope = node.input
        prefix = f"vx_prelu{index}"
        positive = helper.make_node("Relu", [y], [prefix + "_pos"], name=prefix + "_relu")
        constant = slopes.get(slope)
        # new constants take the slope's type: fp16 artifacts compute in fp16 in-graph
        dtype = constant.dtype if constant is not None else np.float32
        if constant is not None and constant.ndim == 3 and constant.shape[1:] == (1, 1):
            channels = constant.shape[0]
            graph.initializer.extend(
                [
                    numpy_helper.from_array(
                        np.full((channels, 1, 1, 1), -1.0, dtype), prefix + "_m1"
                    ),
                    numpy_helper.from_array(-constant.reshape(channels, 1, 1, 1), prefix + "_ma"),
                ]
            )
            nodes += [
                positive,
                helper.make_node(
                    "Conv",
                    [y, prefix + "_m1"],
                    [prefix + "_neg"],
                    name=prefix + "_negate",
                    group=channels,
                    kernel_shape=[1, 1],
                ),
                helper.make_node(
                    "Relu", [prefix + "_neg"], [prefix + "_negpart"], name=prefix + "_relu_neg"
                ),
                helper.make_node(
                    "Conv",
                    [prefix + "_negpart", prefix + "_ma"],
                    [prefix + "_scaled"],
                    name=prefix + "_scale",
                    group=channels,
                    kernel_shape=[1, 1],
                ),
                helper.make_node(
                    "Add",
                    [prefix + "_scaled", prefix + "_pos"],
                    list(node.output),
                    name=prefix + "_add",
                ),
            ]
        else:
            zero = prefix + "_zero"
            graph.initializer.append(numpy_helper.from_array(np.zeros((1,), dtype), zero))
            nodes += [
                positive,
                helper.make_node("Min", [y, zero], [prefix + "_neg"], name=prefix + "_min"),
                helper.make_node(
                    "Mul", [prefix + "_neg", slope], [prefix + "_scaled"], name=prefix + "_mul"
                ),
                helper.make_node(
                    "Add",
                    [prefix + "_pos", prefix + "_scaled"],
                    list(node.output),
                    name=prefix + "_add",
                ),
            ]
    del graph.node[:]
    graph.node.extend(nodes)
    # drop the slopes now folded into depthwise weights (ORT warns about each one otherwise)
    used = {name for node in graph.node for name in node.input}
    used.update(output.name for output in graph.output)
    if not any(
        attr.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for node in graph.node
        for attr in node.attribute
    ):
        kept = [init for init in graph.initializer if init.name in used]
        del graph.initializer[:]
        graph.initializer.extend(kept)
    return model.SerializeToString()
