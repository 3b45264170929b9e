// The whole page, driven as a visitor would, in headless Chromium with WebGPU (SwiftShader):
// load SAM weights (the reference's tiny random model), synthesize pairs from a real board,
// train adapters, segment a real defective DeepPCB board; then reload, go offline, fall back
// to the CPU, refuse a wrong weights file, and run the kiosk. Screenshots go to scratch/e2e/.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { readFile, writeFile } from "node:fs/promises";
import {
  root,
  artifacts,
  serveDist,
  launch,
  pageUnderTest,
  openPage as open,
  keptNames,
  screenshot,
} from "./harness.mjs";

const WEIGHTS = join(root, "tests/fixtures/sam/tiny_pad.pth");
const BOARD = join(root, "www/samples/deeppcb-20085295-normal.jpg");
const SIZE = "128"; // the tiny model's weights are made at 96 px; 128 resamples them
const figures = {};

const shared = pageUnderTest({
  finish: async () => {
    await writeFile(join(artifacts, "page-figures.json"), JSON.stringify(figures, null, 2) + "\n");
    console.log(`figures: ${JSON.stringify(figures)}`);
  },
});

// The adapter file downloaded after training, compared with the one after a reload.
let trainedAdapters = null;

/** Click the adapters' download link and read the file the browser saved. */
async function downloadAdapters(page, name) {
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download-adapters")]);
  assert.equal(download.suggestedFilename(), name);
  const bytes = await readFile(await download.path());
  // safetensors: an 8-byte little-endian header length, then the JSON header.
  assert.ok(bytes.length > 8 + Number(bytes.readBigUInt64LE(0)), "a whole safetensors file");
  assert.equal(String.fromCharCode(bytes[8]), "{");
  return bytes;
}

async function loadWeights(page, file = WEIGHTS) {
  await page.fill("#image-size", SIZE);
  await page.setInputFiles("#weights-input", file);
  await page.waitForSelector("body[data-model=ready]", { timeout: 120_000 });
}

test("a visitor loads SAM, synthesizes pairs, trains adapters and segments a real board", async () => {
  const { page, errors, foreign } = await open(shared.context, shared.server.url);
  const csp = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => m.content);
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'sha256-/);

  await loadWeights(page);
  const info = await page.textContent("#model-info");
  assert.match(info, /SAM tiny .* at 128x128 input.* on webgpu/, info);

  await page.setInputFiles("#file-input", BOARD);
  await page.waitForSelector("#normal-list li");
  await page.fill("#pair-count", "8");
  await page.fill("#heldout-count", "2");
  await page.click("#synth-button");
  await page.waitForFunction(() => document.querySelectorAll(".pair").length === 10, null, { timeout: 60_000 });
  assert.equal(await page.$$eval(".pair.held-out", (r) => r.length), 2);

  // Batch 8 = all training pairs: every step sees the same batch, so on random tiny weights
  // the loss falls slowly but at every step.
  await page.fill("#train-epochs", "3");
  await page.fill("#train-batch", "8");
  await page.fill("#train-lr", "0.001");
  const trainStarted = Date.now();
  await page.click("#train-start");
  await page.waitForSelector("body[data-training=done]", { timeout: 300_000 });
  figures.tinyTrainingSeconds = (Date.now() - trainStarted) / 1000;
  const losses = JSON.parse(await page.$eval("#train-progress", (e) => e.dataset.losses));
  assert.equal(losses.length, 3, `3 epochs of 1 step: ${losses}`);
  for (let i = 1; i < losses.length; i++) assert.ok(losses[i] < losses[i - 1], `the loss falls: ${losses}`);
  figures.tinyLosses = losses;
  const rows = await page.$$eval("#epoch-table tbody tr", (trs) => trs.map((tr) => tr.cells[2].textContent));
  assert.equal(rows.length, 3);
  for (const dice of rows) assert.match(dice, /^\d\.\d{4}$/, "held-out dice after every epoch");
  // The model trains in a worker: the figure is the page's own thread (reported, not asserted).
  figures.tinyLongestTaskMs = Number(await page.$eval("#train-progress", (e) => e.dataset.longestTaskMs));
  figures.tinyStepMs = JSON.parse(await page.$eval("#train-progress", (e) => e.dataset.stepMs));
  assert.equal(figures.tinyStepMs.length, 3);
  assert.match(await page.textContent("#adapters-status"), /epoch 3.*kept in this browser/);
  trainedAdapters = await downloadAdapters(page, "pros-adapters-k1-e3.safetensors");
  figures.adapterFileBytes = trainedAdapters.length;

  await page.click("#segment-samples .sample");
  await page.waitForSelector("#segment-view[data-defects]", { timeout: 120_000 });
  const status = await page.textContent("#segment-status");
  assert.match(status, /deeppcb-12000001-defective\.jpg, 640x640: \d+ defects? at threshold 0\.50 with trained adapters/, status);
  const listed = await page.$$eval("#defect-list li", (lis) => lis.length);
  assert.equal(String(listed), await page.$eval("#segment-view", (e) => e.dataset.defects));
  // The threshold slider re-thresholds without running the model again.
  await page.$eval("#threshold", (e) => {
    e.value = "0.05";
    e.dispatchEvent(new Event("input"));
  });
  await page.waitForSelector("#segment-view[data-threshold='0.05']");
  const low = Number(await page.$eval("#segment-view", (e) => e.dataset.defects));
  assert.equal(await page.$$eval("#defect-list li", (lis) => lis.length), low);
  const lowStatus = await page.textContent("#segment-status");
  assert.ok(lowStatus.includes(`: ${low} defect`) && lowStatus.includes("threshold 0.05"), lowStatus);
  assert.ok(await page.$eval("#download-mask", (a) => a.href.startsWith("blob:")));
  await screenshot(page, "page-trained.png");
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, [], "no request leaves the page's origin");
  await page.close();
});

