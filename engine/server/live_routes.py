"""A job's result while it is made: ``GET /api/jobs/{id}/live.m3u8`` and its segments.

The worker runs every job with ``RunOptions.live`` set to the job's ``live`` folder
(``worker.live_dir``), where the run writes an HLS playlist (``EXT-X-PLAYLIST-TYPE:EVENT``,
``EXT-X-ENDLIST`` once the job is done) and its MPEG-TS segments ``live_NNNNN.ts``, each
complete before the playlist lists it. The playlist's URIs are bare file names, so they
resolve to the segment route beside it. Both routes sit under ``/api``: ``Guard``'s
token, Host and Origin rules apply as to every other job route.

Before the first segment is written there is no playlist: a 404 that says so (the page
waits for a 200 before it attaches its player). Segment names are matched digit by
digit and rebuilt from the digits, so no request names any other file.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from vx_engine.server.context import context_of
from vx_engine.server.worker import live_dir

PLAYLIST_NAME = "live.m3u8"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
SEGMENT_TYPE = "video/mp2t"
# live_00000.ts ... : five digits and more, as many as the writer needs
SEGMENT_DIGITS = r"^[0-9]{5,9}$"
router = APIRouter()


def _not_yet(job_id: str, state: str, what: str) -> HTTPException:
    return HTTPException(
        404,
        f"job {job_id} ({state}) has no {what} yet; the live playlist appears once the"
        " job's first chunk is finished",
    )


@router.get(
    "/jobs/{job_id}/live.m3u8",
    summary="The job's result as it is made: an HLS EVENT playlist (404 before its first segment)",
    response_class=Response,
    responses={200: {"content": {PLAYLIST_TYPE: {}}}},
)
def live_playlist(job_id: str, request: Request) -> Response:
    server = context_of(request)
    job = server.get_job(job_id)
    try:
        text = (live_dir(server.store, job.id) / PLAYLIST_NAME).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise _not_yet(job.id, job.state, "live playlist") from None
    # it grows until EXT-X-ENDLIST: every reload must reach the server
    return Response(text, media_type=PLAYLIST_TYPE, headers={"Cache-Control": "no-store"})


@router.get(
    "/jobs/{job_id}/live_{number}.ts",
    summary="One MPEG-TS segment of the job's live playlist",
    response_class=FileResponse,
    responses={200: {"content": {SEGMENT_TYPE: {}}}},
)
def live_segment(
    job_id: str,
    request: Request,
    number: str = PathParam(pattern=SEGMENT_DIGITS, description="the segment's number, 00000 on"),
) -> FileResponse:
    server = context_of(request)
    job = server.get_job(job_id)
    segment = live_dir(server.store, job.id) / f"live_{number}.ts"
    if not segment.is_file():
        raise _not_yet(job.id, job.state, f"segment live_{number}.ts")
    # a listed segment never changes, and job ids are never reused
    return FileResponse(
        segment, media_type=SEGMENT_TYPE, headers={"Cache-Control": "private, max-age=86400"}
    )
