// remaster studio: the page. Plain JavaScript, no libraries, nothing fetched from elsewhere.
// The server holds the state (project.json); the page shows it and sends each edit as it is made.
"use strict";

const $ = (id) => document.getElementById(id);
let studio = null; // /api/state
let frame = 0;
let frameState = null; // /api/frame/N
let images = {}; // view name -> decoded Image of the current frame
let version = 0; // bumps after each edit, so the steered picture is asked for again
let pending = 0;
let stroke = null; // [[x, y], ...] while a stroke is being painted
let carryFrames = [];
let carryTimer = null;

function busy(delta) {
  pending += delta;
  document.body.dataset.busy = pending > 0 ? "1" : "0";
}

function say(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

async function api(path, options = {}) {
  busy(1);
  try {
    const reply = await fetch(path, { credentials: "same-origin", ...options });
    const kind = reply.headers.get("Content-Type") || "";
    const body = kind.includes("json") ? await reply.json() : reply;
    if (!reply.ok) throw new Error(body.error || reply.statusText);
    return body;
  } finally {
    busy(-1);
  }
}

const post = (path, value) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(value || {}) });

async function guarded(work) {
  try {
    await work();
  } catch (error) {
    say(error.message, true);
  }
}

function image(src) {
  busy(1);
  const img = new Image();
  img.src = src;
  return img.decode().then(() => img).finally(() => busy(-1));
}

const view = () => document.querySelector("input[name=view]:checked").value;
const tool = () => document.querySelector("input[name=tool]:checked").value;

function wanted() {
  const names = view() === "split" ? ["automatic", "steered"] : [view()];
  if ($("overlay").checked && frameState && frameState.reference) names.push("reference");
  return names;
}

async function loadImages(names) {
  const loaded = await Promise.all(names.map((n) => image(`/api/frame/${frame}/${n}.png?v=${version}`)));
  names.forEach((n, i) => (images[n] = loaded[i]));
}

function draw() {
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  const { width, height } = studio.source.sizes ? studio.source.sizes[frame] : studio.source;
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = $("marks").width = width;
    canvas.height = $("marks").height = height;
  }
  fit();
  $("split").hidden = view() !== "split";
  if (view() === "split") {
    const x = Math.round((width * $("split").value) / 100);
    ctx.drawImage(images.automatic, 0, 0);
    ctx.drawImage(images.steered, x, 0, width - x, height, x, 0, width - x, height);
    ctx.fillStyle = "#fff";
    ctx.fillRect(x, 0, 1, height);
  } else {
    ctx.drawImage(images[view()], 0, 0);
  }
  if ($("overlay").checked && images.reference && frameState.reference) {
    ctx.globalAlpha = 0.5;
    ctx.drawImage(images.reference, 0, 0);
    ctx.globalAlpha = 1;
  }
  drawMarks();
  document.body.dataset.drawn = String(Number(document.body.dataset.drawn || 0) + 1);
}

function fit() {
  // The picture as large as the page allows (a small film scaled up, pixels kept square).
  const canvas = $("view");
  const top = $("canvases").getBoundingClientRect().top + window.scrollY;
  const room = [$("stage").clientWidth, Math.max(120, window.innerHeight - top - 40)];
  const scale = Math.min(room[0] / canvas.width, room[1] / canvas.height);
  canvas.style.width = `${Math.floor(canvas.width * scale)}px`;
  canvas.style.height = `${Math.floor(canvas.height * scale)}px`;
}

function drawMarks() {
  // Clicks and strokes on a canvas of their own over the picture: the picture's pixels stay the network's.
  const marks = $("marks");
  const ctx = marks.getContext("2d");
  ctx.clearRect(0, 0, marks.width, marks.height);
  const r = Math.max(2, marks.width / 160);
  const edits = (frameState ? frameState.edits : []).concat(stroke ? [{ op: "stroke", points: stroke, color: $("color").value }] : []);
  for (const edit of edits) {
    ctx.strokeStyle = edit.color;
    ctx.fillStyle = edit.color;
    ctx.lineWidth = r;
    if (edit.op === "point") {
      ctx.beginPath();
      ctx.arc(edit.x, edit.y, r * 1.5, 0, 2 * Math.PI);
      ctx.lineWidth = r / 2;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
      continue;
    }
    ctx.beginPath();
    edit.points.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    ctx.globalAlpha = 0.6;
    ctx.stroke();
    ctx.globalAlpha = 1;
  }
}

