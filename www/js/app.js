// The page's glue: reads the controls, calls the library (wasm) and shows the results.
// The work itself lives in the Rust library; this file only wires it to the page and keeps
// what the visitor made in browser storage. SAM, training and segmentation run in a worker
// (worker.js, its own instance of the library), so no GPU work blocks this thread; the
// synthesizer runs here, one short pair per call, yielding to the browser in between.

import * as store from "./store.js";
import { GpuWorker } from "./gpu.js";
import { fullScreenOnFirstTap, runKiosk } from "./kiosk.js";

const NORMAL_SAMPLES = [
  { file: "deeppcb-12000001-normal.jpg", label: "DeepPCB 12000001" },
  { file: "deeppcb-20085295-normal.jpg", label: "DeepPCB 20085295" },
  { file: "deeppcb-44000012-normal.jpg", label: "DeepPCB 44000012" },
  { file: "pku-01-normal.jpg", label: "PKU board 01 (colour)" },
];
export const DEFECTIVE_SAMPLES = [
  { file: "deeppcb-12000001-defective.jpg", label: "DeepPCB 12000001 (tested)" },
  { file: "deeppcb-44000012-defective.jpg", label: "DeepPCB 44000012 (tested)" },
];
const MAX_SIDE = 1024;
const params = new URLSearchParams(location.search);

export const $ = (id) => document.getElementById(id);
/** Let the browser paint and handle input between pieces of work. */
export const yieldToBrowser = () => new Promise((resolve) => setTimeout(resolve, 0));
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Everything the page holds; the kiosk drives the same object. */
export const app = {
  wasm: null, // the library on this thread: the synthesizer and header checks
  gpu: null, // GpuWorker: SAM, adapters, training and segmentation
  backend: "cpu",
  adapterName: null,
  model: null, // { name, image_size, encoder_width, encoder_depth, sha256, backend }
  synthesizer: null,
  normals: [], // { name, index }
  synthesizing: false,
  boardGeneration: 0, // counts Clear boards, so that an upload under way stops
  pairs: [], // { id, name, seed, heldOut, width, defects, fingerprint, image, mask }
  adapters: null, // { k, epochs, ... } of the adapters in use
  adaptersTrained: false,
  training: null, // { paused, onStep, onEpoch, onPaused }
  segmented: null, // { name, imageUrl, width, height, summary }
  longTasks: [], // [start ms, duration ms] while training
};

const SIZE_KEY = "pcb-pros-image-size";

// ---------------------------------------------------------------- messages

export function messageOf(e) {
  const text = e && e.message ? e.message : String(e);
  if (e instanceof WebAssembly.RuntimeError || /unreachable/.test(text)) {
    return (
      `The WebAssembly module stopped (${text}): the GPU device may have been lost or memory ` +
      "ran out. Reload the page; your synthetic pairs and adapters are kept in this browser. " +
      "A smaller input size or fewer pairs needs less memory."
    );
  }
  return text;
}

/**
 * Show `message`. With `until` ("training" or "segmenting"), it is a refusal while that
 * work runs: it goes away by itself when the work ends, and is not kept for a reload.
 */
export function showError(message, until = "") {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  box.dataset.until = until;
  if (!until) store.rememberError(message);
}

export function clearError() {
  $("error").hidden = true;
}

/** A refusal because `until` ("training", "segmenting") is running. */
class BusyError extends Error {
  constructor(message, until) {
    super(message);
    this.until = until;
  }
}

/** `work` has ended: its refusals no longer hold. */
function workEnded(work) {
  if ($("error").dataset.until === work) clearError();
}

function showEarlierErrors() {
  const earlier = store.earlierErrors();
  const box = $("earlier-errors");
  if (earlier.length === 0) return;
  box.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = "Messages from before the last reload:";
  const list = document.createElement("ul");
  for (const { time, message } of earlier) {
    const li = document.createElement("li");
    li.textContent = `${time}: ${message}`;
    list.append(li);
  }
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.addEventListener("click", () => {
    store.forgetErrors();
    box.hidden = true;
  });
  box.append(title, list, dismiss);
  box.hidden = false;
}

function setStatus(id, text) {
  $(id).textContent = text;
}

const mb = (bytes) => (bytes / 1048576).toFixed(1);

function pngUrl(bytes) {
  return URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
}

function imageType(bytes) {
  return bytes[0] === 0x89 && bytes[1] === 0x50 ? "image/png" : "image/jpeg";
}

function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// ---------------------------------------------------------------- backend

async function detectBackend() {
  const status = $("gpu-status");
  let info = { webgpu: false, reason: "not checked" };
  try {
    info = await app.gpu.call("gpuInfo");
  } catch (e) {
    info = { webgpu: false, reason: messageOf(e) };
  }
  if (info.webgpu && !params.has("cpu")) {
    app.backend = "webgpu";
    app.adapterName = info.adapter;
    status.textContent = `WebGPU available: ${info.adapter}. SAM runs on this adapter.`;
    status.className = "status ok";
  } else {
    app.backend = "cpu";
    const why = params.has("cpu") ? "the page was opened with ?cpu" : info.reason;
    status.textContent =
      `WebGPU unavailable (${why}): SAM runs on the CPU in WebAssembly. This is slow (a ` +
      "training step of ViT-B takes minutes), so training is limited to short runs here; " +
      "use a browser with WebGPU for real training.";
    status.className = "status warn";
  }
  document.body.dataset.backend = app.backend;
}

// ---------------------------------------------------------------- weights

