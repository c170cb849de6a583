// The live player: a running job's result, played from its HLS playlist
// (/api/jobs/{id}/live.m3u8, segments beside it) as the job's chunks finish, with the
// vendored hls.js (/static/hls/, no network needed). hls.js sends the page's bearer token
// on every playlist and segment request, as fetch() does for the rest of the API.
"use strict";

const LIVE_POLL_MS = 1000;
const live = { hls: null, jobId: null };

function liveSay(text) {
  document.getElementById("live-text").textContent = text;
}

async function livePlaylistReady(jobId, headers) {
  // a 404 until the job's first chunk is done: hls.js would take it for a fatal error
  try {
    const response = await fetch(`/api/jobs/${jobId}/live.m3u8`, { headers, cache: "no-store" });
    return response.ok;
  } catch (_) {
    return false;  // the server restarting: ask again
  }
}

// Plays job `jobId` from its first frame once its playlist exists; `headersOf()` gives
// the API's headers (the token). Returns at once when stopLive() is called meanwhile.
async function startLive(jobId, headersOf) {
  stopLive();
  live.jobId = jobId;
  const video = document.getElementById("live");
  document.getElementById("live-box").classList.remove("hidden");
  liveSay("waiting for the first finished chunk…");
  while (!(await livePlaylistReady(jobId, headersOf()))) {
    if (live.jobId !== jobId) return;
    await new Promise((resolve) => setTimeout(resolve, LIVE_POLL_MS));
  }
  if (live.jobId !== jobId) return;
  const url = `/api/jobs/${jobId}/live.m3u8`;
  const headers = headersOf();
  if (window.Hls && Hls.isSupported()) {
    const hls = new Hls({
      enableWorker: false,  // the page's CSP allows no blob: worker; one small rendition
      startPosition: 0,  // the job's result from its start, not from the live edge
      xhrSetup: (xhr, requestUrl) => {
        xhr.open("GET", requestUrl, true);
        for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      },
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => { /* needs a click */ }));
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (data.fatal) liveSay(`the live stream stopped: ${data.details}`);
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    live.hls = hls;
  } else if (video.canPlayType("application/vnd.apple.mpegurl") && !Object.keys(headers).length) {
    video.src = url;  // the browser's own HLS (Safari): it cannot send a token
    video.play().catch(() => { /* needs a click */ });
  } else {
    liveSay("this browser cannot play the live stream; the result can be downloaded when done");
    return;
  }
  liveSay("the result so far, growing as the job's chunks finish");
}

// The player let go: for a job that failed, was cancelled or deleted, or a new upload.
function stopLive() {
  live.jobId = null;
  if (live.hls) live.hls.destroy();
  live.hls = null;
  const video = document.getElementById("live");
  video.removeAttribute("src");
  video.load();
  document.getElementById("live-box").classList.add("hidden");
}
