// Shared pieces of the end-to-end tests: a static server for the built page (dist/) on
// 127.0.0.1 and headless Chromium with WebGPU on the CPU (SwiftShader).

import { createServer } from "node:http";
import { readFile, mkdir, mkdtemp } from "node:fs/promises";
import { extname, join, normalize, resolve } from "node:path";
import { tmpdir } from "node:os";
import { before, after } from "node:test";
import { chromium } from "playwright-core";

export const root = resolve(import.meta.dirname, "../..");
export const dist = join(root, "dist");
export const artifacts = join(root, "scratch", "e2e");

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".css": "text/css",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".json": "application/json",
  ".safetensors": "application/octet-stream",
  ".pth": "application/octet-stream",
};

/**
 * Serve dist/ on 127.0.0.1 at a free port; resolves to { url, close, requests }. `extra`
 * maps URL paths to files or buffers served besides (or instead of) dist/'s files, as a
 * deployer would put weights and a config.json beside the page.
 */
export async function serveDist({ extra = {} } = {}) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
    requests.push(path);
    if (path in extra) {
      const body = Buffer.isBuffer(extra[path]) ? extra[path] : await readFile(extra[path]);
      res.writeHead(200, {
        "content-type": TYPES[extname(path)] ?? "application/octet-stream",
        "content-length": body.length,
      });
      res.end(body);
      return;
    }
    const file = join(dist, path.endsWith("/") ? path + "index.html" : path);
    if (!file.startsWith(dist)) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise((ok) => server.close(ok)),
  };
}

/** Headless Chromium from Debian with WebGPU enabled (unless `webgpu` is false). */
export async function launch({ webgpu = true } = {}) {
  const profile = await mkdtemp(join(tmpdir(), "pcb-pros-chromium-"));
  const args = [
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ];
  if (webgpu) args.push("--enable-unsafe-webgpu");
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args,
  });
}

/** Collect every URL a page asks for that is not on `origin` (nor blob: or data:). */
export function watchForeignRequests(page, origin) {
  const foreign = [];
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith(origin) && !url.startsWith("blob:") && !url.startsWith("data:")) foreign.push(url);
  });
  return foreign;
}

/** Collect console errors and uncaught exceptions of a page. */
export function watchErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`console: ${m.text()}`);
  });
  return errors;
}

export async function screenshot(page, name) {
  await mkdir(artifacts, { recursive: true });
  const path = join(artifacts, name);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * The set-up every page test file shares: before its tests, serve dist/ and start Chromium
 * with WebGPU; after them, close both (then run `finish`, if given). The returned object's
 * `server` and `context` are set once the tests run.
 */
export function pageUnderTest({ finish } = {}) {
  const shared = { server: undefined, context: undefined };
  before(async () => {
    shared.server = await serveDist();
    shared.context = await launch();
  });
  after(async () => {
    await shared.context?.close();
    await shared.server?.close();
    await finish?.();
  });
  return shared;
}

/**
 * Open `url` in a new tab of `context`, watching its errors and any request that leaves its
 * origin; unless `ready` is false, wait until the page says it is ready.
 */
export async function openPage(context, url, { ready = true } = {}) {
  const page = await context.newPage();
  const errors = watchErrors(page);
  const foreign = watchForeignRequests(page, new URL(url).origin);
  const started = Date.now();
  await page.goto(url);
  if (ready) await page.waitForSelector("body[data-ready=true]", { timeout: 120_000 });
  return { page, errors, foreign, started };
}

/** The names the page keeps in browser storage (its Cache API entries under `__store/`). */
export function keptNames(page) {
  return page.evaluate(async () =>
    (await (await caches.open("pcb-pros-store-v1")).keys())
      .map((r) => new URL(r.url).pathname)
      .filter((p) => p.startsWith("/__store/"))
      .map((p) => p.slice("/__store/".length)),
  );
}

/** Put an entry into the page's storage as the page would, with `meta` as its raw header. */
export function plantEntry(page, name, body, meta) {
  return page.evaluate(
    async ({ name, body, meta }) => {
      const cache = await caches.open("pcb-pros-store-v1");
      const headers = meta === null ? {} : { "x-pcb-pros-meta": meta };
      await cache.put(new URL(`__store/${name}`, location.href).href, new Response(body, { headers }));
    },
    { name, body, meta },
  );
}
