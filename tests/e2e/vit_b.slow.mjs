// The page's flow with full SAM ViT-B weights (random, from the reference script) in headless
// Chromium on SwiftShader: too slow for every CI run, so it is a script that prints figures.
//
//   python3 scripts/reference/make_sam_fixtures.py --full vit_b --size 256   # scratch/sam_full_256/
//   (cd tests/e2e && PROS_VIT_B_WEIGHTS=../../scratch/sam_full_256/vit_b.pth node vit_b.slow.mjs)
//
// It serves the built page (dist/) with the weights beside it, as a deployer would, and
// prints: time to ready on the first visit (download) and the second (browser storage), the
// image encoder's time, the time of training steps, the longest task on the page's thread,
// the page's wasm memory, and the peak resident memory of all Chromium processes.

import { execFileSync } from "node:child_process";
import { resolve, basename } from "node:path";
import { serveDist, launch, watchErrors, screenshot } from "./harness.mjs";

const weights = process.env.PROS_VIT_B_WEIGHTS;
if (!weights) {
  console.error("set PROS_VIT_B_WEIGHTS to a SAM ViT-B .pth (see the comment at the top)");
  process.exit(2);
}
const name = basename(weights);
const server = await serveDist({
  extra: {
    "/config.json": Buffer.from(JSON.stringify({ weights: `weights/${name}` })),
    [`/weights/${name}`]: resolve(weights),
  },
});

// Peak resident memory of the Chromium process tree, polled every 500 ms.
let peakKb = 0;
const poll = setInterval(() => {
  try {
    const rows = execFileSync("ps", ["-eo", "pid=,ppid=,rss=,args="], { encoding: "utf8" })
      .trim()
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .map(([pid, ppid, rss, ...args]) => ({ pid, ppid, rss: Number(rss), args: args.join(" ") }));
    const roots = rows.filter((r) => r.args.includes("pcb-pros-chromium-") && !r.args.includes("--type="));
    const tree = new Set(roots.map((r) => r.pid));
    for (let grew = true; grew; ) {
      grew = false;
      for (const r of rows) if (tree.has(r.ppid) && !tree.has(r.pid)) (tree.add(r.pid), (grew = true));
    }
    const kb = rows.filter((r) => tree.has(r.pid)).reduce((a, r) => a + r.rss, 0);
    peakKb = Math.max(peakKb, kb);
  } catch {
    // ps unavailable: no peak figure
  }
}, 500);

// PROS_VIT_B_CPU=1: burn's CPU backend in the worker's wasm (the page's ?cpu) instead of
// WebGPU on SwiftShader; PROS_VIT_B_EPOCHS: epochs of one step each (2).
const cpu = Boolean(process.env.PROS_VIT_B_CPU);
const epochs = process.env.PROS_VIT_B_EPOCHS ?? "2";
const figures = { weights: name, backend: cpu ? "cpu" : "webgpu" };
const context = await launch();
try {
  const page = await context.newPage();
  const errors = watchErrors(page);
  page.on("console", (m) => {
    if (/step|evaluate|loaded/.test(m.text())) console.log(`  page: ${m.text()}`);
  });
  let t = Date.now();
  await page.goto(cpu ? `${server.url}?cpu` : server.url);
  await page.waitForSelector("body[data-model=ready]", { timeout: 1_800_000 });
  figures.firstVisitReadySeconds = (Date.now() - t) / 1000;
  console.log(`first visit (download + store + load): ${figures.firstVisitReadySeconds} s`);

  t = Date.now();
  await page.reload();
  await page.waitForSelector("body[data-model=ready]", { timeout: 1_800_000 });
  figures.cachedReadySeconds = (Date.now() - t) / 1000;
  console.log(`second visit (weights from browser storage): ${figures.cachedReadySeconds} s`);
  console.log(`model: ${await page.textContent("#model-info")}`);

  await page.click("#segment-samples .sample");
  await page.waitForSelector("#segment-view[data-defects]", { timeout: 1_800_000 });
  figures.encoderMs = Number(await page.$eval("#segment-view", (e) => e.dataset.encoderMs));
  console.log(`segment: ${await page.textContent("#segment-status")}`);

  await page.click("#samples .sample");
  await page.waitForSelector("#normal-list li");
  await page.fill("#pair-count", "4");
  await page.fill("#heldout-count", "0");
  await page.click("#synth-button");
  await page.waitForFunction(() => document.querySelectorAll(".pair").length === 4);
  await page.fill("#train-epochs", epochs);
  await page.fill("#train-batch", "4");
  await page.click("#train-start");
  // Progress as it comes, so that a run stopped early still tells how far it got.
  let shown = "";
  const progress = setInterval(async () => {
    const text = await page.textContent("#train-progress").catch(() => "");
    if (text && text !== shown) console.log(`  ${((Date.now() - t) / 1000).toFixed(0)} s: ${(shown = text)}`);
  }, 10_000);
  t = Date.now();
  await page.waitForSelector("body[data-training=done]", { timeout: 1_800_000 }).finally(() => clearInterval(progress));
  // Each step as the worker timed it; the longest task on the page's own thread.
  figures.stepMs = JSON.parse((await page.$eval("#train-progress", (e) => e.dataset.stepMs)) ?? "[]");
  figures.longestTaskMs = Number(await page.$eval("#train-progress", (e) => e.dataset.longestTaskMs));
  figures.pageWasmMemoryMB = Math.round((await page.evaluate(() => window.wasmBindings.wasm_memory_bytes())) / 1048576);
  // A real defective board with the adapters just trained.
  await page.click("#segment-samples .sample:nth-child(2)");
  await page.waitForFunction(() => /with trained adapters/.test(document.querySelector("#segment-status").textContent), null, {
    timeout: 1_800_000,
  });
  figures.trainedEncoderMs = Number(await page.$eval("#segment-view", (e) => e.dataset.encoderMs));
  console.log(`segment after training: ${await page.textContent("#segment-status")}`);
  await screenshot(page, "vit-b.png");
  figures.consoleErrors = errors;
} finally {
  clearInterval(poll);
  figures.peakChromiumRssMB = Math.round(peakKb / 1024);
  await context.close();
  await server.close();
  console.log(JSON.stringify(figures, null, 2));
}