async function download(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: the server answered ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get("content-length")) || 0;
  const bar = $("weights-progress");
  bar.hidden = false;
  bar.max = total || 1;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  const started = performance.now();
  let shown = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    const now = performance.now();
    if (now - shown > 100) {
      shown = now;
      bar.value = total ? received : 0;
      const rate = received / 1048576 / Math.max(0.001, (now - started) / 1000);
      setStatus(
        "weights-status",
        `Downloading ${url}: ${mb(received)}${total ? ` of ${mb(total)}` : ""} MB at ${rate.toFixed(1)} MB/s`,
      );
    }
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  bar.value = bar.max;
  return bytes;
}

/** Show a model the worker loaded, with the adapters it found for it. */
function modelLoaded(loaded, name, seconds) {
  app.model = loaded.info;
  const info = app.model;
  $("model-info").textContent =
    `SAM ${info.name} at ${info.image_size}x${info.image_size} input, encoder ${info.encoder_width} wide and ` +
    `${info.encoder_depth} blocks deep, on ${info.backend}${app.adapterName ? ` (${app.adapterName})` : ""}; ` +
    `weights SHA-256 ${info.sha256.slice(0, 16)}…`;
  setStatus("weights-status", `Loaded ${name} in ${seconds} s.`);
  clearError();
  try {
    localStorage.setItem(SIZE_KEY, String(info.image_size));
  } catch {
    // storage off: the size field keeps its default next time
  }
  if (loaded.storeError) showError(loaded.storeError);
  showAdapters(loaded.adapters);
}

/**
 * Load SAM in the worker, from the bytes of a weights file (handed over to the worker:
 * `bytes` is empty afterwards), kept in storage when `keep`; or, with `bytes` null, from
 * the weights kept in storage. Resolves to whether a model was loaded.
 */
export async function loadWeights(bytes, { name, source, keep }) {
  const size = Number($("image-size").value) || 256;
  const what = bytes ? `${name} (${mb(bytes.length)} MB)` : "the weights kept in this browser";
  setStatus("weights-status", `Loading SAM from ${what} on ${app.backend}…`);
  document.body.dataset.model = "loading";
  const started = performance.now();
  let loaded;
  try {
    const options = { size, backend: app.backend, keep, name, source };
    loaded = bytes
      ? await app.gpu.call("load", { bytes, ...options }, [bytes.buffer])
      : await app.gpu.call("loadStored", options);
  } catch (e) {
    document.body.dataset.model = app.model ? "ready" : "error";
    showError(`${name}: ${messageOf(e)}`);
    setStatus("weights-status", app.model ? `Still using ${app.model.name}.` : "No weights loaded.");
    return false;
  }
  if (!loaded) {
    document.body.dataset.model = app.model ? "ready" : "none";
    return false;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  modelLoaded(loaded, loaded.name ?? name, seconds);
  if (keep && !loaded.storeError) {
    setStatus("weights-status", `Loaded ${name} in ${seconds} s and kept it in this browser for the next visit.`);
  }
  $("forget-weights").disabled = !(await store.meta("weights"));
  document.body.dataset.model = "ready";
  return true;
}

async function loadWeightsFromFile(file) {
  if (!file) return;
  if (app.training) {
    showError("Stop the training before loading other weights: the run uses the loaded model.", "training");
    return;
  }
  // Check the first bytes before copying a possibly huge file into memory.
  const problem = app.wasm.weights_header_problem(new Uint8Array(await file.slice(0, 64).arrayBuffer()));
  if (problem) {
    showError(`${file.name}: ${problem}`);
    setStatus("weights-status", app.model ? `Still using ${app.model.name}.` : "No weights loaded.");
    return;
  }
  setStatus("weights-status", `Reading ${file.name}…`);
  const bytes = new Uint8Array(await file.arrayBuffer());
  await loadWeights(bytes, { name: file.name, source: "file", keep: true });
}

async function configuredWeightsUrl() {
  if (params.get("weights")) return params.get("weights");
  try {
    const response = await fetch("config.json", { cache: "no-cache" });
    if (!response.ok) return null;
    const config = await response.json();
    return config.weights || null;
  } catch {
    return null;
  }
}

async function startWeights() {
  const kept = await store.meta("weights");
  if (kept) {
    setStatus("weights-status", `Loading the weights kept in this browser (${kept.name})…`);
    if (await loadWeights(null, { name: kept.name, source: "storage", keep: false })) {
      document.body.dataset.weightsFrom = "storage";
      return;
    }
  }
  const url = await configuredWeightsUrl();
  if (!url) {
    document.body.dataset.model = "none";
    return;
  }
  try {
    const bytes = await download(url);
    const name = url.split("/").pop();
    if (await loadWeights(bytes, { name, source: url, keep: true })) document.body.dataset.weightsFrom = "network";
  } catch (e) {
    document.body.dataset.model = "error";
    const foreign = new URL(url, location.href).origin !== location.origin;
    const why = foreign
      ? ` (${url} is on another host: this page may only fetch from its own origin; put the weights beside the page)`
      : "";
    showError(`Could not download the weights: ${messageOf(e)}${why}. Pick the weights file by hand (step 0).`);
  }
}

async function forgetWeights() {
  await store.remove("weights");
  $("forget-weights").disabled = true;
  setStatus("weights-status", "The stored weights are forgotten; the loaded model stays until you leave the page.");
}

async function reloadForSize() {
  const size = Number($("image-size").value);
  // The field is disabled while training runs; the worker refuses a load then too.
  if (!app.model || app.model.image_size === size) return;
  const kept = await store.meta("weights");
  if (!kept) {
    showError("Load the weights again to use the new input size (they were not kept in storage).");
    return;
  }
  await loadWeights(null, { name: kept.name, source: "storage", keep: false });
}

// ---------------------------------------------------------------- normal images

/**
 * Add a defect-free board to the synthesizer's list. Unless `keptAs` names the storage entry
 * it came from, the board is also kept in this browser, so that the list comes back after a
 * reload; a storage refusal is shown and the board stays for this visit.
 */
export async function addNormal(name, bytes, { keptAs = null, keep = true } = {}) {
  let index;
  try {
    index = app.synthesizer.add_image(bytes, MAX_SIDE);
  } catch (e) {
    if (keptAs) throw e;
    showError(`${name}: ${messageOf(e)}`);
    return false;
  }
  app.normals.push({ name, index });
  const li = document.createElement("li");
  li.textContent = name;
  li.dataset.index = String(index);
  $("normal-list").append(li);
  if (!keptAs) {
    // Restored boards enable Clear boards once all are back.
    $("clear-normals").disabled = false;
    clearError();
  }
  if (!keptAs && keep) {
    // Zero-padded time first: the storage's names sort in the order the boards were added.
    const key = `normal-${String(Date.now()).padStart(15, "0")}-${String(index).padStart(6, "0")}`;
    const generation = app.boardGeneration;
    try {
      await store.put(key, bytes, { name }, `the board ${name}`);
      // Cleared while it was being stored: it goes too.
      if (app.boardGeneration !== generation) await store.remove(key);
    } catch (e) {
      showError(`${messageOf(e)} (${name} is in the list for this visit only.)`);
    }
  }
  return true;
}

async function addFiles(files) {
  // Clear boards ends an upload still under way.
  const generation = app.boardGeneration;
  for (const file of files) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (app.boardGeneration !== generation) return;
    await addNormal(file.name, bytes);
    await yieldToBrowser();
  }
}