function showFrameState() {
  const s = frameState;
  $("undo").disabled = !s.undo;
  $("redo").disabled = !s.redo;
  $("edits").textContent = `${s.edits.length} edit${s.edits.length === 1 ? "" : "s"}`;
  $("keyframe").textContent = s.keyframe ? "Unmark keyframe" : "Mark keyframe";
  $("keyframe").classList.toggle("on", s.keyframe);
  $("frame-label").textContent = studio.source.names
    ? `${frame + 1}/${studio.source.frames}: ${studio.source.names[frame]}`
    : `frame ${frame} of ${studio.source.frames}`;
  $("registration").textContent = s.registration ? describeRegistration(s) : s.reference ? "reference (not registered)" : "";
  $("reference-use").value = s.reference_use || $("reference-use").value;
  $("keyframes").textContent = studio.keyframes.length ? `keyframes: ${studio.keyframes.join(", ")}` : "no keyframes yet";
  document.querySelectorAll("#shots figure").forEach((figure, k) => {
    const [start, end] = studio.source.shots[k];
    figure.classList.toggle("current", start <= frame && frame < end);
    figure.classList.toggle("keyed", studio.keyframes.some((f) => start <= f && f < end));
  });
}

function describeRegistration(s) {
  // Where the reference landed, as `--keyframes` reports it: its frame, the transform, the fit, the coverage.
  const r = s.registration;
  const signed = (v) => (v >= 0 ? "+" : "") + v.toFixed(1);
  const matched = r.dropped_on === s.frame ? `on frame ${s.frame}` : `matched to frame ${s.frame} (dropped on ${r.dropped_on})`;
  return (
    `${matched}, similarity ${r.similarity.toFixed(3)}; scale ${r.scale[0].toFixed(3)}\u00d7${r.scale[1].toFixed(3)}, ` +
    `shift ${signed(r.shift[0])},${signed(r.shift[1])} px, rotation ${r.rotation.toFixed(2)}\u00b0, ` +
    `residual ${r.residual.toFixed(2)} px${r.refined ? " (refined)" : ""}, covers ${Math.round(100 * r.coverage)}%`
  );
}

async function setFrame(index) {
  frame = Math.max(0, Math.min(studio.source.frames - 1, index));
  $("scrubber").value = frame;
  frameState = await api(`/api/frame/${frame}`);
  images = {};
  showFrameState();
  await loadImages(wanted());
  draw();
}

async function refresh(state) {
  // After an edit: the frame's state from the server, and the steered picture again.
  frameState = state;
  version += 1;
  showFrameState();
  const names = wanted().filter((n) => n === "steered" || n === "reference" || !images[n]);
  if (!names.includes("steered") && view() !== "gray") names.push("steered");
  await loadImages([...new Set(names)]);
  draw();
}

function framePoint(event) {
  const rect = $("marks").getBoundingClientRect();
  const x = ((event.clientX - rect.left) * $("marks").width) / rect.width;
  const y = ((event.clientY - rect.top) * $("marks").height) / rect.height;
  return [Math.min($("marks").width - 0.01, Math.max(0, x)), Math.min($("marks").height - 0.01, Math.max(0, y))];
}

function edit(value) {
  return guarded(async () => refresh(await post(`/api/frame/${frame}/edit`, { color: $("color").value, ...value })));
}

