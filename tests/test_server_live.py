"""A job's result while it runs: the live HLS routes, and the page playing them in Chromium.

The routes are checked on a playlist written by FFmpeg's own HLS muxer into a ready job's
folder (what the routes serve, not how the run makes it); the page is checked on a real
running job, held before its third chunk (``chunk_gate``) so that "before the job ends"
is a fact of the test, not a race.
"""

from __future__ import annotations

import base64
import io
import itertools
import shutil
import uuid
from pathlib import Path

import av
import numpy as np
import pytest
from chunk_faults import environment as faults
from chunk_gate import environment as gate_environment
from media import h264_excerpt, psnr8
from PIL import Image
from server_process import ServerProcess, raw_request, status_of, submit, wait_for
from test_browser import CHROMEDRIVER, browser  # noqa: F401  (the Chromium fixture)

from vx_engine.samples import sample_video

pytestmark = pytest.mark.slow
TOKEN = "live-token-3b7d"
FPS, SECONDS, WIDTH, HEIGHT = 25, 4, 192, 80
# Chromium decodes the same H.264 packets as PyAV (the segments are the output's own,
# stream-copied); what differs is its YUV->RGB conversion (its matrix rounding and chroma
# upsampling, then the canvas's 8 bits). Measured on this clip (2-core AMD EPYC, Debian
# Chromium 156): 41.5 dB at worst for the frame at the played time, 29.8 dB at best for
# the frames beside it; 35 dB leaves 6 dB for the conversion and still tells them apart,
# and the played time's frame must also be the best match among its neighbours.
PLAYED_MIN_PSNR_DB = 35.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of moving bikes, a keyframe a second: 4 one-second chunks."""
    folder = tmp_path_factory.mktemp("live-clips")
    return h264_excerpt(
        sample_video("bikes.mp4"),
        folder / "bikes-4s.mp4",
        FPS * SECONDS,
        WIDTH,
        HEIGHT,
        fps=FPS,
        keyframe_every=FPS,
    )


def write_hls(clip: Path, folder: Path) -> None:
    """``clip``'s packets as an EVENT playlist of one-second MPEG-TS segments, named as the
    run names them (live.m3u8, live_00000.ts, ...), by FFmpeg's HLS muxer."""
    folder.mkdir(parents=True, exist_ok=True)
    options = {
        "hls_time": "1",
        "hls_playlist_type": "event",
        "hls_segment_filename": str(folder / "live_%05d.ts"),
    }
    with (
        av.open(str(clip)) as source,
        av.open(str(folder / "live.m3u8"), "w", format="hls", options=options) as playlist,
    ):
        video = source.streams.video[0]
        stream = playlist.add_stream_from_template(video)
        for packet in source.demux(video):
            if packet.dts is not None:
                packet.stream = stream
                playlist.mux(packet)


def test_live_routes_serve_the_job_folder_under_the_api_rules(tmp_path, clip):
    data = tmp_path / "data"
    with ServerProcess(data) as server, server.client() as client:  # no token: Host guards
        job_id = submit(client, clip, {"sr": None, "start": False}).json()["id"]
        base = f"/api/jobs/{job_id}"
        before = client.get(f"{base}/live.m3u8")
        assert before.status_code == 404, before.text
        assert "first chunk" in before.json()["error"] and str(data) not in before.text
        assert client.get(f"{base}/live_00000.ts").status_code == 404

        live = data / "jobs" / job_id / "live"
        write_hls(clip, live)
        playlist = client.get(f"{base}/live.m3u8")
        assert playlist.status_code == 200
        assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
        assert playlist.headers["cache-control"] == "no-store"
        assert playlist.content == (live / "live.m3u8").read_bytes()
        names = [line for line in playlist.text.splitlines() if line.endswith(".ts")]
        assert names == ["live_00000.ts", "live_00001.ts", "live_00002.ts", "live_00003.ts"]
        for name in names:  # bare names: they resolve beside the playlist, to the route
            segment = client.get(f"{base}/{name}")
            assert segment.status_code == 200 and segment.headers["content-type"] == "video/mp2t"
            assert segment.content == (live / name).read_bytes()

        # the same rules as every route: a foreign Host (DNS rebinding) is refused
        for path in (f"{base}/live.m3u8", f"{base}/live_00000.ts"):
            assert client.get(path, headers={"Host": "rebind.evil.example"}).status_code == 421
        assert client.get(f"/api/jobs/{uuid.uuid4()}/live.m3u8").status_code == 404
        # only live_<digits>.ts, rebuilt from the digits: nothing else in the folder
        (live / "live_x.ts").write_bytes(b"not a segment")
        for name in ("live_x.ts", "live_0.ts", "live_00000.ts.bak", "live_-0001.ts"):
            assert client.get(f"{base}/{name}").status_code in (404, 422), name
        for raw_path in (
            f"{base}/live_..%2F..%2Finput.ts",
            f"{base}/live_00000.ts/../../input",
            f"/api/jobs/..%2F{job_id}/live.m3u8",
        ):
            answer = raw_request(
                server, f"GET {raw_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            )
            assert status_of(answer) in (404, 422), (raw_path, answer[:200])
            assert str(data).encode() not in answer


def test_a_failed_job_leaves_no_live_stream(tmp_path, clip, monkeypatch):
    # chunk 0 is streamed, chunk 1 fails: a playlist without its end must not stay behind
    for name, value in faults("1:raise").items():
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    with (
        ServerProcess(data, extra_args=("--chunk-seconds", "1")) as server,
        server.client() as client,
    ):
        job_id = submit(client, clip, {"sr": None}).json()["id"]
        job = wait_for(client, job_id, lambda job: job["state"] in ("done", "failed"), 120)
        assert job["state"] == "failed" and "chunk 1" in job["error"], job
        assert client.get(f"/api/jobs/{job_id}/live.m3u8").status_code == 404
        assert client.get(f"/api/jobs/{job_id}/live_00000.ts").status_code == 404
        assert not (data / "jobs" / job_id / "live").exists()


def captured_frames(driver) -> list[tuple[float, np.ndarray]]:
    """The frames the page's player presented: (media time, RGB) from its canvas grabs."""
    grabs = driver.execute_script("return window.liveGrabs")
    frames = []
    for grab in grabs:
        png = base64.b64decode(grab["png"].split(",", 1)[1])
        frames.append((grab["t"], np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))))
    return frames