/**
 * The boards kept in this browser, in the order they were added. Boards that cannot be read
 * are named in the board section (not in the error box, which the weights' loading clears);
 * the others come back all the same.
 */
async function restoreNormals() {
  const keys = (await store.names("normal-")).sort();
  const unreadable = [];
  const generation = app.boardGeneration;
  for (const key of keys) {
    if (app.boardGeneration !== generation) return;
    const nameIn = (meta) => (meta && typeof meta.name === "string" ? meta.name : key);
    try {
      const kept = await store.get(key);
      if (app.boardGeneration !== generation) return;
      if (kept) await addNormal(nameIn(kept.meta), kept.bytes, { keptAs: key });
    } catch (e) {
      // Named by its description when that can still be read, else by its key.
      const name = await store.meta(key).then(nameIn, () => key);
      unreadable.push(`${name}: ${messageOf(e)}`);
    }
    await yieldToBrowser();
  }
  if (keys.length > 0) $("clear-normals").disabled = false;
  if (unreadable.length > 0) {
    setStatus(
      "normal-status",
      `${plural(unreadable.length, "board")} kept in this browser could not be read (${unreadable.join("; ")}): ` +
        "click Clear boards and add the boards again.",
    );
  }
}

/** Empty the board list, here and in storage; the pairs made from them stay. */
export async function clearNormals() {
  if (app.synthesizing) {
    showError("Pairs are being made from these boards: clear them once that ends.", "synthesizing");
    return;
  }
  app.boardGeneration++;
  app.synthesizer.clear();
  app.normals = [];
  $("normal-list").replaceChildren();
  $("clear-normals").disabled = true;
  setStatus("normal-status", "");
  for (const key of await store.names("normal-")) await store.remove(key);
}

