"""The FFmpeg filter graph the stages run, and the check that builds it once per spec.

Frames go in and out as ``gbrpf32le`` (planar float RGB): no quantisation at the edges.
Where a filter has no float format FFmpeg's negotiation converts inside the graph
(nlmeans and minterpolate run on 8-bit, unsharp on 16-bit YUV, the others on 16-bit RGB),
exactly as the ``ffmpeg`` CLI does for ``format=gbrpf32le,FILTER``.

PyAV is imported inside the functions: ``import vx_engine`` stays light.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from vx_engine.pipeline.ffmpeg.specs import FilterSpec, graph_error

FLOAT_RGB = "gbrpf32le"


def ready_frames(sink: Any) -> Iterator[Any]:
    """Every frame a PyAV graph (or its buffersink) has ready now, until it needs more input
    or has ended."""
    import av

    while True:
        try:
            yield sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return


class FilterGraph:
    """A one-input FFmpeg filter graph with float RGB frames in and out (host NumPy).

    ``push`` gives every frame the graph has ready (none while a temporal filter such as
    atadenoise fills its window); ``drain`` ends the stream and gives the rest.
    """

    def __init__(
        self,
        chain: list[tuple[str, str]],
        width: int,
        height: int,
        time_base: Fraction = Fraction(1, 1000),
        spec: FilterSpec | None = None,
    ) -> None:
        import av

        self.width, self.height, self.time_base = width, height, time_base
        self._count = 0
        try:
            graph = av.filter.Graph()
            node = source = graph.add_buffer(
                width=width, height=height, format=FLOAT_RGB, time_base=time_base
            )
            for name, args in chain:
                step = graph.add(name, args)
                node.link_to(step)
                node = step
            last = graph.add("format", f"pix_fmts={FLOAT_RGB}")
            node.link_to(last)
            sink = graph.add("buffersink")
            last.link_to(sink)
            graph.configure()
        except (av.error.FFmpegError, ValueError) as error:
            spec = spec or FilterSpec("pre", chain[0][0])
            raise graph_error(spec, error) from None
        self._graph, self._source, self._sink = graph, source, sink

    def push(self, image: np.ndarray, pts: int | None = None) -> list[tuple[np.ndarray, int]]:
        """Feed a 3×H×W float32 RGB frame; (frame, pts in the output's time base) ready."""
        from av.video.frame import VideoFrame

        frame = VideoFrame.from_ndarray(
            np.ascontiguousarray(image.transpose(1, 2, 0), dtype=np.float32), format=FLOAT_RGB
        )
        frame.pts = self._count if pts is None else pts
        frame.time_base = self.time_base
        self._count += 1
        self._source.push(frame)
        return self._pull()

    def drain(self) -> list[tuple[np.ndarray, int]]:
        self._source.push(None)
        return self._pull()

    def _pull(self) -> list[tuple[np.ndarray, int]]:
        ready = []
        for frame in ready_frames(self._sink):
            rgb = np.clip(frame.to_ndarray().transpose(2, 0, 1), 0.0, 1.0)
            ready.append((np.ascontiguousarray(rgb, dtype=np.float32), frame.pts))
        return ready


def check_spec(
    spec: FilterSpec, width: int, height: int, out: tuple[int, int], fps: Fraction | None
) -> None:
    """Build the spec's graph once at the run's size: bad options fail here, in one line.

    blend takes no options and two inputs: nothing to check.
    """
    if spec.name == "blend":
        return
    FilterGraph(spec.chain(*out, fps), width, height, spec=spec)
