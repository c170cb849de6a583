"""Issue 13 item 3: upload with ``start: false`` (state ``ready``, probe warnings), a fast
preview of one moment on a real server over loopback, then start with changed settings.

References: the preview's "before" against PIL's bicubic of the decoded source frame,
its "after" and halfway frame against the frames the real job then writes.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from media import bicubic8, decode_rgb24, h264_excerpt, psnr8, server_clips
from PIL import Image
from server_process import ServerProcess, submit, wait_for

from vx_engine.samples import sample_video

SR_MODEL, VFI_MODEL = "realesr-animevideov3-x2", "rife-hdv3"
W, H, FPS = 320, 180, 25  # the case: 320x180, x2 SR + RIFE to 720p/50
FRAMES = 14  # the preview at 0.4 s reads frames 10 and 11; frame 13 is the moved neighbour
PREVIEW_LIMIT_S = 10.0  # issue 13's acceptance line, on this 2-core machine
RESPONSIVE_S = 5.0  # the API answers while previews wait: far below the 10 s they wait


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return server_clips(tmp_path_factory.mktemp("clips"))


def image(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_ready_job_previews_in_seconds_then_starts(tmp_path):
    clip = h264_excerpt(sample_video("bikes.mp4"), tmp_path / "bikes.mp4", FRAMES, W, H, FPS)
    inputs = decode_rgb24(clip)
    options = {"start": False, "sr": SR_MODEL, "vfi": VFI_MODEL, "height": 720, "fps": "50"}
    with ServerProcess(tmp_path / "data") as server, server.client(timeout=120) as client:
        with clip.open("rb") as video:
            created = client.post(
                "/api/jobs",
                files={"file": (clip.name, video, "video/mp4")},
                data={"options": json.dumps(options)},
            )
        assert created.status_code == 201, created.text
        job_id = created.json()["id"]
        assert created.json()["state"] == "ready"
        codes = [w["code"] for w in created.json()["warnings"]]
        assert "low-resolution" in codes, codes  # 180 lines: the probe's own threshold (240)
        job = client.get(f"/api/jobs/{job_id}").json()
        assert job["state"] == "ready" and [w["code"] for w in job["warnings"]] == codes
        assert job["settings"]["height"] == 720 and "start" not in job["settings"]

        elapsed = []
        for baseline in ("bicubic", "lanczos"):  # the second finds the runners loaded
            answer = client.post(
                f"/api/jobs/{job_id}/preview", json={"at_s": 0.4, "baseline": baseline}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            elapsed.append(body["elapsed_s"])
            assert body["elapsed_s"] <= PREVIEW_LIMIT_S, body["elapsed_s"]
            before, after, halfway = (image(body[k]) for k in ("before", "after", "halfway"))
            assert before.shape == after.shape == halfway.shape == (720, 1280, 3)
            assert (body["width"], body["height"], body["out_fps"]) == (1280, 720, "50")
            assert body["state"] == "ready" and body["baseline"] == baseline
            assert [w["code"] for w in body["warnings"]] == codes
            index = round(body["at_s"] * FPS)
            assert index == 10
            reference = bicubic8(inputs[index], (1280, 720))
            # FFmpeg's bicubic/lanczos against PIL's bicubic: same frame, other kernels
            assert psnr8(before, reference) > 30.0, psnr8(before, reference)
            # the enhanced frame is this moment, not a neighbour (bikes move)
            assert psnr8(after, reference) > psnr8(after, bicubic8(inputs[index + 3], (1280, 720)))
        print(f"preview elapsed_s: first {elapsed[0]} s, with loaded runners {elapsed[1]} s")
        assert client.get(f"/api/jobs/{job_id}").json()["state"] == "ready"

        # changed settings without a new upload; bad ones are refused with one line
        bad = client.post(f"/api/jobs/{job_id}/preview", json={"denoise": "3"})
        assert bad.status_code == 422 and "realcugan-se-x2" in bad.json()["error"], bad.text
        assert client.post(f"/api/jobs/{job_id}/preview", json={"at_s": -1}).status_code == 422
        assert client.post(f"/api/jobs/{job_id}/preview", json={"heigth": 9}).status_code == 422
        small = client.post(f"/api/jobs/{job_id}/preview", json={"at_s": 0.4, "height": 360})
        assert small.status_code == 200, small.text
        small = small.json()
        assert image(small["after"]).shape == (360, 640, 3)

        started = client.post(f"/api/jobs/{job_id}/start", json={"height": 360})
        assert started.status_code == 200, started.text
        assert started.json()["settings"]["height"] == 360
        assert started.json()["state"] in ("queued", "running", "done")
        again = client.post(f"/api/jobs/{job_id}/start", json={})
        assert again.status_code == 409 and "ready" in again.json()["error"]
        deadline = time.monotonic() + 300
        while (job := client.get(f"/api/jobs/{job_id}").json())["state"] not in (
            "done",
            "failed",
            "cancelled",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "done", job
        result = tmp_path / "result.mp4"
        result.write_bytes(client.get(f"/api/jobs/{job_id}/result").content)
        outputs = decode_rgb24(result)
        assert len(outputs) == 2 * FRAMES and outputs[0].shape == (360, 640, 3)
        # The preview is the run: source frame 10 is output frame 20 at 50 fps, the
        # halfway frame is output 21 (the encoder's loss aside).
        assert psnr8(image(small["after"]), outputs[20]) > 30.0
        assert psnr8(image(small["halfway"]), outputs[21]) > 28.0
        assert psnr8(image(small["halfway"]), outputs[21]) > psnr8(
            image(small["halfway"]), outputs[20]
        )

        assert client.post(f"/api/jobs/{uuid.uuid4()}/start").status_code == 404


def test_ready_jobs_expire_with_keep_hours_and_stay_out_of_the_queue(tmp_path):
    from vx_engine.server.jobs import JobStore, QueueSlots

    store = JobStore(tmp_path / "data")
    try:
        upload = tmp_path / "upload"
        upload.write_bytes(b"x")
        job = store.create(upload, {}, "a.mp4", {}, "ready")
        slots = QueueSlots(store, 1)
        assert slots.reserve() is None  # a ready job does not hold a --max-queued slot
        slots.release()
        assert store.purge_finished(job.created_at - 1) == []
        assert store.queue_ready(job.id, {"sr": None}) and not store.queue_ready(job.id, {})
        assert store.get(job.id).state == "queued" and slots.reserve() == 1
        store.update(job.id, state="ready")
        assert store.purge_finished(job.created_at + 1) == [job.id]
        assert not store.job_dir(job.id).exists()
    finally:
        store.close()


@pytest.mark.parametrize("level", ["conservative", "3"])
def test_denoise_setting_reaches_the_run_options(level):
    from vx_engine.server.job_settings import JobSettings, with_overrides

    settings = JobSettings.model_validate({"sr": "realcugan-se-x2-conservative", "denoise": level})
    assert settings.to_run_options(Path("a"), Path("b")).denoise == level
    base = JobSettings.model_validate({"height": 720, "fps": "50", "vfi": VFI_MODEL}).model_dump()
    changed = with_overrides(base, {"scale": 2, "interp": 2})
    assert (changed.height, changed.fps, changed.scale, changed.interp) == (None, None, 2, 2)


# -- issue 16 item 3: previews through the scheduler ----------------------------------
@pytest.mark.slow
def test_previews_share_the_workers_queue_429_and_stop_on_disconnect(tmp_path, clips):
    server = ServerProcess(tmp_path / "data", extra_args=("--max-previews", "4"))
    with server, server.client(timeout=60) as client:
        running = submit(client, clips["long"], {"sr": SR_MODEL}).json()["id"]
        wait_for(client, running, lambda job: job["state"] == "running")
        later = submit(client, clips["long"], {"sr": SR_MODEL}).json()["id"]  # queued
        target = submit(client, clips["short"], {"sr": None}).json()["id"]  # queued

        # one client for all 20: building 20 httpx clients (SSL contexts) would load this
        # process's GIL, not the server
        shared = server.client(timeout=60)

        def preview(_: int) -> int:
            return shared.post(f"/api/jobs/{target}/preview", json={"duration": 0.2}).status_code

        frame_before = client.get(f"/api/jobs/{running}").json()["progress"]["frame"]
        with shared, ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(preview, i) for i in range(20)]
            deadline = time.monotonic() + 10
            while sum(f.done() for f in futures) < 16 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # the 4 that wait stay waiting (the worker is busy)
            for _ in range(3):
                started = time.monotonic()
                assert client.get("/api/models").status_code == 200
                print(
                    f"/api/models with 4 previews waiting: {(time.monotonic() - started) * 1000:.1f} ms"
                )
                # a loop blocked by the waiting previews would answer only after they end
                # (never, before the cancel below); a loaded 2-core CI machine takes ~1 s
                assert time.monotonic() - started < RESPONSIVE_S
            finished = [f for f in futures if f.done()]
            done = [f.result() for f in finished]
            assert done.count(429) == 16 and len(done) == 16, done
            # the worker's job keeps making frames; the 4 previews wait their turn behind it
            wait_for(client, running, lambda job: job["progress"]["frame"] > frame_before, 30)
            cancelled_at = time.monotonic()
            assert client.delete(f"/api/jobs/{target}").status_code == 200  # cancels the 4
            waiting = [f.result(timeout=5) for f in futures if f not in finished]
        assert sorted(waiting) == [409] * 4 and time.monotonic() - cancelled_at < 2.5

        # A rendering preview whose client leaves is stopped: the worker takes the queued job.
        body = json.dumps({"duration": 10}).encode()
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(
            f"POST /api/jobs/{later}/preview HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(0.3)
        client.delete(f"/api/jobs/{running}")  # the worker is free: previews go before jobs
        time.sleep(2.0)  # it renders now (250 frames of SR would take far longer)
        assert client.get(f"/api/jobs/{later}").json()["state"] == "queued"
        sock.close()
        left_at = time.time()
        started = wait_for(client, later, lambda job: job["started_at"] is not None, 10)
        print(f"preview stopped {started['started_at'] - left_at:.2f} s after its client left")
        assert started["started_at"] - left_at < 2.0
        client.delete(f"/api/jobs/{later}")