export async function fetchSample(file) {
  const response = await fetch(`samples/${file}`);
  if (!response.ok) throw new Error(`samples/${file}: ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

/** The first three sample boards; `keep` false leaves them out of storage (the kiosk). */
export async function addSampleNormals({ keep = true } = {}) {
  for (const sample of NORMAL_SAMPLES.slice(0, 3)) {
    await addNormal(sample.label, await fetchSample(sample.file), { keep });
  }
}

// ---------------------------------------------------------------- pairs

function figure(url, caption, download) {
  const fig = document.createElement("figure");
  const img = document.createElement("img");
  img.src = url;
  img.alt = caption;
  const cap = document.createElement("figcaption");
  const link = document.createElement("a");
  link.href = url;
  link.download = download;
  link.textContent = caption;
  link.title = `Download ${download}`;
  cap.append(link);
  fig.append(img, cap);
  return fig;
}

function renderPair(pair, overlayPng) {
  const stem = `pair-${pair.seed}`;
  const row = document.createElement("div");
  row.className = pair.heldOut ? "pair held-out" : "pair";
  row.dataset.fingerprint = pair.fingerprint;
  const title = document.createElement("h3");
  title.textContent = `${pair.name}, seed ${pair.seed}: ${plural(pair.defects, "defect")}${pair.heldOut ? " (held out)" : ""}`;
  row.append(
    title,
    figure(pngUrl(pair.image), "image", `${stem}-image.png`),
    figure(pngUrl(pair.mask), "mask", `${stem}-mask.png`),
  );
  if (overlayPng) row.append(figure(pngUrl(overlayPng), "overlay", `${stem}-overlay.png`));
  $("pairs").append(row);
}

function clearPairView() {
  const pairs = $("pairs");
  for (const old of pairs.querySelectorAll("img")) URL.revokeObjectURL(old.src);
  pairs.replaceChildren();
}

/** The list of pairs kept, with how many the set under way will have (`planned`). */
async function savePairs(planned) {
  const list = app.pairs.map(({ image, mask, ...rest }) => rest);
  await store.put("pairs.json", new Uint8Array(), { pairs: list, planned }, "the pair list");
}

/** Forget the pairs shown, and those kept in storage unless `stored` is false. */
export async function clearPairs({ stored = true } = {}) {
  if (stored) {
    for (const name of await store.names("pair-")) await store.remove(name);
    await store.remove("pairs.json");
  }
  app.pairs = [];
  clearPairView();
  setStatus("synth-progress", "");
}

/**
 * Synthesize `count` training pairs plus `heldOut` held-out ones, replacing the old set. The
 * set is kept in storage as it is made (a reload keeps what was made so far), unless `keep`
 * is false: the kiosk's sets leave the visitor's stored pairs alone.
 */
export async function synthesizeSet(settings) {
  app.synthesizing = true;
  try {
    await makeSet(settings);
  } finally {
    app.synthesizing = false;
    workEnded("synthesizing");
  }
}

async function makeSet({ count, heldOut, seed, defectsMax, keep = true }) {
  if (app.normals.length === 0) {
    throw new Error("Add at least one normal image first: pick a sample or drop a board image.");
  }
  const size = app.model ? app.model.image_size : Number($("image-size").value) || 256;
  const config = app.wasm.Synthesizer.default_config();
  config.defects_max = Math.max(config.defects_min, defectsMax);
  await clearPairs({ stored: keep });
  const started = performance.now();
  let storeError = null;
  const total = count + heldOut;
  for (let i = 0; i < total; i++) {
    const normal = app.normals[i % app.normals.length];
    const pairSeed = seed + i;
    const view = app.synthesizer.pair(normal.index, config, BigInt(pairSeed), size);
    const pair = {
      id: `${pairSeed}`,
      name: normal.name,
      seed: pairSeed,
      heldOut: i >= count,
      width: view.width,
      defects: JSON.parse(view.defects_json).length,
      fingerprint: view.fingerprint,
      image: view.image_png,
      mask: view.mask_png,
    };
    const overlay = view.overlay_png;
    view.free();
    app.pairs.push(pair);
    renderPair(pair, overlay);
    if (keep && !storeError) {
      try {
        await store.put(`pair-${pair.id}-image`, pair.image, {}, "the synthetic pairs");
        await store.put(`pair-${pair.id}-mask`, pair.mask, {}, "the synthetic pairs");
        await store.put(`pair-${pair.id}-overlay`, overlay, {}, "the synthetic pairs");
        await savePairs(total);
      } catch (e) {
        storeError = e;
      }
    }
    setStatus("synth-progress", `Pair ${i + 1} of ${total}`);
    await yieldToBrowser();
  }
  if (storeError) showError(messageOf(storeError));
  const seconds = (performance.now() - started) / 1000;
  const kept = !keep ? ", not kept (kiosk)" : storeError ? "" : ", kept in this browser";
  setStatus(
    "synth-progress",
    `${total} pairs (${heldOut} held out) at ${size}x${size} in ${seconds.toFixed(2)} s${kept}`,
  );
}

async function synthesize(event) {
  event.preventDefault();
  clearError();
  $("synth-button").disabled = true;
  try {
    await synthesizeSet({
      count: wholeField("pair-count", "The number of pairs", 1, 256),
      heldOut: wholeField("heldout-count", "The held-out pairs", 0, 64),
      // Pair i gets seed + i: every seed must stay a whole number JavaScript can hold.
      seed: wholeField("seed", "The seed", 0, Number.MAX_SAFE_INTEGER - 320),
      defectsMax: wholeField("defects-max", "Defects per image", 1, 16),
    });
  } catch (e) {
    showError(messageOf(e));
  } finally {
    $("synth-button").disabled = false;
  }
}

/**
 * The pairs kept in this browser. What cannot be read is said in the synthesis section (not
 * in the error box, which the weights' loading clears), as is a set cut short by a reload.
 */
async function restorePairs() {
  let list;
  try {
    list = await store.meta("pairs.json");
  } catch (e) {
    setStatus("synth-progress", `The pair list kept in this browser cannot be read (${messageOf(e)}): click Clear pairs and synthesize again.`);
    return;
  }
  if (!list) return;
  if (!Array.isArray(list.pairs)) {
    setStatus("synth-progress", "The pair list kept in this browser is damaged: click Clear pairs and synthesize again.");
    return;
  }
  let unreadable = 0;
  for (const meta of list.pairs) {
    try {
      if (!meta || typeof meta.id !== "string") throw new Error("no pair");
      const image = await store.get(`pair-${meta.id}-image`);
      const mask = await store.get(`pair-${meta.id}-mask`);
      if (!image || !mask) throw new Error("missing");
      const overlay = await store.get(`pair-${meta.id}-overlay`).catch(() => null);
      const pair = { ...meta, image: image.bytes, mask: mask.bytes };
      app.pairs.push(pair);
      renderPair(pair, overlay?.bytes);
    } catch {
      unreadable++;
    }
  }
  const made = app.pairs.length;
  const planned = Number.isInteger(list.planned) && list.planned > list.pairs.length ? list.planned : null;
  let text = `${plural(made, "pair")} restored from this browser's storage.`;
  if (unreadable > 0) text += ` ${unreadable} kept could not be read: synthesize again for the whole set.`;
  if (planned) text += ` The synthesis of ${planned} pairs was cut short (by a reload?): synthesize again for the whole set.`;
  setStatus("synth-progress", text);
}

// ---------------------------------------------------------------- training

/** A whole number from a form field, at least `min`, or an error that names the field. */
function wholeField(id, label, min, max) {
  const value = Number($(id).value);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${label} must be a whole number from ${min} to ${max}; it is "${$(id).value}".`);
  }
  return value;
}

function trainSettings() {
  const learningRate = Number($("train-lr").value);
  if (!(learningRate > 0 && learningRate < 1)) {
    throw new Error(`The learning rate must be a number between 0 and 1 (the paper uses 0.0001); it is "${$("train-lr").value}".`);
  }
  return {
    k: wholeField("train-k", "K", 1, 32),
    epochs: wholeField("train-epochs", "Epochs", 1, 1000),
    batch_size: wholeField("train-batch", "The batch", 1, 256),
    learning_rate: learningRate,
    loss: $("train-loss").value,
    seed: wholeField("train-seed", "The seed", 0, Number.MAX_SAFE_INTEGER),
    decoder_adapters: $("train-decoder").checked,
    train_hypernetwork: $("train-hyper").checked,
  };
}

function drawLossCurve(losses) {
  const canvas = $("loss-curve");
  canvas.dataset.steps = String(losses.length);
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  g.clearRect(0, 0, width, height);
  g.fillStyle = "#fff";
  g.fillRect(0, 0, width, height);
  if (losses.length === 0) return;
  const max = Math.max(...losses);
  const min = Math.min(...losses);
  const span = Math.max(1e-6, max - min);
  const pad = 24;
  g.strokeStyle = "#0b7a55";
  g.lineWidth = 2;
  g.beginPath();
  losses.forEach((loss, i) => {
    const x = pad + ((width - 2 * pad) * i) / Math.max(1, losses.length - 1);
    const y = pad + (height - 2 * pad) * (1 - (loss - min) / span);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#5b6b70";
  g.font = "12px system-ui";
  g.fillText(`loss ${max.toFixed(4)}`, 4, 14);
  g.fillText(`${min.toFixed(4)}`, 4, height - 6);
  g.fillText(`${losses.length} steps`, width - 70, height - 6);
}

function setTrainButtons(running) {
  // The run holds the loaded model: its size and weights stay put until it ends.
  $("image-size").disabled = running;
  $("weights-input").disabled = running;
  $("train-start").disabled = running;
  $("train-pause").disabled = !running;
  $("train-stop").disabled = !running;
  $("train-pause").textContent = "Pause";
}

function addEpochRow({ epoch, meanLoss, metrics, seconds }) {
  const tr = document.createElement("tr");
  const cells = [
    String(epoch),
    meanLoss.toFixed(5),
    metrics ? metrics.mean_dice.toFixed(4) : "no held-out pairs",
    metrics ? metrics.mean_iou.toFixed(4) : "",
    seconds.toFixed(1),
  ];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  $("epoch-table").querySelector("tbody").append(tr);
}

/** Show adapters the worker now uses; `storeError` says why they were not kept. */
function adaptersInUse(info, what, storeError, { kept = true } = {}) {
  app.adapters = info;
  app.adaptersTrained = true;
  $("download-adapters").disabled = false;
  if (!kept) {
    setStatus("adapters-status", `${what}: K = ${info.k}, ${info.epochs} epochs; not kept (kiosk).`);
  } else if (storeError) {
    showError(storeError);
    setStatus("adapters-status", `${what}: K = ${info.k}, ${info.epochs} epochs (not kept: see the message above).`);
  } else {
    setStatus("adapters-status", `${what}: K = ${info.k}, ${info.epochs} epochs; kept in this browser.`);
  }
}

/** Show what the worker found in storage for a freshly loaded model. */
function showAdapters({ trained, info, epochTable, problem }) {
  app.adapters = info;
  app.adaptersTrained = trained;
  $("download-adapters").disabled = !trained;
  if (trained) {
    setStatus("adapters-status", `Adapters restored from this browser: K = ${info.k}, ${info.epochs} epochs.`);
    // The file keeps its run's step losses and the storage its epoch table: both come back.
    drawLossCurve(info.loss_history?.steps ?? []);
    $("epoch-table").querySelector("tbody").replaceChildren();
    for (const row of epochTable) addEpochRow(row);
  } else if (problem) {
    setStatus(
      "adapters-status",
      `The adapters kept in this browser do not fit these weights (${problem}); they stay kept until new ones are trained.`,
    );
  }
}

/**
 * Train on the current pairs in the worker. Resolves when training ends (finished,
 * stopped, or stopped by an error, which is shown); `maxSteps` ends it early (the kiosk
 * uses that).
 */
export async function train(settings, { maxSteps = Infinity, keep = true } = {}) {
  if (!app.model) throw new Error("Load SAM weights first (step 0).");
  if (!app.pairs.some((p) => !p.heldOut)) throw new Error("Synthesize training pairs first (step 2).");
  if (app.segmenting) throw new BusyError("An image is being segmented: wait for it to finish, then train.", "segmenting");
  if (app.training) throw new BusyError("Training is already running.", "training");
  const size = app.model.image_size;
  const other = app.pairs.find((p) => p.width !== size);
  if (other) {
    throw new Error(
      `The pairs were made at ${other.width}x${other.width} and the model now takes ${size}x${size}: ` +
        "synthesize them again (step 2), or set the input size back.",
    );
  }
  const losses = [];
  const stepMs = [];
  let steps = 0;
  let epochsDone = 0;
  app.training = {
    paused: false,
    onStep(report) {
      steps++;
      losses.push(report.loss);
      stepMs.push(Math.round(report.ms));
      drawLossCurve(losses);
      setStatus(
        "train-progress",
        `Epoch ${report.epoch + 1} of ${report.epochs}, step ${report.step + 1} of ${report.steps_per_epoch}: ` +
          `loss ${report.loss.toFixed(5)} (${report.learnable.toLocaleString("en")} learnable parameters, ` +
          `${(report.ms / 1000).toFixed(2)} s)`,
      );
      $("train-progress").dataset.losses = JSON.stringify(losses);
      $("train-progress").dataset.stepMs = JSON.stringify(stepMs);
    },
    onEpoch({ row, info, storeError, kept }) {
      epochsDone = row.epoch;
      addEpochRow(row);
      adaptersInUse(info, `Adapters of epoch ${row.epoch}`, storeError, { kept });
    },
    onPaused() {
      setStatus("train-progress", `Paused after ${steps} steps.`);
    },
  };
  app.longTasks = [];
  document.body.dataset.training = "running";
  $("epoch-table").querySelector("tbody").replaceChildren();
  setTrainButtons(true);
  drawLossCurve(losses);
  const pairs = app.pairs.map(({ image, mask, heldOut }) => ({ image, mask, heldOut }));
  try {
    const outcome = await app.gpu.call("train", { settings, pairs, maxSteps, keep });
    if (outcome.notFinite) {
      const report = outcome.notFinite;
      showError(
        `The loss or the adapters became ${report.loss} in epoch ${report.epoch + 1}: training ` +
          "stopped and the last good adapters are kept. Try a lower learning rate.",
      );
    }
  } catch (e) {
    showError(`Training failed: ${messageOf(e)}. The adapters of the last finished epoch are kept.`);
  } finally {
    setTrainButtons(false);
    app.training = null;
    workEnded("training");
    document.body.dataset.training = "done";
    const longest = Math.round(Math.max(0, ...app.longTasks.map(([, d]) => d)));
    $("train-progress").dataset.longestTaskMs = String(longest);
    const kept = epochsDone > 0 ? `; the adapters of epoch ${epochsDone} are in use` : "";
    setStatus(
      "train-progress",
      `${steps} steps done${kept}. Longest task on the page's thread while training: ${longest} ms ` +
        "(the model runs in a worker).",
    );
  }
}