function setupCanvas() {
  const marks = $("marks");
  marks.addEventListener("pointerdown", (event) => {
    if (tool() !== "stroke") return;
    marks.setPointerCapture(event.pointerId);
    stroke = [framePoint(event)];
  });
  marks.addEventListener("pointermove", (event) => {
    if (!stroke) return;
    const [x, y] = framePoint(event);
    const [px, py] = stroke[stroke.length - 1];
    if (Math.hypot(x - px, y - py) >= 2 && stroke.length < 500) {
      stroke.push([x, y]);
      drawMarks();
    }
  });
  marks.addEventListener("pointerup", () => {
    if (!stroke) return;
    const points = stroke;
    stroke = null;
    edit({ op: "stroke", points });
  });
  marks.addEventListener("click", (event) => {
    if (tool() !== "point") return;
    const [x, y] = framePoint(event);
    edit({ op: "point", x, y });
  });
}

function action(name) {
  return guarded(async () => refresh(await post(`/api/frame/${frame}/${name}`)));
}

async function markKeyframe() {
  await guarded(async () => {
    frameState = await post(`/api/frame/${frame}/keyframe`, { marked: !frameState.keyframe });
    studio = await api("/api/state");
    showFrameState();
    say(frameState.keyframe ? `frame ${frame} is a keyframe` : `frame ${frame} is no longer a keyframe`);
  });
}

async function dropReference(file) {
  await guarded(async () => {
    const use = $("reference-use").value;
    say("matching and registering the reference...");
    const state = await api(`/api/frame/${frame}/reference?use=${use}`, { method: "POST", body: file });
    $("overlay").checked = true;
    version += 1;
    if (state.frame !== frame) await setFrame(state.frame);
    else await refresh(state);
    say(`reference on frame ${frame}, used ${use === "colors" ? "as its colors" : "as hints"}`);
  });
}

async function useReference() {
  if (!frameState || !frameState.reference) return;
  await guarded(async () => refresh(await post(`/api/frame/${frame}/use`, { use: $("reference-use").value })));
}

async function previewCarry() {
  await guarded(async () => {
    say("previewing the carry...");
    document.body.dataset.preview = "";
    const reply = await post("/api/preview", { frame });
    const stamp = Date.now();
    carryFrames = await Promise.all([...Array(reply.frames).keys()].map((k) => image(`/api/preview/${k}.png?v=${stamp}`)));
    const canvas = $("carry");
    canvas.width = carryFrames[0].width;
    canvas.height = carryFrames[0].height;
    let k = 0;
    const show = () => {
      canvas.getContext("2d").drawImage(carryFrames[k], 0, 0);
      k = (k + 1) % carryFrames.length;
    };
    clearInterval(carryTimer);
    show(); // the first frame at once, then the rest at the film's rate, looping
    carryTimer = setInterval(show, 1000 / Math.min(60, reply.fps));
    document.body.dataset.preview = String(reply.frames);
    say(`the carry over ${reply.frames} frames, looping`);
  });
}

async function render() {
  await guarded(async () => {
    const workers = Number($("workers").value) || 1;
    await post("/api/render", { preset: $("preset").value, codec: $("codec").value, workers });
    poll();
  });
}

async function stopRender() {
  await guarded(async () => showRender(await post("/api/render/stop")));
}

function showRender(state) {
  // The render as the server counts it: frames, rate, time left; the output's path at the end.
  document.body.dataset.render = state.state;
  const running = state.state === "running";
  $("render").disabled = running;
  $("stop").hidden = !running;
  if (state.total) $("render-bar").value = (state.done || 0) / state.total;
  const what = running && state.phase && state.phase !== "colorizing" ? `${state.phase}` : state.state;
  const parts = [`${what}: ${state.done || 0}/${state.total || "?"} frames`];
  if (state.fps) parts.push(`${state.fps.toFixed(1)} fps`);
  if (state.left) parts.push(`${state.left} left`);
  if (state.resumed) parts.push(`${state.resumed} frames continued from the stopped render`);
  if (state.workers > 1) parts.push(`${state.workers} workers`);
  if (state.output) parts.push(`output: ${state.output}`);
  if (state.note) parts.push(state.note);
  if (state.error) parts.push(state.error);
  $("render-status").textContent = parts.join(", ");
  $("render-status").className = state.state === "failed" ? "error" : "dim";
}