test("after a reload the weights, pairs and adapters come from browser storage, also offline", async () => {
  const { page, errors, started } = await open(shared.context, shared.server.url);
  await page.waitForSelector("body[data-model=ready]", { timeout: 120_000 });
  figures.reloadToReadySeconds = (Date.now() - started) / 1000;
  assert.equal(await page.$eval("body", (b) => b.dataset.weightsFrom), "storage");
  assert.equal(await page.$$eval(".pair", (r) => r.length), 10);
  const boards = await page.$$eval("#normal-list li", (lis) => lis.map((li) => li.textContent));
  assert.deepEqual(boards, ["deeppcb-20085295-normal.jpg"], "the uploaded board comes back");
  assert.match(await page.textContent("#adapters-status"), /restored from this browser: K = 1, 3 epochs/);
  assert.equal(await page.$eval("#loss-curve", (c) => c.dataset.steps), "3", "the loss curve comes back");
  const rows = await page.$$eval("#epoch-table tbody tr", (trs) => trs.map((tr) => tr.cells[2].textContent));
  assert.equal(rows.length, 3, "the epoch table with its held-out dice comes back");
  for (const dice of rows) assert.match(dice, /^\d\.\d{4}$/);
  // The restored adapters download as the very file of the trained ones, and load back.
  const restored = await downloadAdapters(page, "pros-adapters-k1-e3.safetensors");
  assert.ok(restored.equals(trainedAdapters), "the same adapter file after a reload");
  await page.setInputFiles("#adapters-input", { name: "downloaded.safetensors", mimeType: "application/octet-stream", buffer: restored });
  await page.waitForFunction(() =>
    /Adapters from downloaded\.safetensors: K = 1, 3 epochs; kept in this browser/.test(
      document.querySelector("#adapters-status").textContent,
    ),
  );
  await page.waitForSelector("body[data-offline=ready]", { timeout: 30_000 });

  await shared.context.setOffline(true);
  try {
    await page.reload();
    await page.waitForSelector("body[data-model=ready]", { timeout: 120_000 });
    await page.click("#segment-samples .sample:nth-child(2)");
    await page.waitForSelector("#segment-view[data-defects]", { timeout: 120_000 });
    await screenshot(page, "page-offline.png");
  } finally {
    await shared.context.setOffline(false);
  }
  assert.deepEqual(errors, []);
  await page.close();
});

