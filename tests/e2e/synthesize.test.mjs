// The first page, driven as a visitor would: upload a real board, synthesize pairs, see them.

import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import { root, launch, pageUnderTest, openPage, keptNames, plantEntry, screenshot } from "./harness.mjs";

const shared = pageUnderTest();

/** Start making `count` pairs (none held out) from the first sample board. */
async function startSynthesis(page, count) {
  await page.click(".sample");
  await page.waitForSelector("#normal-list li");
  await page.fill("#pair-count", String(count));
  await page.fill("#heldout-count", "0");
  await page.click("#synth-button");
}

/** Clear pairs and boards, and wait until their storage is empty too. */
async function clearPairsAndBoards(page) {
  await page.click("#clear-pairs");
  await page.click("#clear-normals");
  await page.waitForFunction(() => document.querySelectorAll(".pair").length === 0);
  while ((await keptNames(page)).some((name) => /^(normal-|pair)/.test(name))) await page.waitForTimeout(50);
}

test("a visitor turns an uploaded board into synthetic pairs", async () => {
  const { page, errors, foreign } = await openPage(shared.context, shared.server.url);

  await page.setInputFiles("#file-input", join(root, "www/samples/deeppcb-20085295-normal.jpg"));
  await page.waitForSelector("#normal-list li");
  await page.fill("#pair-count", "3");
  await page.fill("#heldout-count", "0");
  await page.fill("#seed", "11");
  await page.click("#synth-button");
  await page.waitForFunction(() => document.querySelectorAll(".pair").length === 3, null, {
    timeout: 60_000,
  });
  await page.waitForFunction(() =>
    [...document.querySelectorAll(".pair img")].every((i) => i.complete && i.naturalWidth > 0),
  );

  const pairs = await page.$$eval(".pair", (rows) =>
    rows.map((r) => ({
      fingerprint: r.dataset.fingerprint,
      images: r.querySelectorAll("img").length,
      width: r.querySelector("img").naturalWidth,
      title: r.querySelector("h3").textContent,
    })),
  );
  assert.equal(pairs.length, 3);
  for (const p of pairs) {
    assert.equal(p.images, 3);
    assert.equal(p.width, 256, "pairs are made at the model's input size");
    assert.match(p.fingerprint, /^[0-9a-f]{64}$/);
    assert.match(p.title, /[1-9]\d* defects?/);
  }
  assert.equal(new Set(pairs.map((p) => p.fingerprint)).size, 3, "seeds give different pairs");

  // The mask preview has white (defect) pixels.
  const white = await page.$eval(".pair figure:nth-of-type(2) img", (img) => {
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] === 255) n++;
    return n;
  });
  assert.ok(white > 0, "the mask shows the defects");

  const gpu = await page.textContent("#gpu-status");
  assert.match(gpu, /WebGPU available/, gpu);
  const shot = await screenshot(page, "synthesize.png");
  await writeFile(join(root, "scratch", "e2e", "synthesize.txt"), `${gpu}\n${JSON.stringify(pairs, null, 2)}\n`);
  console.log(`screenshot: ${shot}`);
  assert.deepEqual(errors, []);
  assert.deepEqual(foreign, [], "no request leaves the page's origin");
  await page.close();
});

test("the board list comes back after a reload until cleared", async () => {
  const { page, errors } = await openPage(shared.context, shared.server.url);
  const names = await page.$$eval("#normal-list li", (lis) => lis.map((li) => li.textContent));
  assert.deepEqual(names, ["deeppcb-20085295-normal.jpg"], "the board the first test uploaded");
  // Two damaged entries in storage: one whose bytes are no image, one whose description is no
  // JSON. Both are named after a reload, and the good board still comes back.
  await plantEntry(page, "normal-000000000000001-000000", "GIF89a", encodeURIComponent('{"name":"garbage.png"}'));
  await plantEntry(page, "normal-000000000000002-000000", "\x89PNG", "not-json");
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
  const status = await page.textContent("#normal-status");
  assert.match(status, /^2 boards kept in this browser could not be read \(garbage\.png: .*GIF.*; normal-000000000000002-000000: the description kept with it in this browser is damaged .*\): click Clear boards/, status);
  assert.deepEqual(await page.$$eval("#normal-list li", (lis) => lis.map((li) => li.textContent)), names);
  await page.fill("#pair-count", "1");
  await page.fill("#heldout-count", "0");
  await page.click("#synth-button");
  await page.waitForFunction(() => /1 pairs? \(0 held out\)/.test(document.querySelector("#synth-progress").textContent), null, {
    timeout: 60_000,
  });
  await page.click("#clear-normals");
  assert.equal(await page.$$eval("#normal-list li", (lis) => lis.length), 0);
  assert.ok(await page.$eval("#clear-normals", (b) => b.disabled));
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
  assert.equal(await page.$$eval("#normal-list li", (lis) => lis.length), 0, "cleared for good");
  assert.equal(await page.textContent("#normal-status"), "", "the damaged entries went with them");
  assert.equal(await page.$$eval(".pair", (r) => r.length), 1, "clearing boards keeps the pairs");
  assert.deepEqual(errors, []);
  await page.close();
});

