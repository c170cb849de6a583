"""The chunk plan's cut search keeps to its serial budget on a cluster.

On Ray the driver's cut search runs before any chunk, so it is serial work: it may cost at
most 5% of the run's parallel work. The clip is tests/test_chunk_boundaries.py's cut clip
(64x48 libx264, 50 frames at 25 fps, other content from frame 30, where x264 puts a
keyframe), planned in 0.4 s chunks: 5 chunks, 4 windows, the cut inside the third window.
A budget no scan can meet (a billion frames per second per worker, or a million workers)
stops the search after its first window: no boundary is a cut, and the plan's rule (the
manifest's ``chunk_rule``, the summary's chunks line) says why. An ample budget, a run in
this process, and a recurrent model's cuts-only plan keep the cut.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from media import make_clip

from vx_engine.distributed.boundaries import CutSearch, SearchBudget
from vx_engine.distributed.chunks import CUTS_ONLY_RULE, plan_chunks, plan_run_chunks
from vx_engine.options import ChunkOptions, RunOptions

FPS, FRAMES, CUT, CHUNK_S = 25, 50, 30, 0.4
SEARCH = CutSearch(0.12, "bt601", False, True)


@pytest.fixture(scope="module")
def with_cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("budget") / "cut.mp4"
    make_clip(path, frames=FRAMES, width=64, height=48, fps=FPS, codec="libx264",
              pix_fmt="yuv420p", scene_cut_at=CUT, options={"g": "1000", "keyint_min": "1"})  # fmt: skip
    return path


def _starts(plan) -> list[tuple[int, str]]:
    return [(chunk.first, chunk.boundary) for chunk in plan.chunks]


def test_an_unmeetable_budget_skips_the_search_after_one_window(with_cut):
    searched = plan_chunks(with_cut, CHUNK_S, context=(1, 1), cuts=SEARCH)
    assert (CUT, "cut") in _starts(searched) and searched.rule == ""
    ample = plan_chunks(with_cut, CHUNK_S, context=(1, 1), cuts=SEARCH, budget=SearchBudget(1))
    assert _starts(ample) == _starts(searched) and ample.rule == ""

    skipped = plan_chunks(
        with_cut, CHUNK_S, context=(1, 1), cuts=SEARCH, budget=SearchBudget(1, worker_fps=1e9)
    )
    assert all(boundary != "cut" for _, boundary in _starts(skipped))
    assert len(skipped.chunks) == len(searched.chunks)
    assert skipped.rule.startswith("cut search skipped: ") and "4 windows" in skipped.rule
    # only the first window was read: its frames and the GOP lead-in, not the others'
    assert 0 < skipped.scan_frames < searched.scan_frames

    # a recurrent model's chunks start at cuts only: its search is never cut short
    cuts_only = plan_chunks(
        with_cut, CHUNK_S, context=(1, 1), cuts=SEARCH, cuts_only=True,
        budget=SearchBudget(1, worker_fps=1e9),
    )  # fmt: skip
    assert (CUT, "cut") in _starts(cuts_only) and cuts_only.rule == CUTS_ONLY_RULE


@pytest.mark.parametrize("ray", [None, "local"])
def test_ray_runs_budget_the_search_by_their_workers(with_cut, tmp_path, ray):
    from vx_engine.run_steps import plan_run
    from vx_engine.video import VideoReader

    chunking = ChunkOptions(chunk_seconds=CHUNK_S, ray=ray, ray_workers=10**6)
    options = RunOptions(input=with_cut, output=tmp_path / "out.mkv", sr="lanczos",
                         codec="ffv1", chunks=chunking)  # fmt: skip
    with VideoReader(with_cut) as reader:
        plan, _ = plan_run(options, reader.info, "cpu")
    chunk_plan = plan_run_chunks(options, plan, CHUNK_S)  # starts no Ray: the plan only
    if ray is None:  # one worker in this process: the search runs whole
        assert (CUT, "cut") in _starts(chunk_plan) and chunk_plan.rule == ""
    else:
        assert all(boundary != "cut" for _, boundary in _starts(chunk_plan))
        assert chunk_plan.rule.startswith("cut search skipped: ")
