"""The server's parts without a server process: the job store's purge and its atomic
delete, the role names in messages, the cost of a classical upscaler, workers per GPU."""

from __future__ import annotations

import threading
import uuid


def test_purge_deletes_only_jobs_that_ended_before_the_cutoff(tmp_path):
    from vx_engine.server.jobs import JobStore

    store = JobStore(tmp_path / "data")
    try:
        ids = {}
        for name, state, finished_at in [
            ("old-done", "done", 100.0),
            ("old-failed", "failed", 100.0),
            ("old-cancelled", "cancelled", 100.0),
            ("new-done", "done", 300.0),
            ("queued", "queued", None),
            ("running", "running", None),
        ]:
            upload = store.new_upload_path()
            upload.write_bytes(b"video")
            job = store.create(upload, {}, f"{name}.mp4", {})
            store.update(job.id, state=state, finished_at=finished_at)
            ids[name] = job.id
        purged = store.purge_finished(200.0)
        assert sorted(purged) == sorted(ids[n] for n in ("old-done", "old-failed", "old-cancelled"))
        kept = {job.input_name for job in store.list()}
        assert kept == {"new-done.mp4", "queued.mp4", "running.mp4"}
        for name, job_id in ids.items():
            assert store.job_dir(job_id).exists() == (not name.startswith("old")), name
        assert store.count("queued") == 1 and store.count("done") == 1
    finally:
        store.close()


def test_worker_devices_spread_over_the_gpus():
    from vx_engine.server.worker import worker_devices

    assert worker_devices(1, 0) == [0]
    assert worker_devices(3, 0) == [0, 0, 0]  # CPU only: every worker on "device 0"
    assert worker_devices(4, 4) == [0, 1, 2, 3]
    assert worker_devices(5, 2) == [0, 1, 0, 1, 0]


def test_role_names_replace_server_paths(tmp_path):
    from vx_engine.server.jobs import JobStore, role_names

    store = JobStore(tmp_path / "data")
    try:
        job_id = str(uuid.uuid4())
        out = store.job_dir(job_id) / "preview-x.mp4"
        message = f"{store.input_path(job_id)} has no decodable frames; {out} not written"
        named = role_names(message, store, job_id, out)
        assert named == "the upload has no decodable frames; the preview output not written"
        assert str(tmp_path) not in named
    finally:
        store.close()


# -- issue 10: DELETE cannot race the worker's claim -----------------------------------
def test_delete_and_claim_are_atomic(tmp_path):
    from vx_engine.server.jobs import JobStore

    store = JobStore(tmp_path / "data")
    try:
        outcomes = set()
        for _ in range(150):
            upload = store.new_upload_path()
            upload.write_bytes(b"video")
            job = store.create(upload, {}, "a.mp4", {})
            gate, results = threading.Barrier(2), {}

            def claim(job_id: str = job.id, gate=gate, results=results) -> None:
                gate.wait()
                results["claimed"] = store.claim(job_id)

            thread = threading.Thread(target=claim)
            thread.start()
            gate.wait()
            results["deleted"] = store.delete(job.id)
            thread.join()
            outcome = (results["claimed"], results["deleted"])
            # claimed first -> delete saw it running (and the server waits for the worker);
            # deleted first -> the claim finds no row. Never "deleted as queued, then ran".
            assert outcome in {(True, "running"), (False, "queued")}, outcome
            outcomes.add(outcome)
        assert store.list() == []
    finally:
        store.close()


def test_a_classical_upscaler_is_costed_at_its_default_scale() -> None:
    """`sr: "lanczos"` is no registry model: the cost limits take the plan's 2x, no KeyError."""
    from vx_engine.server import limits
    from vx_engine.server.job_settings import JobSettings

    assert limits._sr_scale(JobSettings(sr="lanczos")) == 2
    assert limits._sr_scale(JobSettings(sr="realesr-animevideov3-x4")) == 4
    assert limits._sr_scale(JobSettings(sr="none")) == 1
