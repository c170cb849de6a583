"""Issue 26, server fixes: uploads open with a demuxer allow-list and the ``file`` protocol
only, no response or event names a server path, minterpolate jobs run in one pass, and
the limits price ``--deinterlace NAME:field`` at the field rate.

FFmpeg is asked for real: plain ``av.open`` shows what each refused file would have
opened (the video an ffconcat list names, a playlist's segment, an image sequence), and
a real ``vx-engine serve`` answers the uploads.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from media import make_clip
from server_process import ServerProcess, multipart, wait_for

from vx_engine.errors import InputError
from vx_engine.video import VideoReader
from vx_engine.video.opening import UPLOAD_OPEN_OPTIONS, open_options, treat_as_uploads

TERMINAL = ("done", "failed", "cancelled")
FRAMES = 8


def _write(path: Path, codec: str, pix_fmt: str, frames: list, fmt: str | None = None) -> Path:
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        for frame in frames:
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _rgb_frames(count: int = FRAMES) -> list[av.VideoFrame]:
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None]
    return [
        av.VideoFrame.from_ndarray(np.ascontiguousarray(np.broadcast_to(ramp + 9 * i, (48, 64, 3))))
        for i in range(count)
    ]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An accepted mp4 and mkv, and each refused kind, every one written by FFmpeg."""
    folder = tmp_path_factory.mktemp("formats")
    files = {"mp4": folder / "clip.mp4", "mkv": folder / "clip.mkv"}
    make_clip(files["mp4"], FRAMES, 64, 48, fps=10, codec="libx264", pix_fmt="yuv420p")
    make_clip(files["mkv"], FRAMES, 64, 48, fps=10)
    files["ffconcat"] = folder / "list.txt"
    files["ffconcat"].write_text("ffconcat version 1.0\nfile clip.mp4\n")
    files["ts"] = _write(folder / "segment0.ts", "mpeg2video", "yuv420p", _rgb_frames())
    files["m3u8"] = folder / "playlist.m3u8"
    files["m3u8"].write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXTINF:0.8,\nsegment0.ts\n#EXT-X-ENDLIST\n"
    )
    images = folder / "frames"
    images.mkdir()
    _write(images / "frame%03d.png", "png", "rgb24", _rgb_frames(3), fmt="image2")
    files["image_pattern"] = images / "frame%03d.png"
    files["png"] = images / "frame001.png"
    files["smjpeg"] = _write(folder / "clip.smjpeg", "mjpeg", "yuvj420p", _rgb_frames(), "smjpeg")
    # MPEG-TS with one keyframe in 40 frames: the probe's seeks find no frame, it reads on
    files["one_gop_ts"] = folder / "one-gop.ts"
    gop = {"g": "1000", "sc_threshold": "0"}
    make_clip(files["one_gop_ts"], 40, 64, 48, 25, "libx264", "yuv420p", options=gop)
    return files


def test_the_allow_list_takes_effect_in_ffmpeg(media: dict[str, Path], tmp_path: Path) -> None:
    """Each refused kind opens without the options (so the refusal is theirs), not with them;
    the data: protocol stands for every protocol but file."""
    opened_plainly = {
        "ffconcat": "concat",  # and reads the clip it names
        "m3u8": "hls",  # and reads its segment
        "image_pattern": "image2",
        "smjpeg": "smjpeg",
    }
    for kind, demuxer in opened_plainly.items():
        with av.open(str(media[kind])) as container:
            assert container.format.name == demuxer and container.streams.video
        with pytest.raises(av.error.FFmpegError):
            av.open(str(media[kind]), container_options=UPLOAD_OPEN_OPTIONS)
    data_url = "data:video/mp4;base64," + base64.b64encode(media["mp4"].read_bytes()).decode()
    av.open(data_url).close()
    with pytest.raises(av.error.FFmpegError):
        av.open(data_url, container_options=UPLOAD_OPEN_OPTIONS)
    for kind in ("mp4", "mkv", "one_gop_ts"):
        av.open(str(media[kind]), container_options=UPLOAD_OPEN_OPTIONS).close()
    # the engine's reader (the probe, the run, the previews) takes the list for a file in
    # a folder of uploads, and only there
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    for kind in ("ffconcat", "mp4"):
        shutil.copy(media[kind], uploads / media[kind].name)
    treat_as_uploads(uploads)
    assert open_options(uploads / "input") == UPLOAD_OPEN_OPTIONS
    assert open_options(media["mp4"]) == {}
    with VideoReader(media["ffconcat"]) as reader:  # the CLI's own files: FFmpeg's choice
        assert (reader.info.width, reader.info.codec_name) == (64, "h264")
    with pytest.raises(InputError, match="not a readable video"):
        VideoReader(uploads / media["ffconcat"].name)
    VideoReader(uploads / media["mp4"].name).close()