test("a wrong weights file gets its error and nothing made is lost", async () => {
  const { page } = await open(shared.context, shared.server.url);
  await page.waitForSelector("body[data-model=ready]", { timeout: 120_000 });
  await page.setInputFiles("#weights-input", {
    name: "sam_vit_b.pth",
    mimeType: "application/octet-stream",
    buffer: await readFile(join(root, "www/samples/deeppcb-12000001-normal.jpg")),
  });
  await page.waitForSelector("#error:not([hidden])");
  const message = await page.textContent("#error");
  assert.match(message, /^sam_vit_b\.pth: .*JPEG/, message);
  assert.match(await page.textContent("#weights-status"), /Still using tiny/);
  assert.equal(await page.$$eval(".pair", (r) => r.length), 10, "the pairs are still there");
  // A JPEG given as adapters is named as such; the restored adapters stay.
  await page.setInputFiles("#adapters-input", {
    name: "adapters.safetensors",
    mimeType: "application/octet-stream",
    buffer: await readFile(join(root, "www/samples/deeppcb-12000001-normal.jpg")),
  });
  await page.waitForFunction(() => /not an adapter file: it is a JPEG image/.test(document.querySelector("#error").textContent));
  assert.match(await page.textContent("#adapters-status"), /restored from this browser: K = 1, 3 epochs/);
  // A seed beyond what JavaScript counts exactly is named, and no pair is made or lost.
  await page.fill("#seed", "1e30");
  await page.click("#synth-button");
  await page.waitForFunction(() => /The seed must be a whole number/.test(document.querySelector("#error").textContent));
  assert.equal(await page.$$eval(".pair", (r) => r.length), 10);
  await page.fill("#seed", "1");
  // A batch of 0: the browser's own form check names the field and nothing starts (the page's
  // check behind it names fields the browser lets through, such as 2.5).
  await page.fill("#train-batch", "0");
  await page.click("#train-start");
  assert.notEqual(await page.$eval("#train-batch", (e) => e.validationMessage), "");
  assert.notEqual(await page.$eval("body", (b) => b.dataset.training ?? ""), "running");
  assert.equal(await page.$eval("#train-start", (b) => b.disabled), false, "the form stays usable");
  await screenshot(page, "page-wrong-weights.png");
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");
  assert.match(await page.textContent("#earlier-errors"), /sam_vit_b\.pth/, "the message survives a reload");
  await page.close();
});

test("without WebGPU the page runs SAM on the CPU and says so", async () => {
  const plain = await launch({ webgpu: false });
  try {
    const { page, errors } = await open(plain, shared.server.url);
    assert.equal(await page.$eval("body", (b) => b.dataset.backend), "cpu");
    assert.match(await page.textContent("#gpu-status"), /WebGPU unavailable.*CPU/);
    await loadWeights(page);
    assert.match(await page.textContent("#model-info"), /on cpu/);
    await page.click("#segment-samples .sample");
    await page.waitForSelector("#segment-view[data-defects]", { timeout: 120_000 });
    assert.match(await page.textContent("#segment-status"), /on cpu/);
    await screenshot(page, "page-cpu.png");
    assert.deepEqual(errors, []);
  } finally {
    await plain.close();
  }
});

test("the kiosk loads deployed weights by itself and completes two loops", async () => {
  const deployed = await serveDist({
    extra: {
      "/config.json": Buffer.from(JSON.stringify({ weights: "weights/tiny_pad.pth" })),
      "/weights/tiny_pad.pth": WEIGHTS,
    },
  });
  const kiosk = await launch();
  try {
    const { page, errors } = await open(kiosk, `${deployed.url}?kiosk&dwell=0`);
    await page.waitForSelector("body[data-kiosk-loops='2']", { timeout: 300_000 });
    assert.equal(await page.$eval("body", (b) => b.dataset.weightsFrom), "network");
    assert.ok(deployed.requests.includes("/weights/tiny_pad.pth"));
    const memory = JSON.parse(await page.$eval("body", (b) => b.dataset.kioskMemory));
    figures.kioskMemory = memory;
    assert.deepEqual(memory.slice(0, 2).map((m) => m.loop), [1, 2], "memory read after every loop");
    assert.equal(await page.$eval("body", (b) => b.dataset.kioskErrors ?? "0"), "0");
    const kept = await keptNames(page);
    assert.ok(!kept.some((k) => /^(pair|adapters|normal-)/.test(k)), `the kiosk keeps no boards, pairs or adapters: ${kept}`);
    for (const control of ["#synth-button", "#clear-pairs", "#train-start", "#download-adapters", "#segment-samples"]) {
      assert.ok(await page.isHidden(control), `${control} is not offered in the kiosk`);
    }
    assert.ok(kept.includes("weights"), `the deployed weights are kept: ${kept}`);
    await screenshot(page, "page-kiosk.png");
    assert.deepEqual(errors, []);
  } finally {
    await kiosk.close();
    await deployed.close();
  }
});
