// The page's GPU work, off the main thread: this worker holds SAM, the adapters, the
// training run and the last segmentation, in its own instance of the library's
// WebAssembly. Compiling GPU kernels and running the model block only this thread, so the
// page stays responsive however long a step takes.
//
// Protocol: the page posts `{ id, op, args }`; the worker answers `{ id, ok, value }` or
// `{ id, ok: false, error: { message } }`. While training it also posts
// `{ event, data }` messages (one per step, one per epoch). `pause`, `resume` and `stop`
// act on a run in progress between its steps.

import * as store from "./store.js";

let wasm = null;
let model = null; // SamModel
let adapters = null; // AdapterSet
let result = null; // SegmentationResult
let training = null; // { paused, stopped, resume }
// The `token` of the adapters in use when they are the ones kept in storage (another tab may
// have stored others since): their file is then read from there, not from the GPU again.
let storedToken = null;
const newToken = () => `${Date.now()}-${Math.random()}`;

const yieldNow = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A paused run goes on to look at its flags again. */
function wake() {
  training?.resume?.();
  if (training) training.resume = null;
}

function requireModel() {
  if (!model) throw new Error("Load SAM weights first (step 0).");
  return model;
}

/** `value` with the buffers it can hand over without copying. */
function transferable(value) {
  const buffers = [];
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) if (v instanceof Uint8Array) buffers.push(v.buffer);
  }
  return buffers;
}

/** Keep the current adapters in browser storage; resolves to an error message or null. */
async function keepAdapters(epochTable) {
  const info = adapters.info();
  try {
    const bytes = await adapters.file();
    const token = newToken();
    await store.put("adapters", bytes, { epochs: info.epochs, k: info.k, epochTable, token }, "the adapters");
    storedToken = token;
    return null;
  } catch (e) {
    return e && e.message ? e.message : String(e);
  }
}

function setAdapters(set, { token = null } = {}) {
  adapters?.free();
  adapters = set;
  storedToken = token;
}

/** Adapters kept in storage that fit the loaded model, or untrained ones. */
async function restoreAdapters() {
  const kept = await store.get("adapters");
  let problem = null;
  if (kept) {
    try {
      setAdapters(wasm.AdapterSet.from_file(model, kept.bytes), { token: kept.meta.token ?? null });
      return { trained: true, info: adapters.info(), epochTable: kept.meta.epochTable ?? [] };
    } catch (e) {
      problem = e.message;
    }
  }
  setAdapters(wasm.AdapterSet.untrained(model));
  return { trained: false, info: adapters.info(), problem };
}

async function loadModel(bytes, { size, backend, keep, name, source }) {
  if (training) throw new Error("Stop the training before loading other weights: the run uses the loaded model.");
  const loaded = await wasm.SamModel.load(bytes, size, backend);
  result?.free();
  result = null;
  model?.free();
  model = loaded;
  let storeError = null;
  if (keep) {
    try {
      await store.put("weights", bytes, { name, source, bytes: bytes.length }, "the weights");
    } catch (e) {
      storeError = e.message;
    }
  }
  return { info: model.info(), storeError, adapters: await restoreAdapters() };
}