def test_every_open_of_a_source_takes_the_list(media: dict[str, Path], tmp_path: Path) -> None:
    """One helper (``opening.open_input``) opens every source: in a folder of uploads, an ffconcat
    list is refused by each of the engine's other readers too (the probe's quantiser, the
    field count, the chunk planner, the NVDEC checks); outside, FFmpeg's choice opens it.
    A Ray worker marks the driver's folders, and its copy of a shipped upload."""
    from vx_engine.analysis.fields import measure_fields
    from vx_engine.analysis.sampling import stream_quantiser
    from vx_engine.distributed.chunks import source_times
    from vx_engine.gpu.nvdec_checks import probe_stream
    from vx_engine.video.opening import carry_uploads
    from vx_engine.video.source import UPLOAD_REASON, nvdec_reason

    uploads = tmp_path / "data"
    uploads.mkdir()
    for kind in ("ffconcat", "mp4"):
        shutil.copy(media[kind], uploads / media[kind].name)
    listed = uploads / media["ffconcat"].name
    treat_as_uploads(uploads)
    assert stream_quantiser(media["ffconcat"]) is not None and stream_quantiser(listed) is None
    assert measure_fields(media["ffconcat"]) is not None and measure_fields(listed) is None
    assert len(source_times(media["ffconcat"], None, None)[1]) == FRAMES
    for opener in (lambda path: source_times(path, None, None), probe_stream):
        with pytest.raises(InputError):
            opener(listed)
    with VideoReader(uploads / media["mp4"].name) as reader:  # NVDEC's demuxer takes no list
        assert nvdec_reason(reader.info, True, None) == UPLOAD_REASON
    # the engine opens no other file for reading than its own (outputs, segments)
    engine = Path(__file__).resolve().parents[1] / "engine"
    for module in engine.rglob("*.py"):
        for call in re.findall(r"av\.open\((.*)", module.read_text()):
            assert module.name in ("opening.py", "assemble.py", "live.py") or '"w"' in call, module
    # a worker process: the driver's folders, and the scratch folder of a shipped upload
    scratch, other = tmp_path / "worker-scratch", tmp_path / "other-scratch"
    carry_uploads((str(uploads),), uploads / "input", scratch)
    carry_uploads((str(uploads),), media["mp4"], other)  # not an upload: no list there
    assert open_options(scratch / "input-1.mp4") == UPLOAD_OPEN_OPTIONS
    assert open_options(other / "input-1.mp4") == {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("upload-formats") / "data"
    with ServerProcess(data, max_upload_mb=4) as running:
        yield running


def _upload(client: httpx.Client, path: Path, options: dict) -> httpx.Response:
    body, content_type = multipart(options, path.read_bytes(), path.name)
    return client.post("/api/jobs", content=body, headers={"Content-Type": content_type})


def test_uploads_outside_the_list_get_415_naming_what_was_found(server, media) -> None:
    uploads = server.data_dir / "uploads"
    # what the ffconcat upload names lies beside it: probed, it would be this video
    shutil.copy(media["mp4"], uploads / "clip.mp4")
    found = {
        "ffconcat": "'concat'",
        "m3u8": "'#EXTM3U'",  # stored as .part, FFmpeg calls it no playlist: plain text
        "png": "'png_pipe'",  # one image of the sequence, sent as frame%03d.png
        "smjpeg": "'smjpeg'",
    }
    names = {"png": "frame%03d.png"}
    with server.client() as client:
        for kind, what in found.items():
            body, content_type = multipart({}, media[kind].read_bytes(), names.get(kind, "x"))
            answer = client.post("/api/jobs", content=body, headers={"Content-Type": content_type})
            assert answer.status_code == 415, (kind, answer.text)
            error = answer.json()["error"]
            assert what in error and "MP4/MOV" in error, (kind, error)
        assert client.get("/api/jobs").json() == []
        for kind in ("mp4", "mkv"):
            answer = _upload(client, media[kind], {"start": False})
            assert answer.status_code == 201 and answer.json()["state"] == "ready", answer.text
    assert sorted(p.name for p in uploads.iterdir()) == ["clip.mp4"]


def test_a_minterpolate_job_runs_in_one_pass_to_done(server, media) -> None:
    with server.client() as client:
        answer = _upload(client, media["mp4"], {"sr": None, "vfi": "minterpolate", "interp": 2})
        assert answer.status_code == 201, answer.text
        job = wait_for(client, answer.json()["id"], lambda j: j["state"] in TERMINAL, 120)
        assert job["state"] == "done", job.get("error")
        assert job["result"]["frames_out"] == 2 * FRAMES
        result = client.get(f"/api/jobs/{job['id']}/result")
    output = server.data_dir.parent / "minterpolate.mp4"
    output.write_bytes(result.content)
    with av.open(str(output)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 2 * FRAMES


def _server_paths(text: str, data_dir: Path) -> list[str]:
    """The data folder, or any absolute path whose first folder exists on this machine."""
    roots = "|".join(re.escape(name) for name in os.listdir("/") if name not in ("api", "static"))
    found = re.findall(rf"(?<![\w.~/-])/(?:{roots})(?:/[^\s\"',;:()]*)?(?=[\s\"',;:()/]|$)", text)
    return found + [form for form in {str(data_dir), os.path.realpath(data_dir)} if form in text]


def test_no_response_or_event_names_a_server_path(server, media) -> None:
    """An MPEG-TS clip with one keyframe passes the list (its seeks find no frame: the
    probe reads it from the start): the warnings, the job, its events and its end go out
    without this machine's paths. (Guard's scrubber on a path-bearing text:
    test_the_scrubber_leaves_urls_and_takes_paths.)"""
    from vx_engine import api

    clip = media["one_gop_ts"]
    assert api.probe(clip, fast=True)["sampled_from_start"]
    bodies = []
    with server.client() as client:
        answer = _upload(client, clip, {"start": False, "sr": None})
        bodies.append(answer.text)
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        assert answer.json()["warnings"], answer.text  # the probe's own lines go out too
        bodies.append(client.post(f"/api/jobs/{job_id}/start", json={}).text)
        with client.stream("GET", f"/api/jobs/{job_id}/events") as events:
            bodies += [line for line in events.iter_lines() if line.startswith("data:")]
        assert json.loads(bodies[-1][5:])["state"] in TERMINAL
        bodies += [client.get(f"/api/jobs/{job_id}").text, client.get("/api/jobs").text]
    for body in bodies:
        assert _server_paths(body, server.data_dir) == [], body


def test_the_scrubber_leaves_urls_and_takes_paths(tmp_path: Path) -> None:
    from vx_engine.server.guard import PathScrubber

    data = tmp_path / "data"
    scrub = PathScrubber(data)
    message = f"could not measure: '{data}/uploads/1.part'; model /usr/lib/x.onnx; see /api/jobs/1"
    clean = scrub(message.encode()).decode()
    assert clean == ("could not measure: 'the upload'; model …/x.onnx; see /api/jobs/1")
    assert _server_paths(clean, data) == []
    image = b'{"before": "data:image/png;base64,iVBO+/usr/b9=", "at": "/tmp"}'
    assert scrub(image) == image.replace(b"/tmp", "…/tmp".encode())  # base64 untouched


def test_field_deinterlacing_is_priced_at_the_plans_rate() -> None:
    """bwdif:field makes a frame of every field: the output rate and frame count double,
    as make_plan's out_fps says."""
    from vx_engine.plan import make_plan
    from vx_engine.server.job_settings import JobSettings
    from vx_engine.server.limits import Header, JobLimits, LimitError, check_job

    settings = JobSettings(sr=None, vfi="blend", interp=2, deinterlace="bwdif:field")
    plan = make_plan(settings.to_run_options(Path("in.mp4"), Path("o.mp4")), 64, 48, 25, "ort-cpu")
    assert plan.out_fps == 100
    header = Header(64, 48, Fraction(25), 10, 0.4)
    check_job(settings, header, JobLimits(10**9, 10**9, 40, 60.0, max_fps=100))
    with pytest.raises(LimitError, match=r"100 fps .*bwdif:field.* limit of 99 fps"):
        check_job(settings, header, JobLimits(10**9, 10**9, 40, 60.0, max_fps=99))
    with pytest.raises(LimitError, match="40 output frames"):
        check_job(settings, header, JobLimits(10**9, 10**9, 39, 60.0, max_fps=100))