/** Events the worker posts: training progress, or a crash outside any call. */
function workerEvent(event, data) {
  const t = app.training;
  if (event === "step") t?.onStep(data);
  else if (event === "epoch") t?.onEpoch(data);
  else if (event === "paused") t?.onPaused(data);
  else if (event === "crash") showError(messageOf(data));
}

async function startTraining(event) {
  event.preventDefault();
  clearError();
  try {
    await train(trainSettings());
  } catch (e) {
    showError(messageOf(e), e.until);
    // A refusal because a run is under way leaves that run's controls as they are.
    if (!app.training) setTrainButtons(false);
  }
}

function togglePause() {
  const t = app.training;
  if (!t) return;
  t.paused = !t.paused;
  $("train-pause").textContent = t.paused ? "Resume" : "Pause";
  // The step under way finishes first (the first ones also compile the GPU kernels).
  if (t.paused) setStatus("train-progress", "Pausing after the step under way…");
  app.gpu.call(t.paused ? "pause" : "resume");
}

function stopTraining() {
  if (!app.training) return;
  setStatus("train-progress", "Stopping after the step under way…");
  app.gpu.call("stop");
}

async function downloadAdapters() {
  if (!app.adapters) return;
  try {
    const { bytes, info } = await app.gpu.call("adapterFile");
    saveBlob(new Blob([bytes]), `pros-adapters-k${info.k}-e${info.epochs}.safetensors`);
  } catch (e) {
    showError(messageOf(e));
  }
}

