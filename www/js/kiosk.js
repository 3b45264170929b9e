// ?kiosk: the whole story, unattended, in a loop: synthesize pairs from the sample boards,
// train a few steps, segment the real defective boards. Any error is shown and the loop
// starts again; memory is read after every loop so growth shows.

import {
  $,
  app,
  DEFECTIVE_SAMPLES,
  addSampleNormals,
  fetchSample,
  messageOf,
  segment,
  showError,
  sleep,
  synthesizeSet,
  train,
} from "./app.js";

const KIOSK_TRAINING = { k: 1, epochs: 1, batch_size: 2, learning_rate: 1e-4, loss: "bce-dice", seed: 0 };

function say(text) {
  const status = $("kiosk-status");
  status.hidden = false;
  status.textContent = text;
}

/** Bytes of wasm memory (the page's and the GPU worker's) and of the page's JavaScript heap. */
async function memory() {
  return {
    wasm: app.wasm.wasm_memory_bytes(),
    worker: await app.gpu.call("memory"),
    js: performance.memory ? performance.memory.usedJSHeapSize : null,
  };
}

async function waitForModel() {
  while (!app.model) {
    say(
      "Waiting for SAM weights: deploy them beside the page (config.json), or open the page once " +
        "without ?kiosk and load them there; they are then kept in this browser.",
    );
    await sleep(1000);
  }
}

// Memory figures kept: the first loop's and the latest ones, so that a kiosk running for days
// keeps a bounded history.
const HISTORY = 200;

/**
 * Browsers go full screen only on a visitor's gesture: the first tap anywhere asks for it.
 * A kiosk browser started with `--kiosk` is full screen from the start.
 */
export function fullScreenOnFirstTap() {
  const root = document.documentElement;
  if (!root.requestFullscreen) return;
  addEventListener(
    "pointerdown",
    () => {
      if (!document.fullscreenElement) root.requestFullscreen().catch(() => {});
    },
    { once: true },
  );
}

export async function runKiosk({ dwellMs }) {
  document.body.classList.add("kiosk");
  const samples = await Promise.all(DEFECTIVE_SAMPLES.map(async (s) => [s.file, await fetchSample(s.file)]));
  const history = [];
  for (let loop = 1; ; loop++) {
    try {
      await waitForModel();
      if (app.normals.length === 0) await addSampleNormals({ keep: false });
      say(`Loop ${loop}: synthesizing defects on defect-free boards`);
      // The kiosk's pairs and adapters stay out of storage: a visitor's own stay as they were.
      await synthesizeSet({ count: 8, heldOut: 2, seed: loop * 100, defectsMax: 4, keep: false });
      say(`Loop ${loop}: training one adapter on the synthetic pairs`);
      await train({ ...KIOSK_TRAINING, seed: loop }, { maxSteps: 4, keep: false });
      for (const [name, bytes] of samples) {
        say(`Loop ${loop}: segmenting a real defective board (${name})`);
        await segment(name, bytes);
        await sleep(dwellMs);
      }
      history.push({ loop, ...(await memory()) });
      if (history.length > HISTORY) history.splice(1, 1);
      document.body.dataset.kioskLoops = String(loop);
      document.body.dataset.kioskMemory = JSON.stringify(history);
    } catch (e) {
      showError(`Kiosk loop ${loop} failed: ${messageOf(e).replace(/\.$/, "")}. Starting again.`);
      document.body.dataset.kioskErrors = String(Number(document.body.dataset.kioskErrors ?? 0) + 1);
      await sleep(Math.max(1000, dwellMs));
    }
  }
}