async function poll() {
  // Every half second while the render runs; a failed poll (the server busy, a dropped connection) is retried.
  try {
    const state = await api("/api/render");
    showRender(state);
    if (state.state === "running") setTimeout(poll, 500);
  } catch (error) {
    say(error.message, true);
    setTimeout(poll, 2000);
  }
}

function buildShots() {
  const nav = $("shots");
  nav.replaceChildren();
  studio.source.shots.forEach(([start, end], k) => {
    const figure = document.createElement("figure");
    const img = document.createElement("img");
    img.src = `/api/thumb/${k}.png`;
    img.alt = `shot ${k + 1}`;
    const caption = document.createElement("figcaption");
    caption.textContent = studio.source.names ? studio.source.names[k] : `${start}\u2013${end - 1}`;
    figure.append(img, caption);
    figure.addEventListener("click", () => guarded(() => setFrame(start)));
    nav.append(figure);
  });
}

async function loaded() {
  // A long film is read through first (every frame's time, the shots, their thumbnails): its progress.
  for (;;) {
    studio = await api("/api/state");
    const source = studio.source;
    if (source.ready) return;
    const { done, total, shots } = source.loading;
    $("loading").hidden = false;
    if (total) $("loading-bar").value = Math.min(1, done / total);
    if (source.error) throw new Error(source.error);
    say(`reading the film: ${done}${total ? ` of about ${total}` : ""} frames, ${shots} shot${shots === 1 ? "" : "s"} so far`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

async function start() {
  await loaded();
  $("loading").hidden = true;
  $("name").textContent = studio.source.name;
  $("project").textContent = `project: ${studio.project}`;
  $("scrubber").max = studio.source.frames - 1;
  for (const name of [""].concat(studio.presets)) $("preset").add(new Option(name || "default preset", name));
  if (studio.pipeline) $("preset").value = studio.pipeline;
  if (studio.source.kind !== "film") {
    $("carry-box").hidden = true;
    $("keyframe").disabled = true;
    $("render").textContent = "Export";
  }
  buildShots();
  setupCanvas();
  $("scrubber").addEventListener("change", () => guarded(() => setFrame(Number($("scrubber").value))));
  $("scrubber").addEventListener("input", () => ($("frame-label").textContent = `frame ${$("scrubber").value}`));
  document.querySelectorAll("input[name=view]").forEach((input) =>
    input.addEventListener("change", () => guarded(async () => (await loadImages(wanted()), draw()))),
  );
  $("overlay").addEventListener("change", () => guarded(async () => (await loadImages(wanted()), draw())));
  window.addEventListener("resize", fit);
  $("split").addEventListener("input", () => view() === "split" && draw());
  $("undo").addEventListener("click", () => action("undo"));
  $("redo").addEventListener("click", () => action("redo"));
  $("clear").addEventListener("click", () => action("clear"));
  $("keyframe").addEventListener("click", markKeyframe);
  $("preview").addEventListener("click", previewCarry);
  $("render").addEventListener("click", render);
  $("stop").addEventListener("click", stopRender);
  $("workers").max = studio.workers.max;
  $("workers").value = studio.workers.default;
  $("reference-use").addEventListener("change", useReference);
  $("reference").addEventListener("change", () => $("reference").files[0] && dropReference($("reference").files[0]));
  $("canvases").addEventListener("dragover", (event) => event.preventDefault());
  $("canvases").addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer.files[0]) dropReference(event.dataTransfer.files[0]);
  });
  document.addEventListener("keydown", (event) => {
    if (!(event.ctrlKey || event.metaKey) || event.target.tagName === "INPUT") return;
    if (event.key.toLowerCase() === "z") action(event.shiftKey ? "redo" : "undo");
    else if (event.key.toLowerCase() === "y") action("redo");
    else return;
    event.preventDefault();
  });
  await setFrame(0);
  if (studio.render.state !== "idle") poll();
  say("click to place a color; drag in stroke mode to paint one");
}

busy(1);
guarded(start).finally(() => busy(-1));
