// vx-engine page: upload (start: false) -> probe warnings -> settings -> one-moment
// preview (split slider) -> start -> progress over SSE, the result playing as it is made
// (live.js) -> download. Settings changed after the upload go with each preview and with
// the start: the video is uploaded once.
// Server data goes into the page through textContent / attributes, never innerHTML.
// fetch() rather than EventSource/<a href> for API calls, because only fetch can send
// the bearer token header.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, jobId: null, resultUrl: null, busy: false };
const CLASSICAL_SR = ["lanczos", "bicubic", "spline"];

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
    $("sr").replaceChildren(new Option("none", ""));
    const auto = new Option("auto (chosen by the source)", "auto");
    auto.title = "the best measured upscaler for the source's content and compression";
    $("sr").add(auto);
    $("vfi").replaceChildren();
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
  state.jobId = null;  // a new file is a new job
  $("upload").disabled = !file;
  $("preview").disabled = $("start").disabled = true;
  $("probe").classList.add("hidden");
}

function settings() {
  // Every key explicit: the server applies these over the job's stored settings.
  const sr = $("sr").value || null;
  const options = {
    sr,
    height: $("height").value ? Number($("height").value) : null,
    fps: $("fps").value || null,
    vfi: $("fps").value ? $("vfi").value || null : null,
    pre: $("pre").value ? [$("pre").value] : [],
    post: $("post").value ? [$("post").value] : [],
    denoise: $("denoise").value || null,
    deinterlace: $("deinterlace").value,
    ivtc: $("ivtc").value,
    ai_strength: sr === "auto" ? "auto" : 1,
    quality: $("quality").value,
  };
  const strength = Number($("ai-strength").value);
  // a blend needs a model: the classical upscalers and "none" keep the default
  if (strength !== 1 && sr && !CLASSICAL_SR.includes(sr)) options.ai_strength = strength;
  return options;
}

function showWarnings(warnings) {
  const list = $("warnings");
  list.replaceChildren();
  for (const warning of warnings) {
    const item = document.createElement("li");
    item.className = "warn";
    item.dataset.code = warning.code;
    item.textContent = `${warning.code}: ${warning.message}`;
    list.append(item);
  }
  if (!warnings.length) {
    const item = document.createElement("li");
    item.className = "ok";
    item.textContent = "no warnings: nothing in the source that defeats enhancement";
    list.append(item);
  }
  $("probe").classList.remove("hidden");
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

async function upload() {
  $("upload").disabled = true;
  const form = new FormData();
  form.append("options", JSON.stringify({ ...settings(), start: false }));
  form.append("file", state.file);
  say("Uploading and probing…");
  try {
    const job = await (await api("/api/jobs", { method: "POST", body: form })).json();
    state.jobId = job.id;
    showWarnings(job.warnings || []);
    $("preview").disabled = $("start").disabled = $("delete").disabled = false;
    $("download").classList.add("hidden");
    $("progress-text").textContent = "ready: not started";
    say(`Uploaded (job ${job.id}, ready). Preview the settings, then Start.`);
  } catch (error) {
    say(error.message, true);
    $("upload").disabled = !state.file;
  }
}

async function start() {
  $("start").disabled = $("upload").disabled = true;
  say("Starting…");
  try {
    await api(`/api/jobs/${state.jobId}/start`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(settings()),
    });
    say(`Job ${state.jobId} queued.`);
    startLive(state.jobId, authHeaders);
    const last = await follow(state.jobId);
    if (last && last.state === "done") { say("Done."); await offerDownload(state.jobId); return; }
    stopLive();  // the live stream of a failed or cancelled job ends without its ENDLIST
    say(`Job ended ${last ? last.state : "without news"}${last && last.error ? `: ${last.error}` : ""}`, true);
  } catch (error) {
    say(error.message, true);
    $("start").disabled = false;  // still ready: a refused start can be retried
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
  say("Rendering the preview…");
  const asked = { ...settings(), baseline: $("baseline").value };
  if ($("at").value !== "") asked.at_s = Number($("at").value);
  try {
    const frames = await (await api(`/api/jobs/${state.jobId}/preview`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(asked),
    })).json();
    $("before").src = frames.before;
    $("before").alt = `before (${frames.baseline})`;
    $("after").src = frames.after;
    $("compare").classList.remove("hidden");
    $("halfway-box").classList.toggle("hidden", !frames.halfway);
    if (frames.halfway) {
      $("halfway").src = frames.halfway;
      $("halfway-text").textContent = `interpolated at ${frames.halfway_at_s} s, halfway to the next source frame`;
    }
    if (frames.warnings) showWarnings(frames.warnings);
    const when = frames.at_s ?? frames.start_s;
    say(`Preview at ${when} s, ${frames.width}×${frames.height}` +
      (frames.elapsed_s != null ? ` in ${frames.elapsed_s} s` : "") +
      `: before = ${frames.baseline || "bicubic"}, after = your settings; drag the slider to compare.`);
  } catch (error) {
    say(`Preview failed: ${error.message}`, true);
  } finally {
    $("preview").disabled = !state.jobId;
  }
}

async function remove() {
  try {
    await api(`/api/jobs/${state.jobId}`, { method: "DELETE" });
    stopLive();
    say(`Job ${state.jobId} deleted.`);
    state.jobId = null;
    $("preview").disabled = $("delete").disabled = $("start").disabled = true;
    $("upload").disabled = !state.file;
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
$("upload").addEventListener("click", upload);
$("start").addEventListener("click", start);
$("preview").addEventListener("click", preview);
$("delete").addEventListener("click", remove);
$("split").addEventListener("input", setSplit);
$("token").addEventListener("change", loadModels);
loadModels();
