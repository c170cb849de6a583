"""The server plans a job once per upload: its settings pass the checks that need no source
(``vx_engine.plan.check_options``, as the CLI's), and the upload is planned once, at its
own size (``vx_engine.server.memory_check``). The real app in this process, real uploads;
``make_plan`` is the real one, counted."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from media import make_clip

import vx_engine.plan

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
TOKEN = "plans-once-token"


@pytest.fixture
def client(tmp_path: Path):
    from fastapi.testclient import TestClient

    from vx_engine.server.app import create_app
    from vx_engine.server.limits import JobLimits

    # limits that pass any test clip: what is refused here is the plan's refusal
    limits = JobLimits(10**9, 10**9, 10**6, 3600.0)
    app = create_app(tmp_path / "data", token=TOKEN, keep_finished_s=None, limits=limits)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as running:
        yield running


@pytest.fixture
def plans(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (width, height) of every make_plan call, each made by the real make_plan."""
    calls: list[tuple[int, int]] = []
    real = vx_engine.plan.make_plan

    def counted(options, width: int, height: int, in_fps: Fraction, backend=None):
        calls.append((width, height))
        return real(options, width, height, in_fps, backend)

    monkeypatch.setattr(vx_engine.plan, "make_plan", counted)
    return calls


def upload(client, clip: Path, options: dict):
    with clip.open("rb") as video:
        return client.post(
            "/api/jobs",
            files={"file": (clip.name, video, "video/x-matroska")},
            data={"options": json.dumps(options)},
        )


def test_an_upload_is_planned_once_at_its_own_size(client, plans, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mkv"
    make_clip(clip, frames=4, width=96, height=64)
    # classical stages too: their FFmpeg graphs are checked without a plan
    settings = {"sr": "lanczos", "height": 128, "pre": ["nlmeans:s=3"], "post": ["cas"]}
    # "start": false keeps the worker from running (and planning) the job meanwhile
    response = upload(client, clip, {**settings, "start": False})
    assert response.status_code == 201, response.text
    assert plans == [(96, 64)]
    job = client.get(f"/api/jobs/{response.json()['id']}").json()
    assert job["state"] == "ready" and job["settings"]["pre"] == ["nlmeans:s=3"]


def test_what_only_the_uploads_size_refuses_is_one_plan_naming_keys(
    client, plans, tmp_path: Path
) -> None:
    clip = tmp_path / "wide.mkv"  # x8 is 8192x4608: beyond 8K at this size, not at others
    make_clip(clip, frames=2, width=1024, height=576)
    response = upload(client, clip, {"sr": None, "scale": 8})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "8192x4608 is larger than 8K" in error and "lower scale/width/height" in error
    assert plans == [(1024, 576)]
    assert client.get("/api/jobs").json() == []


def test_settings_are_checked_before_any_plan(client, plans, tmp_path: Path) -> None:
    clip = tmp_path / "clip.mkv"
    make_clip(clip, frames=2, width=96, height=64)
    for bad, expected in (
        ({"scale": 2, "height": 720}, "give scale or width/height, not both"),
        ({"post": ["unsharp:lx=4"]}, "its options: lx"),
        ({"sr": None, "interp": 2}, "need a frame-interpolation model"),
    ):
        response = upload(client, clip, bad)
        assert response.status_code == 422 and expected in response.json()["error"], bad
    assert plans == []