const ops = {
  async init({ js, wasmUrl }) {
    const bindings = await import(js);
    await bindings.default({ module_or_path: wasmUrl });
    wasm = bindings;
    return null;
  },

  gpuInfo: () => wasm.gpu_info(),

  /** Load SAM from `bytes` (handed over, not copied); keep them in storage when `keep`. */
  load: ({ bytes, ...options }) => loadModel(bytes, options),

  /** Load SAM from the weights kept in storage; null when none are kept. */
  async loadStored(options) {
    const kept = await store.get("weights");
    if (!kept) return null;
    const loaded = await loadModel(kept.bytes, { ...options, keep: false });
    return { ...loaded, name: kept.meta.name };
  },

  /** Adapters from a file the visitor picked; kept in storage when they fit. */
  async adaptersFromFile({ bytes }) {
    const set = wasm.AdapterSet.from_file(requireModel(), bytes);
    setAdapters(set);
    return { info: set.info(), storeError: await keepAdapters([]) };
  },

  async adapterFile() {
    if (!adapters) throw new Error("There are no adapters yet.");
    const kept = storedToken ? await store.get("adapters") : null;
    const same = kept && kept.meta.token === storedToken;
    return { bytes: same ? kept.bytes : await adapters.file(), info: adapters.info() };
  },

  /**
   * Train on `pairs` ({ image, mask, heldOut }) with `settings`; posts a "step" event per
   * step and an "epoch" event per finished epoch (after its held-out dice and, when `keep`,
   * storing its adapters). Resolves to `{ notFinite }` when the run ends: the report of a step whose
   * loss or adapters were not finite, or null.
   */
  async train({ settings, pairs, maxSteps, keep = true }) {
    requireModel();
    if (training) throw new Error("Training is already running.");
    const run = new wasm.TrainingRun(model, settings);
    training = { paused: false, stopped: false, resume: null };
    try {
      for (const pair of pairs) run.add_pair(pair.image, pair.mask, pair.heldOut);
      const learnable = run.learnable_parameters();
      const epochTable = [];
      const epochLosses = [];
      let epochStarted = performance.now();
      let steps = 0;
      let notFinite = null;
      for (;;) {
        if (training.stopped) break;
        if (training.paused) {
          postMessage({ event: "paused", data: { steps } });
          const pausedAt = performance.now();
          await new Promise((resolve) => (training.resume = resolve));
          // An epoch's time is the time it trained.
          epochStarted += performance.now() - pausedAt;
          continue;
        }
        if (steps >= maxSteps) break;
        const started = performance.now();
        const report = await run.step();
        if (report.kind === "finished") break;
        if (report.kind === "not-finite") {
          notFinite = report;
          break;
        }
        steps++;
        epochLosses.push(report.loss);
        postMessage({ event: "step", data: { ...report, learnable, ms: performance.now() - started } });
        if (report.epoch_done) {
          const metrics = await run.evaluate();
          const meanLoss = epochLosses.reduce((a, b) => a + b, 0) / epochLosses.length;
          epochLosses.length = 0;
          const row = { epoch: report.epoch + 1, meanLoss, metrics, seconds: (performance.now() - epochStarted) / 1000 };
          epochTable.push(row);
          setAdapters(run.adapters());
          const storeError = keep ? await keepAdapters(epochTable) : null;
          postMessage({ event: "epoch", data: { row, info: adapters.info(), storeError, kept: keep } });
          epochStarted = performance.now();
        }
        // Let pause and stop messages in between steps.
        await yieldNow();
      }
      return { notFinite };
    } finally {
      run.free();
      training = null;
    }
  },

  pause() {
    if (training) training.paused = true;
    return null;
  },

  resume() {
    if (training) training.paused = false;
    wake();
    return null;
  },

  stop() {
    if (training) training.stopped = true;
    wake();
    return null;
  },

  /** Segment an image with the current adapters; keeps the scores for `view`. */
  async segment({ bytes }) {
    requireModel();
    if (training) throw new Error("Training is running on the same GPU model: stop it (or let it finish), then segment.");
    const next = await model.segment(adapters, bytes);
    result?.free();
    result = next;
    return { width: result.width, height: result.height, encoderMs: result.encoder_ms, totalMs: result.total_ms };
  },

  /** The last segmentation thresholded at `threshold`: overlay and mask PNGs, defects. */
  view({ threshold }) {
    if (!result) throw new Error("Nothing is segmented yet.");
    const view = result.view(threshold, 1);
    const out = { layer: view.layer_png, mask: view.mask_png, defects: JSON.parse(view.defects_json) };
    view.free();
    return out;
  },

  memory: () => wasm.wasm_memory_bytes(),
};

self.onmessage = async (event) => {
  const { id, op, args } = event.data;
  try {
    if (!(op in ops)) throw new Error(`the GPU worker has no operation "${op}"`);
    if (!wasm && op !== "init") throw new Error("the GPU worker has not started");
    const value = await ops[op](args ?? {});
    postMessage({ id, ok: true, value }, transferable(value));
  } catch (e) {
    const message = e && e.message ? e.message : String(e);
    postMessage({ id, ok: false, error: { message, name: e?.name ?? "Error" } });
  }
};

// A crash outside any operation (a panic in a callback, a lost device) reaches the page.
self.addEventListener("unhandledrejection", (e) => {
  postMessage({ event: "crash", data: { message: e.reason?.message ?? String(e.reason) } });
});