# Every frame the player presents is drawn to a canvas (requestVideoFrameCallback: the
# frame and its media time together) and kept as a PNG.
GRAB_FRAMES = """
window.liveGrabs = [];
const video = document.getElementById('live'), canvas = document.createElement('canvas');
const context = canvas.getContext('2d', { willReadFrequently: true });
function grab(now, meta) {
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  context.drawImage(video, 0, 0);
  window.liveGrabs.push({ t: meta.mediaTime, png: canvas.toDataURL('image/png') });
  video.requestVideoFrameCallback(grab);
}
video.requestVideoFrameCallback(grab);
"""


def output_frames(path: Path) -> list[tuple[float, np.ndarray]]:
    """The final file's frames: (time from its first frame, RGB)."""
    with av.open(str(path)) as container:
        frames = [(float(f.time), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    start = frames[0][0]
    return [(t - start, rgb) for t, rgb in frames]


@pytest.mark.skipif(
    not (shutil.which("chromium") and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver",
)
def test_page_plays_a_running_job_and_its_frames_are_the_outputs(
    tmp_path,
    clip,
    browser,  # noqa: F811  (test_browser's fixture)
    monkeypatch,
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    gate = tmp_path / "open-chunk-2"
    for name, value in gate_environment(2, gate).items():  # chunks 0 and 1 run, 2 waits
        monkeypatch.setenv(name, value)
    data = tmp_path / "data"
    with ServerProcess(data, token=TOKEN, extra_args=("--chunk-seconds", "1")) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 120, poll_frequency=0.1)
        browser.find_element(By.ID, "token").send_keys(TOKEN, Keys.TAB)
        wait.until(lambda d: len(Select(d.find_element(By.ID, "sr")).options) > 1)
        Select(browser.find_element(By.ID, "sr")).select_by_value("")
        browser.find_element(By.ID, "file").send_keys(str(clip))
        browser.find_element(By.ID, "upload").click()
        wait.until(lambda d: d.execute_script("return state.jobId"))
        job_id = browser.execute_script("return state.jobId")
        wait.until(lambda d: d.find_element(By.ID, "start").is_enabled())
        browser.execute_script(GRAB_FRAMES)
        browser.find_element(By.ID, "start").click()

        # playing while the job is held before its third chunk
        wait.until(
            lambda d: d.execute_script("return document.getElementById('live').currentTime") > 1.2
        )
        with server.client() as client:
            assert client.get(f"/api/jobs/{job_id}").json()["state"] == "running"
            assert not gate.exists()
            # the live routes need the token as every API route does: the player sent it
            unauthorised = httpx_get_without_token(server, f"/api/jobs/{job_id}/live.m3u8")
            assert unauthorised == 401
            ready_state = browser.execute_script(
                "return document.getElementById('live').readyState"
            )
            assert ready_state >= 2  # HAVE_CURRENT_DATA: a frame is shown
            played_while_running = len(browser.execute_script("return window.liveGrabs"))
            gate.touch()
            job = wait_for(client, job_id, lambda job: job["state"] in ("done", "failed"), 120)
            assert job["state"] == "done", job
        wait.until(lambda d: d.execute_script("return document.getElementById('live').ended"))
        grabs = captured_frames(browser)
        output = output_frames(data / "jobs" / job_id / "output.mp4")
        delay_s = decode_delay_s(data / "jobs" / job_id / "live" / "live_00000.ts")

    assert played_while_running >= FPS // 2  # frames shown before the job could end
    assert len(output) == FPS * SECONDS
    check_played_frames(grabs, output, delay_s)


def httpx_get_without_token(server: ServerProcess, path: str) -> int:
    import httpx

    return httpx.get(server.url + path, timeout=10).status_code


def decode_delay_s(segment: Path) -> float:
    """How much later the stream's first frame is shown than its first packet is decoded
    (B-frames): hls.js puts the first decode time at 0 on the player's timeline, so each
    frame plays at its output time plus this."""
    with av.open(str(segment)) as container:
        packets = [p for p in itertools.islice(container.demux(video=0), 16) if p.pts is not None]
    first_pts, first_dts = min(p.pts for p in packets), min(p.dts for p in packets)
    return float((first_pts - first_dts) * packets[0].time_base)


def check_played_frames(
    grabs: list[tuple[float, np.ndarray]], output: list[tuple[float, np.ndarray]], delay_s: float
) -> None:
    """Each played frame is the output's frame at its media time (less ``delay_s``), and
    resembles it more than the frames around it."""
    times = np.array([t for t, _ in output]) + delay_s
    assert len(grabs) >= FPS * SECONDS // 2, len(grabs)  # headless may drop some, not most
    for media_time, played in grabs:
        index = int(np.argmin(np.abs(times - media_time)))
        assert abs(times[index] - media_time) < 0.5 / FPS, (media_time, times[index])
        around = range(max(0, index - 3), min(len(output), index + 4))
        scores = {j: psnr8(played, output[j][1]) for j in around}
        assert scores[index] >= PLAYED_MIN_PSNR_DB, (media_time, index, scores)
        assert max(scores, key=scores.get) == index, (media_time, index, scores)