async function uploadAdapters(file) {
  if (!file) return;
  clearError();
  if (!app.model) {
    showError("Load SAM weights first (step 0): adapters only fit the weights they were trained on.");
    return;
  }
  if (app.training) {
    showError("Training is running: stop it first, then load other adapters.", "training");
    return;
  }
  try {
    const bytes = new Uint8Array(await file.arrayBuffer());
    const { info, storeError } = await app.gpu.call("adaptersFromFile", { bytes }, [bytes.buffer]);
    adaptersInUse(info, `Adapters from ${file.name}`, storeError);
    $("epoch-table").querySelector("tbody").replaceChildren();
    drawLossCurve(info.loss_history?.steps ?? []);
    if (!storeError) clearError();
  } catch (e) {
    showError(`${file.name}: ${messageOf(e)}`);
  }
}

// ---------------------------------------------------------------- segmentation

/** Threshold the last segmentation (in the worker) at the slider's value and show it. */
async function renderSegmentation() {
  const current = app.segmented;
  if (!current) return;
  const threshold = Number($("threshold").value);
  const view = await app.gpu.call("view", { threshold });
  if (app.segmented !== current) return;
  const defects = view.defects;
  const { width, height } = current;

  const box = $("segment-view");
  for (const old of box.querySelectorAll("img.layer")) URL.revokeObjectURL(old.src);
  box.querySelector(".layer")?.remove();
  for (const old of box.querySelectorAll(".box")) old.remove();
  const layer = document.createElement("img");
  layer.className = "layer";
  layer.alt = "defect mask";
  layer.src = pngUrl(view.layer);
  layer.style.opacity = $("opacity").value;
  box.append(layer);

  const list = $("defect-list");
  list.replaceChildren();
  defects.forEach((d, i) => {
    const b = d.bbox;
    const frame = document.createElement("div");
    frame.className = "box";
    frame.style.left = `${(100 * b.x0) / width}%`;
    frame.style.top = `${(100 * b.y0) / height}%`;
    frame.style.width = `${(100 * (b.x1 - b.x0)) / width}%`;
    frame.style.height = `${(100 * (b.y1 - b.y0)) / height}%`;
    box.append(frame);
    const li = document.createElement("li");
    li.textContent = `(${b.x0}, ${b.y0})–(${b.x1}, ${b.y1}), ${d.area} px, score ${d.mean_score.toFixed(3)}`;
    const on = () => {
      frame.classList.add("hot");
      li.classList.add("hot");
    };
    const off = () => {
      frame.classList.remove("hot");
      li.classList.remove("hot");
    };
    for (const el of [li, frame]) {
      el.addEventListener("mouseenter", on);
      el.addEventListener("mouseleave", off);
    }
    list.append(li);
  });

  const stem = current.name.replace(/\.[^.]+$/, "");
  const maskLink = $("download-mask");
  if (maskLink.href) URL.revokeObjectURL(maskLink.href);
  maskLink.href = pngUrl(view.mask);
  maskLink.download = `${stem}-mask.png`;
  maskLink.hidden = false;
  const json = JSON.stringify({ image: current.name, width, height, threshold, defects }, null, 2);
  const defectsLink = $("download-defects");
  if (defectsLink.href) URL.revokeObjectURL(defectsLink.href);
  defectsLink.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  defectsLink.download = `${stem}-defects.json`;
  defectsLink.hidden = false;
  box.dataset.defects = String(defects.length);
  box.dataset.threshold = threshold.toFixed(2);
  $("threshold-value").textContent = threshold.toFixed(2);
  const summary = current.summary;
  if (summary) {
    setStatus("segment-status", `${summary.head}: ${plural(defects.length, "defect")} at threshold ${threshold.toFixed(2)} ${summary.tail}`);
  }
  return defects;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Segment one image with the current adapters and show it. */
export async function segment(name, bytes) {
  if (!app.model) throw new Error("Load SAM weights first (step 0).");
  if (app.training) {
    throw new BusyError("Training is running on the same GPU model: stop it (or let it finish), then segment.", "training");
  }
  if (app.segmenting) throw new BusyError("An image is being segmented: wait for it to finish.", "segmenting");
  const before = $("segment-status").textContent;
  setStatus("segment-status", `Segmenting ${name} on ${app.backend}…`);
  app.segmenting = true;
  let result;
  try {
    // The worker gets its own copy; the page keeps `bytes` to show the image.
    const copy = bytes.slice();
    result = await app.gpu.call("segment", { bytes: copy }, [copy.buffer]);
  } catch (e) {
    // The last result stays on screen with its caption.
    setStatus("segment-status", before);
    throw e;
  } finally {
    app.segmenting = false;
    workEnded("segmenting");
  }
  if (app.segmented) URL.revokeObjectURL(app.segmented.imageUrl);
  const imageUrl = URL.createObjectURL(new Blob([bytes], { type: imageType(bytes) }));
  const trained = app.adaptersTrained ? "with trained adapters" : "with untrained adapters (plain SAM)";
  const first = app.segmentations === undefined;
  app.segmentations = (app.segmentations ?? 0) + 1;
  const compile = first && app.backend === "webgpu" ? " (the first run includes compiling the GPU kernels)" : "";
  app.segmented = {
    name,
    imageUrl,
    width: result.width,
    height: result.height,
    summary: {
      head: `${name}, ${result.width}x${result.height}`,
      tail:
        `${trained}. Image encoder ${result.encoderMs.toFixed(0)} ms, whole model ` +
        `${result.totalMs.toFixed(0)} ms, on ${app.backend}${compile}.`,
    },
  };
  const box = $("segment-view");
  box.replaceChildren();
  const img = document.createElement("img");
  img.className = "base";
  img.alt = name;
  img.src = imageUrl;
  box.append(img);
  const defects = await renderSegmentation();
  if (params.has("kiosk")) $("segment").scrollIntoView({ behavior: "smooth" });
  box.dataset.encoderMs = String(result.encoderMs);
  document.body.dataset.segmented = String(Number(document.body.dataset.segmented ?? 0) + 1);
  return defects;
}

async function segmentFile(file) {
  if (!file) return;
  clearError();
  try {
    await segment(file.name, new Uint8Array(await file.arrayBuffer()));
  } catch (e) {
    showError(`${file.name}: ${messageOf(e)}`, e.until);
  }
}

// ---------------------------------------------------------------- set-up

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles(e.dataTransfer.files);
  });
}

