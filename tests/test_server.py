"""``vx-engine serve`` end to end: a real uvicorn server in a subprocess, real uploads.

Every result is checked against the input clip decoded with PyAV (FFmpeg), and
every rejected upload against the server's own job table and data directory.
"""

from __future__ import annotations

import base64
import io
import json
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from chunk_faults import environment as faults
from media import bicubic8, decode_rgb24, h264_excerpt, psnr8
from PIL import Image
from server_process import ServerProcess, wait_for

from vx_engine.samples import sample_video
from vx_engine.server.jobs import RESTART_ERROR

pytestmark = pytest.mark.slow
TOKEN = "test-token-5f1c"
SR_MODEL = "realesr-animevideov3-x2"
CLIP_FRAMES, CLIP_W, CLIP_H = 16, 192, 80  # bikes.mp4 (640x272) shrunk: seconds on 2 cores
TERMINAL = ("done", "failed", "cancelled")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    return h264_excerpt(
        sample_video("bikes.mp4"), folder / "bikes-16.mp4", CLIP_FRAMES, CLIP_W, CLIP_H
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("serve") / "data"
    with ServerProcess(data, token=TOKEN, max_upload_mb=1) as running:
        yield running


def submit(client: httpx.Client, path: Path, options: dict | None = None) -> httpx.Response:
    with path.open("rb") as video:
        return client.post(
            "/api/jobs",
            files={"file": (path.name, video, "video/mp4")},
            data={"options": json.dumps(options or {})},
        )


def sse_events(client: httpx.Client, job_id: str) -> list[dict]:
    events = []
    with client.stream("GET", f"/api/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def snapshot(server: ServerProcess) -> tuple[list[str], list[str], list[str], list[str]]:
    """Everything a leaked job could leave: API list, DB rows, job folders, partial uploads."""
    with server.client() as client:
        api_ids = sorted(job["id"] for job in client.get("/api/jobs").json())
    with sqlite3.connect(server.data_dir / "jobs.sqlite3") as db:
        db_ids = sorted(row[0] for row in db.execute("SELECT id FROM jobs"))
    folders = sorted(p.name for p in (server.data_dir / "jobs").iterdir())
    uploads = sorted(p.name for p in (server.data_dir / "uploads").iterdir())
    return api_ids, db_ids, folders, uploads


def test_job_completes_with_sse_progress_result_and_preview(server, clip):
    with server.client() as client:
        openapi = client.get("/openapi.json").json()
        assert {"/api/jobs", "/api/jobs/{job_id}/events", "/api/jobs/{job_id}/preview"} <= set(
            openapi["paths"]
        )
        assert client.get("/docs").status_code == 200
        models = {m["name"]: m for m in client.get("/api/models").json()}
        assert models[SR_MODEL]["kind"] == "sr" and models[SR_MODEL]["scale"] == 2
        blends = [name for name in models if "+" in name]  # the measured blends, for the page
        assert blends and all(models[name]["kind"] == "sr" for name in blends)
        assert all(set(name.split("+")) <= set(models) for name in blends)
        response = submit(client, clip, {"sr": SR_MODEL, "vfi": None})
        assert response.status_code == 201, response.text
        job_id = response.json()["id"]
        events = sse_events(client, job_id)

        frames = [event["frame"] for event in events]
        assert frames == sorted(frames), f"progress went backwards: {frames}"
        assert events[-1]["state"] == "done", events[-1]
        assert events[-1]["frame"] == events[-1]["total"] == CLIP_FRAMES
        assert {"frame", "total", "fps", "eta_s", "state"} <= set(events[0])
        order = ["queued", "running", "done"]
        assert [order.index(e["state"]) for e in events] == sorted(
            order.index(e["state"]) for e in events
        )
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["settings"]["sr"] == SR_MODEL and job["error"] is None
        assert job["input"]["name"] == clip.name and "path" not in job["input"]
        assert (job["input"]["width"], job["input"]["frame_count"]) == (CLIP_W, CLIP_FRAMES)

        result = client.get(f"/api/jobs/{job_id}/result")
        assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
        result_path = server.data_dir.parent / "result.mp4"
        result_path.write_bytes(result.content)
        outputs, inputs = decode_rgb24(result_path), decode_rgb24(clip)
        assert len(outputs) == CLIP_FRAMES
        assert outputs[0].shape == (2 * CLIP_H, 2 * CLIP_W, 3)
        # Same pictures, upscaled: each output frame is close to bicubic of *its* input frame.
        scores = [
            psnr8(out, bicubic8(src, (2 * CLIP_W, 2 * CLIP_H)))
            for out, src in zip(outputs, inputs, strict=True)
        ]
        assert min(scores) > 22.0, f"output vs bicubic PSNR {scores}"

        preview = client.post(f"/api/jobs/{job_id}/preview", json={"duration": 0.4})
        assert preview.status_code == 200, preview.text
        body = preview.json()
        before, after = (
            np.asarray(
                Image.open(io.BytesIO(base64.b64decode(body[side].split(",", 1)[1]))).convert("RGB")
            )
            for side in ("before", "after")
        )
        assert before.shape == after.shape == (2 * CLIP_H, 2 * CLIP_W, 3)
        # The preview's "after" is the same moment the full run produced at that time.
        start_index = round(body["start_s"] * 25)
        assert psnr8(after, outputs[start_index]) > 30.0
        neighbour = outputs[start_index + 3]  # ...and not a neighbouring one (bikes move)
        assert psnr8(after, outputs[start_index]) > psnr8(after, neighbour) + 6.0
        assert psnr8(before, bicubic8(inputs[start_index], (2 * CLIP_W, 2 * CLIP_H))) > 40.0

        deleted = client.delete(f"/api/jobs/{job_id}")
        assert deleted.status_code == 200
        assert client.get(f"/api/jobs/{job_id}").status_code == 404
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 404
        assert not (server.data_dir / "jobs" / job_id).exists()


def test_bad_uploads_get_4xx_and_leave_nothing(server, clip, tmp_path):
    before = snapshot(server)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    oversize = tmp_path / "big.mp4"  # 1 MiB limit: a real clip header, then padding
    oversize.write_bytes(clip.read_bytes() + bytes(2 * 2**20))

    def chunked_oversize():  # no Content-Length: only counting while streaming can stop it
        boundary = b"vxboundary"
        yield (
            b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
            b'filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        )
        for _ in range(48):
            yield bytes(64 * 1024)
        yield b"\r\n--" + boundary + b"--\r\n"

    with server.client() as client:
        cases = {
            "text": submit(client, text),
            "empty": submit(client, empty),
            "oversize": submit(client, oversize),
            "oversize-chunked": client.post(
                "/api/jobs",
                content=chunked_oversize(),
                headers={"Content-Type": "multipart/form-data; boundary=vxboundary"},
            ),
            "unknown option": submit(client, clip, {"heigth": 720}),
            "unknown model": submit(client, clip, {"sr": "no-such-model"}),
            "both targets": submit(client, clip, {"scale": 2, "height": 720}),
        }
    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        cases["no token"] = submit(anonymous, clip)
        anonymous.headers["Authorization"] = "Bearer wrong"
        cases["wrong token"] = submit(anonymous, clip)
        cases["wrong token, list"] = anonymous.get("/api/jobs")

    expected = {
        "text": 415,
        "empty": 400,
        "oversize": 413,
        "oversize-chunked": 413,
        "unknown option": 422,
        "unknown model": 422,
        "both targets": 422,
        "no token": 401,
        "wrong token": 401,
        "wrong token, list": 401,
    }
    assert {name: r.status_code for name, r in cases.items()} == expected
    for name, response in cases.items():
        assert response.headers["content-type"] == "application/json", name
        assert response.json()["error"], name
    assert "heigth" in cases["unknown option"].json()["error"]
    assert SR_MODEL in cases["unknown model"].json()["error"]  # names what exists
    assert snapshot(server) == before


def chunks_done(data: Path, job_id: str) -> int:
    try:
        manifest = json.loads((data / "jobs" / job_id / "work" / "manifest.json").read_text())
    except (OSError, ValueError):
        return 0
    return sum(1 for chunk in manifest["chunks"] if chunk["state"] == "done")


LONG_FRAMES = 125


def test_restart_mid_job_resumes_it_from_its_chunks(tmp_path, clip):
    # 125 frames of SR (5 s, a keyframe every 25 frames) in 1-second chunks: five chunks,
    # and the worker stays busy long enough to kill the server after the first
    long_clip = h264_excerpt(
        sample_video("bikes.mp4"), tmp_path / "long.mp4", LONG_FRAMES, 160, 68, keyframe_every=25
    )
    data, chunking = tmp_path / "data", ("--chunk-seconds", "1")
    first = ServerProcess(data, extra_args=chunking).start()
    try:
        with first.client() as client:
            slow_id = submit(client, long_clip, {"sr": SR_MODEL}).json()["id"]
            queued_id = submit(client, clip, {"sr": None}).json()["id"]
            deadline = time.monotonic() + 300
            while chunks_done(data, slow_id) < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert client.get(f"/api/jobs/{slow_id}").json()["state"] == "running"
            assert client.get(f"/api/jobs/{queued_id}").json()["state"] == "queued"
    finally:
        first.kill()  # SIGKILL: no shutdown handler runs

    with ServerProcess(data, extra_args=chunking) as second, second.client() as client:
        events = sse_events(client, slow_id)  # the stream picks the job up and runs to done
        assert events[-1]["state"] == "done", events[-1]
        frames = [event["frame"] for event in events]
        assert frames == sorted(frames), f"progress went backwards: {frames}"
        summary = client.get(f"/api/jobs/{slow_id}").json()["result"]
        assert summary["chunks"] == 5 and summary["chunks_reused"] >= 1
        assert summary["frames_processed"] <= LONG_FRAMES - 25
        assert summary["frames_out"] == LONG_FRAMES
        assert "stream-copied concat" in summary["assembly"]
        result = tmp_path / "resumed-long.mp4"
        result.write_bytes(client.get(f"/api/jobs/{slow_id}/result").content)
        upscaled, sources = decode_rgb24(result), decode_rgb24(long_clip)
        assert len(upscaled) == LONG_FRAMES and upscaled[0].shape == (136, 320, 3)
        # every frame, those at the chunk boundaries (every 25) too, is its source upscaled
        worst = min(
            psnr8(up, bicubic8(source, (320, 136)))
            for up, source in zip(upscaled, sources, strict=True)
        )
        assert worst > 25.0, worst
        resumed = wait_for(client, queued_id, lambda job: job["state"] in TERMINAL)
        assert resumed["state"] == "done", resumed
        result = tmp_path / "resumed.mp4"
        result.write_bytes(client.get(f"/api/jobs/{queued_id}/result").content)
        outputs, inputs = decode_rgb24(result), decode_rgb24(clip)
        assert len(outputs) == CLIP_FRAMES and outputs[0].shape == inputs[0].shape
        assert min(psnr8(o, i) for o, i in zip(outputs, inputs, strict=True)) > 30.0

        # A graceful stop (SIGTERM) mid-job keeps its chunks: the next start resumes it.
        stopped_id = submit(client, long_clip, {"sr": SR_MODEL}).json()["id"]
        wait_for(client, stopped_id, lambda job: job["progress"]["frame"] >= 1)
        second.stop()
        # uvicorn re-raises SIGTERM after its clean shutdown; -9 would mean it hung and was killed
        assert second.process.returncode in (0, -signal.SIGTERM)
    with ServerProcess(data, extra_args=chunking) as third, third.client() as client:
        stopped = wait_for(client, stopped_id, lambda job: job["state"] in TERMINAL)
        assert stopped["state"] == "done", stopped


def test_unchunkable_job_interrupted_by_a_restart_fails(tmp_path, clip):
    # mpeg4 segments cannot be joined by stream copy: such a job runs in one pass
    data = tmp_path / "data"
    long_clip = h264_excerpt(sample_video("bikes.mp4"), tmp_path / "long.mp4", 250, 320, 136)
    first = ServerProcess(data).start()
    try:
        with first.client() as client:
            job_id = submit(client, long_clip, {"sr": SR_MODEL, "codec": "mpeg4"}).json()["id"]
            wait_for(client, job_id, lambda job: job["progress"]["frame"] >= 1)
    finally:
        first.kill()
    with ServerProcess(data) as second, second.client() as client:
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["state"] == "failed" and job["error"] == RESTART_ERROR
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 409
        assert [e["state"] for e in sse_events(client, job_id)] == ["failed"]


def test_a_failing_chunk_fails_its_job_with_the_cause_and_no_resume_hint(
    tmp_path, clip, monkeypatch
):
    # the server's users cannot run commands: the engine's "resume with" tail is dropped,
    # and the failed job's chunks are removed with it
    for name, value in faults("0:raise").items():  # loaded by the server's chunk runs
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    with ServerProcess(data) as server, server.client() as client:
        job_id = submit(client, clip, {"sr": None}).json()["id"]
        job = wait_for(client, job_id, lambda job: job["state"] in TERMINAL)
        assert job["state"] == "failed", job
        error = job["error"]
        assert "chunk 0" in error and "fault injected by VX_FAULT_CHUNK=0:raise" in error, error
        assert "resume" not in error and str(data) not in error and "\n" not in error, error
        assert not (data / "jobs" / job_id / "work").exists()
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 409
        assert client.get("/api/models").status_code == 200  # still serving


def test_delete_cancels_a_running_job(tmp_path, clip):
    long_clip = h264_excerpt(sample_video("bikes.mp4"), tmp_path / "long.mp4", 250, 320, 136)
    with ServerProcess(tmp_path / "data") as running, running.client() as client:
        job_id = submit(client, long_clip, {"sr": SR_MODEL}).json()["id"]
        wait_for(client, job_id, lambda job: job["progress"]["frame"] >= 1)
        started = time.monotonic()
        deleted = client.delete(f"/api/jobs/{job_id}")
        assert deleted.status_code == 200 and deleted.json()["was"] == "running"
        assert time.monotonic() - started < 20
        assert client.get(f"/api/jobs/{job_id}").status_code == 404
        assert not (running.data_dir / "jobs" / job_id).exists()
        # The single worker is free again: the next job runs to completion.
        next_id = submit(client, clip, {"sr": None}).json()["id"]
        assert (
            wait_for(
                client, next_id, lambda job: job["state"] != "queued" and job["state"] != "running"
            )["state"]
            == "done"
        )


def test_full_queue_refuses_uploads_with_503_and_leaves_nothing(tmp_path, clip):
    long_clip = h264_excerpt(sample_video("bikes.mp4"), tmp_path / "long.mp4", 250, 320, 136)
    server = ServerProcess(tmp_path / "data", extra_args=("--max-queued", "1"))
    with server, server.client() as client:
        running_id = submit(client, long_clip, {"sr": SR_MODEL}).json()["id"]
        wait_for(client, running_id, lambda job: job["state"] == "running")
        queued = submit(client, clip, {"sr": None})
        assert queued.status_code == 201, queued.text
        before = snapshot(server)
        refused = submit(client, clip, {"sr": None})
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "30"
        assert "1 jobs are queued (limit 1)" in refused.json()["error"]
        assert snapshot(server) == before  # no row, folder or partial upload from the refusal
        # the queue drains: once the running job is gone, the queued one runs and uploads pass
        client.delete(f"/api/jobs/{running_id}")
        done = wait_for(client, queued.json()["id"], lambda job: job["state"] in TERMINAL)
        assert done["state"] == "done", done
        assert submit(client, clip, {"sr": None}).status_code == 201


def test_finished_jobs_are_deleted_after_keep_hours(tmp_path, clip):
    # 0.001 h = 3.6 s: the sweep runs every second (a tenth of that, at least 1 s)
    server = ServerProcess(tmp_path / "data", extra_args=("--keep-hours", "0.001"))
    with server, server.client() as client:
        job_id = submit(client, clip, {"sr": None}).json()["id"]
        finished = wait_for(client, job_id, lambda job: job["state"] in TERMINAL)
        assert finished["state"] == "done", finished
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 200  # kept at first
        gone = time.monotonic()
        while client.get(f"/api/jobs/{job_id}").status_code == 200:
            assert time.monotonic() - gone < 30, "the finished job was never swept"
            time.sleep(0.25)
        assert time.monotonic() - gone >= 2.0  # not before its time (3.6 s after it ended)
        assert client.get(f"/api/jobs/{job_id}/result").status_code == 404
        assert snapshot(server) == ([], [], [], [])


def test_two_workers_run_two_jobs_at_once(tmp_path, clip):
    long_clip = h264_excerpt(sample_video("bikes.mp4"), tmp_path / "long.mp4", 250, 320, 136)
    server = ServerProcess(tmp_path / "data", extra_args=("--workers", "2"))
    with server, server.client() as client:
        first, second = (submit(client, long_clip, {"sr": SR_MODEL}).json()["id"] for _ in "ab")
        for job_id in (first, second):  # both progress: neither waits for the other
            wait_for(client, job_id, lambda job: job["progress"]["frame"] >= 1)
        assert {client.get(f"/api/jobs/{i}").json()["state"] for i in (first, second)} == {
            "running"
        }
        for job_id in (first, second):
            assert client.delete(f"/api/jobs/{job_id}").json()["was"] == "running"
        # a short job after them still runs to the end on the freed workers
        short = submit(client, clip, {"sr": None}).json()["id"]
        assert wait_for(client, short, lambda job: job["state"] in TERMINAL)["state"] == "done"
