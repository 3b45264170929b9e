// The page's glue: reads the controls, calls the library (wasm) one short step at a time and
// shows the results. The work itself lives in the Rust library.

const SAMPLES = [
  { file: "deeppcb-12000001-normal.jpg", label: "DeepPCB 12000001" },
  { file: "deeppcb-20085295-normal.jpg", label: "DeepPCB 20085295" },
  { file: "deeppcb-44000012-normal.jpg", label: "DeepPCB 44000012" },
  { file: "pku-01-normal.jpg", label: "PKU board 01 (colour)" },
];
const MAX_SIDE = 1024;

const $ = (id) => document.getElementById(id);
// Let the browser paint and handle input between pieces of work.
const yieldToBrowser = () => new Promise((resolve) => setTimeout(resolve, 0));

let wasm;
let synthesizer;
const normals = []; // { name, index }

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
}

function messageOf(e) {
  return e && e.message ? e.message : String(e);
}

async function addNormal(name, bytes) {
  try {
    const index = synthesizer.add_image(bytes, MAX_SIDE);
    normals.push({ name, index });
    const li = document.createElement("li");
    li.textContent = name;
    li.dataset.index = String(index);
    $("normal-list").append(li);
    clearError();
  } catch (e) {
    showError(`${name}: ${messageOf(e)}`);
  }
}

async function addFiles(files) {
  for (const file of files) {
    await addNormal(file.name, new Uint8Array(await file.arrayBuffer()));
    await yieldToBrowser();
  }
}

function pngUrl(bytes) {
  return URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
}

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

async function synthesize(event) {
  event.preventDefault();
  clearError();
  if (normals.length === 0) {
    showError("Add at least one normal image first: pick a sample or drop a board image.");
    return;
  }
  const count = Math.max(1, Math.min(64, Number($("pair-count").value) || 1));
  const seed = Math.max(0, Number($("seed").value) || 0);
  const config = wasm.Synthesizer.default_config();
  config.defects_max = Math.max(config.defects_min, Number($("defects-max").value) || 1);

  const pairs = $("pairs");
  for (const old of pairs.querySelectorAll("img")) URL.revokeObjectURL(old.src);
  pairs.replaceChildren();
  $("synth-button").disabled = true;
  const started = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const normal = normals[i % normals.length];
      const pairSeed = seed + i;
      const view = synthesizer.pair(normal.index, config, BigInt(pairSeed));
      const stem = `pair-${pairSeed}`;
      const row = document.createElement("div");
      row.className = "pair";
      row.dataset.fingerprint = view.fingerprint;
      const defects = JSON.parse(view.defects_json);
      const title = document.createElement("h3");
      title.textContent = `${normal.name}, seed ${pairSeed}: ${defects.length} defects`;
      row.append(
        title,
        figure(pngUrl(view.image_png), "image", `${stem}-image.png`),
        figure(pngUrl(view.mask_png), "mask", `${stem}-mask.png`),
        figure(pngUrl(view.overlay_png), "overlay", `${stem}-overlay.png`),
      );
      view.free();
      pairs.append(row);
      $("synth-progress").textContent = `Pair ${i + 1} of ${count}`;
      await yieldToBrowser();
    }
    const seconds = (performance.now() - started) / 1000;
    $("synth-progress").textContent = `${count} pairs in ${seconds.toFixed(2)} s`;
  } catch (e) {
    showError(messageOf(e));
  } finally {
    $("synth-button").disabled = false;
  }
}

function setUpSamples() {
  for (const sample of SAMPLES) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sample";
    const img = document.createElement("img");
    img.src = `samples/${sample.file}`;
    img.alt = sample.label;
    button.append(img, document.createTextNode(sample.label));
    button.addEventListener("click", async () => {
      const response = await fetch(`samples/${sample.file}`);
      await addNormal(sample.label, new Uint8Array(await response.arrayBuffer()));
    });
    $("samples").append(button);
  }
}

function setUpDrop() {
  const zone = $("dropzone");
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    addFiles(e.dataTransfer.files);
  });
  $("file-input").addEventListener("change", (e) => addFiles(e.target.files));
}

async function showGpu() {
  const status = $("gpu-status");
  try {
    const info = await wasm.gpu_info();
    if (info.webgpu) {
      status.textContent = `WebGPU available: ${info.adapter}`;
      status.className = "status ok";
    } else {
      status.textContent = `WebGPU unavailable: ${info.reason}. The synthesizer does not need it; training and segmentation will.`;
      status.className = "status warn";
    }
  } catch (e) {
    status.textContent = `WebGPU check failed: ${messageOf(e)}`;
    status.className = "status warn";
  }
}

async function main() {
  wasm = window.wasmBindings;
  synthesizer = new wasm.Synthesizer();
  setUpSamples();
  setUpDrop();
  $("synth-form").addEventListener("submit", synthesize);
  document.body.dataset.ready = "true";
  await showGpu();
}

if (window.wasmBindings) {
  main();
} else {
  addEventListener("TrunkApplicationStarted", main, { once: true });
}