function sampleButton(sample, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "sample";
  const img = document.createElement("img");
  img.src = `samples/${sample.file}`;
  img.alt = sample.label;
  button.append(img, document.createTextNode(sample.label));
  button.addEventListener("click", onClick);
  return button;
}

function setUpControls() {
  for (const sample of NORMAL_SAMPLES) {
    $("samples").append(
      sampleButton(sample, async () => addNormal(sample.label, await fetchSample(sample.file))),
    );
  }
  for (const sample of DEFECTIVE_SAMPLES) {
    $("segment-samples").append(
      sampleButton(sample, async () => {
        clearError();
        try {
          await segment(sample.file, await fetchSample(sample.file));
        } catch (e) {
          showError(messageOf(e), e.until);
        }
      }),
    );
  }
  dropZone($("dropzone"), addFiles);
  $("file-input").addEventListener("change", (e) => addFiles(e.target.files));
  $("clear-normals").addEventListener("click", clearNormals);
  dropZone($("weights-drop"), (files) => loadWeightsFromFile(files[0]));
  $("weights-input").addEventListener("change", (e) => loadWeightsFromFile(e.target.files[0]));
  $("forget-weights").addEventListener("click", forgetWeights);
  $("image-size").addEventListener("change", reloadForSize);
  $("synth-form").addEventListener("submit", synthesize);
  $("clear-pairs").addEventListener("click", () => {
    if (app.synthesizing) {
      showError("Pairs are being made: clear them once that ends.", "synthesizing");
      return;
    }
    clearPairs();
  });
  $("train-form").addEventListener("submit", startTraining);
  $("train-pause").addEventListener("click", togglePause);
  $("train-stop").addEventListener("click", stopTraining);
  $("download-adapters").addEventListener("click", downloadAdapters);
  $("adapters-input").addEventListener("change", (e) => uploadAdapters(e.target.files[0]));
  dropZone($("segment-drop"), (files) => segmentFile(files[0]));
  $("segment-input").addEventListener("change", (e) => segmentFile(e.target.files[0]));
  // Thresholding a large image takes the worker a while: one request at a time, and the
  // slider's latest value once it answers.
  let rendering = null;
  let again = false;
  $("threshold").addEventListener("input", async () => {
    $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
    if (rendering) {
      again = true;
      return;
    }
    do {
      again = false;
      rendering = renderSegmentation();
      try {
        await rendering;
      } catch (e) {
        showError(messageOf(e));
      }
    } while (again);
    rendering = null;
  });
  $("opacity").addEventListener("input", () => {
    const layer = document.querySelector("#segment-view .layer");
    if (layer) layer.style.opacity = $("opacity").value;
  });
}

