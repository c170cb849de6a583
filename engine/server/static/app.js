// vx-engine page: upload, follow progress over SSE, before/after preview, download.
// fetch() rather than EventSource/<a href> for API calls, because only fetch can send
// the bearer token header.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, jobId: null, resultUrl: null };

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function say(text, isError = false) {
  $("message").textContent = text;
  $("message").classList.toggle("error", isError);
}

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers || {}) } });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try { detail = (await response.json()).error || detail; } catch (_) { /* not JSON */ }
    throw new Error(detail);
  }
  return response;
}

async function loadModels() {
  try {
    const models = await (await api("/api/models")).json();
    $("sr").innerHTML = '<option value="">none</option>';
    $("vfi").innerHTML = "";
    for (const model of models) {
      const option = new Option(`${model.name} (x${model.scale})`, model.name);
      option.title = `${model.description} — ${model.licence}`;
      if (model.kind === "sr") $("sr").add(option); else $("vfi").add(new Option(model.name, model.name));
    }
    // classical FFmpeg stages after the models (engine/filters.py)
    for (const name of ["lanczos", "bicubic", "spline"]) $("sr").add(new Option(`${name} (FFmpeg)`, name));
    for (const name of ["blend", "minterpolate"]) $("vfi").add(new Option(`${name} (FFmpeg)`, name));
    if ($("sr").options.length > 1) $("sr").selectedIndex = 1;
    say("");
  } catch (error) {
    say(`Cannot list models: ${error.message}. Enter the API token if the server needs one.`, true);
  }
}

function chooseFile(file) {
  state.file = file;
  const size = file && (file.size < 2 ** 20 ? `${Math.ceil(file.size / 1024)} KiB`
    : `${(file.size / 2 ** 20).toFixed(1)} MiB`);
  $("drop-text").textContent = file ? `${file.name} (${size})` : "Drop a video here";
  $("start").disabled = !file;
}

function settings() {
  const options = { sr: $("sr").value || null };
  if ($("height").value) options.height = Number($("height").value);
  if ($("fps").value) { options.fps = $("fps").value; options.vfi = $("vfi").value || null; }
  if ($("pre").value) options.pre = [$("pre").value];
  if ($("post").value) options.post = [$("post").value];
  const strength = Number($("ai-strength").value);
  // a blend needs a model: the classical upscalers and "none" keep the default
  if (strength !== 1 && options.sr && !["lanczos", "bicubic", "spline"].includes(options.sr)) {
    options.ai_strength = strength;
  }
  return options;
}

function showProgress(event) {
  // 100 % only once the job is done: the last frame written still has to be flushed and muxed.
  const done = event.state === "done";
  const percent = done ? 100 : event.total ? Math.min(99, (100 * event.frame) / event.total) : 0;
  $("bar").value = percent;
  const parts = [`${Math.floor(percent)}%`, event.state];
  if (event.total) parts.push(`frame ${event.frame}/${event.total}`);
  if (event.fps) parts.push(`${event.fps.toFixed(1)} fps`);
  if (event.eta_s != null && event.state === "running") parts.push(`ETA ${Math.ceil(event.eta_s)} s`);
  $("progress-text").textContent = parts.join(" · ");
}

async function follow(jobId) {
  // Server-Sent Events read off a fetch stream; the server closes it after a terminal state.
  const response = await api(`/api/jobs/${jobId}/events`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (line.startsWith("data:")) { last = JSON.parse(line.slice(5)); showProgress(last); }
      }
    }
  }
  return last;
}

async function start() {
  $("start").disabled = true;
  const form = new FormData();
  form.append("options", JSON.stringify(settings()));
  form.append("file", state.file);
  say("Uploading…");
  try {
    const { id } = await (await api("/api/jobs", { method: "POST", body: form })).json();
    state.jobId = id;
    $("preview").disabled = false;
    $("delete").disabled = false;
    $("download").classList.add("hidden");
    say(`Job ${id} queued.`);
    const last = await follow(id);
    if (last && last.state === "done") { say("Done."); await offerDownload(id); }
    else say(`Job ended ${last ? last.state : "without news"}${last && last.error ? `: ${last.error}` : ""}`, true);
  } catch (error) {
    say(error.message, true);
  } finally {
    $("start").disabled = !state.file;
  }
}

async function offerDownload(jobId) {
  const link = $("download");
  if (!$("token").value.trim()) {
    link.href = `/api/jobs/${jobId}/result`;
  } else {  // a plain link cannot carry the token: fetch the video once and link the blob
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(await (await api(`/api/jobs/${jobId}/result`)).blob());
    link.href = state.resultUrl;
  }
  link.download = `vx-${jobId}.mp4`;
  link.classList.remove("hidden");
}

async function preview() {
  $("preview").disabled = true;
  say("Rendering a short preview…");
  try {
    const frames = await (await api(`/api/jobs/${state.jobId}/preview`, { method: "POST" })).json();
    $("before").src = frames.before;
    $("after").src = frames.after;
    $("compare").classList.remove("hidden");
    say(`Preview at ${frames.start_s} s, ${frames.width}×${frames.height}: drag the slider to compare.`);
  } catch (error) {
    say(`Preview failed: ${error.message}`, true);
  } finally {
    $("preview").disabled = false;
  }
}

async function remove() {
  try {
    await api(`/api/jobs/${state.jobId}`, { method: "DELETE" });
    say(`Job ${state.jobId} deleted.`);
    state.jobId = null;
    $("preview").disabled = $("delete").disabled = true;
    $("download").classList.add("hidden");
  } catch (error) { say(error.message, true); }
}

function setSplit() {
  $("after").style.clipPath = `inset(0 0 0 ${$("split").value}%)`;
  $("divider").style.left = `${$("split").value}%`;
}

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) chooseFile(event.dataTransfer.files[0]);
});
$("file").addEventListener("change", (event) => chooseFile(event.target.files[0] || null));
$("start").addEventListener("click", start);
$("preview").addEventListener("click", preview);
$("delete").addEventListener("click", remove);
$("split").addEventListener("input", setSplit);
$("token").addEventListener("change", loadModels);
loadModels();