test("boards and pairs cannot be cleared while pairs are being made from them", async () => {
  const { page, errors } = await openPage(shared.context, shared.server.url);
  // Enough pairs that the clicks below land while they are being made.
  await startSynthesis(page, 200);
  await page.waitForSelector(".pair");
  await page.click("#clear-pairs");
  assert.match(await page.textContent("#error"), /Pairs are being made: clear them once that ends/);
  await page.click("#clear-normals");
  assert.match(await page.textContent("#error"), /Pairs are being made from these boards/);
  await page.waitForFunction(() => /^200 pairs/.test(document.querySelector("#synth-progress").textContent), null, {
    timeout: 300_000,
  });
  assert.equal(await page.$$eval(".pair", (r) => r.length), 200);
  assert.equal(await page.$$eval("#normal-list li", (lis) => lis.length), 1);
  assert.ok(await page.$eval("#error", (e) => e.hidden), "the refusal goes when the pairs are made");
  // The next test starts with nothing kept.
  await clearPairsAndBoards(page);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a reload mid-synthesis keeps the pairs made so far; a damaged pair list is named", async () => {
  const { page, errors } = await openPage(shared.context, shared.server.url);
  await startSynthesis(page, 200);
  await page.waitForFunction(() => document.querySelectorAll(".pair").length >= 6);
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
  const restored = await page.$$eval(".pair", (r) => r.length);
  assert.ok(restored >= 5 && restored < 200, `${restored} pairs back`);
  assert.match(
    await page.textContent("#synth-progress"),
    new RegExp(`^${restored} pairs restored .* The synthesis of 200 pairs was cut short`),
  );
  // The pair list's description damaged: said where the pairs are shown, and Clear pairs mends it.
  await plantEntry(page, "pairs.json", "", "not-json");
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
  assert.match(await page.textContent("#synth-progress"), /^The pair list kept in this browser cannot be read \(the description .* is damaged .*\): click Clear pairs/);
  await clearPairsAndBoards(page);
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
  assert.equal(await page.textContent("#synth-progress"), "");
  assert.deepEqual(errors, []);
  await page.close();
});

test("a file that is no image gets a clear error and keeps the page usable", async () => {
  const { page } = await openPage(shared.context, shared.server.url);
  await page.setInputFiles("#file-input", {
    name: "notes.png",
    mimeType: "image/png",
    buffer: Buffer.from("<!DOCTYPE html><html>not an image</html>"),
  });
  await page.waitForSelector("#error:not([hidden])");
  const message = await page.textContent("#error");
  assert.match(message, /notes\.png: .*not a PNG or JPEG.*HTML/);
  await page.click("#synth-button");
  assert.match(await page.textContent("#error"), /Add at least one normal image/);
  await screenshot(page, "bad-file.png");
  await page.close();
});

test("without WebGPU the page says so and still synthesizes", async () => {
  const plain = await launch({ webgpu: false });
  try {
    const { page } = await openPage(plain, shared.server.url);
    await page.waitForFunction(() => !/Checking/.test(document.querySelector("#gpu-status").textContent));
    assert.match(await page.textContent("#gpu-status"), /WebGPU unavailable/);
    await page.click(".sample");
    await page.waitForSelector("#normal-list li");
    await page.fill("#pair-count", "1");
    await page.fill("#heldout-count", "0");
    await page.click("#synth-button");
    await page.waitForSelector(".pair", { timeout: 60_000 });
    await screenshot(page, "no-webgpu.png");
  } finally {
    await plain.close();
  }
});
