// The kiosk over many loops (20 by default; PROS_KIOSK_LOOPS sets it) with the tiny reference
// weights deployed beside the page: prints wasm memory and JS heap after every loop, so growth
// from one loop to the next shows. Not in CI (about 25 s per loop on SwiftShader).
//
//   (cd tests/e2e && node kiosk.slow.mjs)

import { join } from "node:path";
import { root, serveDist, launch, watchErrors, screenshot } from "./harness.mjs";

const loops = Number(process.env.PROS_KIOSK_LOOPS ?? 20);
const server = await serveDist({
  extra: {
    "/config.json": Buffer.from(JSON.stringify({ weights: "weights/tiny_pad.pth" })),
    "/weights/tiny_pad.pth": join(root, "tests/fixtures/sam/tiny_pad.pth"),
  },
});
const context = await launch();
try {
  const page = await context.newPage();
  const errors = watchErrors(page);
  const started = Date.now();
  await page.goto(`${server.url}?kiosk&dwell=0`);
  let seen = 0;
  while (seen < loops) {
    await page.waitForFunction((n) => Number(document.body.dataset.kioskLoops ?? 0) > n, seen, {
      timeout: 600_000,
    });
    const memory = JSON.parse(await page.$eval("body", (b) => b.dataset.kioskMemory));
    for (const m of memory.filter((m) => m.loop > seen && m.loop <= loops)) {
      const mb = (x) => (x === null ? "n/a" : (x / 1048576).toFixed(2));
      console.log(
        `loop ${String(m.loop).padStart(2)}: wasm ${mb(m.wasm)} MB, worker wasm ${mb(m.worker)} MB, ` +
          `JS heap ${mb(m.js)} MB, ` +
          `${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
      seen = m.loop;
    }
  }
  const kioskErrors = await page.$eval("body", (b) => b.dataset.kioskErrors ?? "0");
  console.log(`kiosk errors: ${kioskErrors}; console errors: ${JSON.stringify(errors)}`);
  await screenshot(page, "kiosk-long.png");
} finally {
  await context.close();
  await server.close();
}