function watchLongTasks() {
  if (!("PerformanceObserver" in window)) return;
  try {
    new PerformanceObserver((list) => {
      if (!app.training) return;
      for (const entry of list.getEntries()) app.longTasks.push([entry.startTime, entry.duration]);
    }).observe({ type: "longtask", buffered: false });
  } catch {
    // No long-task timing in this browser: the figure stays 0.
  }
}

function watchCrashes() {
  addEventListener("error", (e) => showError(messageOf(e.error ?? e.message)));
  addEventListener("unhandledrejection", (e) => showError(messageOf(e.reason)));
}

async function offlineShell() {
  // The service worker answers from its cache when the network is gone; put the page's
  // own files there now, since this first load happened before it was in control.
  if (!("serviceWorker" in navigator) || typeof caches === "undefined") return;
  try {
    await navigator.serviceWorker.register("sw.js");
    const urls = new Set([location.pathname]);
    for (const entry of performance.getEntriesByType("resource")) {
      const url = new URL(entry.name);
      if (url.origin === location.origin && !/\.(pth|pt|safetensors)$/.test(url.pathname)) urls.add(url.pathname);
    }
    for (const s of [...NORMAL_SAMPLES, ...DEFECTIVE_SAMPLES]) urls.add(new URL(`samples/${s.file}`, location.href).pathname);
    urls.add(new URL("./worker.js", import.meta.url).pathname);
    const cache = await caches.open("pcb-pros-shell-v1");
    // Built files have content hashes in their names: one already kept is current, and
    // fetching the 24 MB wasm again on every visit would be waste. The page itself is
    // refreshed (the service worker also refreshes whatever it serves from the network).
    const fresh = async (u) => u === location.pathname || !(await cache.match(u));
    await Promise.all([...urls].map(async (u) => (await fresh(u)) && cache.add(u)).map((p) => p.catch(() => {})));
    document.body.dataset.offline = "ready";
  } catch (e) {
    console.warn(`offline use not set up: ${messageOf(e)}`);
  }
}

async function main() {
  if (params.has("kiosk")) {
    // Before anything loads, so that the very first tap counts.
    document.body.classList.add("kiosk");
    fullScreenOnFirstTap();
  }
  app.wasm = window.wasmBindings;
  app.synthesizer = new app.wasm.Synthesizer();
  app.gpu = new GpuWorker({ onEvent: workerEvent });
  watchCrashes();
  watchLongTasks();
  showEarlierErrors();
  setUpControls();
  drawLossCurve([]);
  try {
    await app.gpu.start();
  } catch (e) {
    showError(`The page could not start its GPU worker (${messageOf(e)}): reload the page.`);
  }
  await detectBackend();
  try {
    const size = localStorage.getItem(SIZE_KEY);
    if (size) $("image-size").value = size;
  } catch {
    // storage off
  }
  try {
    await restoreNormals();
  } catch (e) {
    $("clear-normals").disabled = false;
    showError(
      `The boards kept in this browser could not be read (${messageOf(e)}): ` +
        "click Clear boards and add them again.",
    );
  }
  try {
    await restorePairs();
  } catch (e) {
    showError(
      `The synthetic pairs kept in this browser could not be read (${messageOf(e)}): ` +
        "click Clear pairs and synthesize them again.",
    );
  }
  document.body.dataset.ready = "true";
  try {
    await startWeights();
  } catch (e) {
    document.body.dataset.model = app.model ? "ready" : "error";
    showError(
      `The weights or adapters kept in this browser could not be read (${messageOf(e)}): ` +
        "click Forget stored weights and load the weights file again.",
    );
    $("forget-weights").disabled = false;
  }
  offlineShell();
  if (params.has("kiosk")) runKiosk({ dwellMs: Number(params.get("dwell") ?? 4000) });
}

if (window.wasmBindings) {
  main();
} else {
  addEventListener("TrunkApplicationStarted", main, { once: true });
}
