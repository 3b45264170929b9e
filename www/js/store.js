// What the page keeps across visits, in the browser's Cache API: the SAM weights, the
// synthetic pairs and the adapters of the last finished epoch. Nothing leaves the browser.
// The page and its GPU worker (worker.js) both use this module.

const STORE = "pcb-pros-store-v1";
const META = "x-pcb-pros-meta";

/** The storage refused to keep something: says why and what to do. */
export class StoreError extends Error {}

const available = () => typeof caches !== "undefined";
// Keys beside the page (this file is in js/), the same from the page and from its worker.
const keyOf = (name) => new URL(`../__store/${name}`, import.meta.url).href;

function explain(e, what) {
  const quota = e && (e.name === "QuotaExceededError" || /quota/i.test(String(e.message)));
  if (quota) {
    return new StoreError(
      `The browser refused to store ${what}: its storage quota for this site is full. ` +
        "It stays loaded for this visit only. Free space (forget stored weights, clear site data) " +
        "or allow this site more storage, then try again.",
    );
  }
  return new StoreError(`The browser could not store ${what}: ${e && e.message ? e.message : e}`);
}

/** Keep `bytes` under `name` with a small JSON-able `meta`. */
export async function put(name, bytes, meta = {}, what = name) {
  if (!available()) throw new StoreError(`This browser offers no Cache API here: ${what} is not kept.`);
  try {
    const cache = await caches.open(STORE);
    const headers = { "content-type": "application/octet-stream", [META]: encodeURIComponent(JSON.stringify(meta)) };
    await cache.put(keyOf(name), new Response(bytes, { headers }));
  } catch (e) {
    throw explain(e, what);
  }
}

/** The small JSON description kept with an entry; a damaged one is named as such. */
function metaOf(response) {
  try {
    return JSON.parse(decodeURIComponent(response.headers.get(META) ?? "%7B%7D")) ?? {};
  } catch (e) {
    throw new Error(`the description kept with it in this browser is damaged (${e.message})`);
  }
}

/** `{ bytes, meta }` kept under `name`, or null. */
export async function get(name) {
  if (!available()) return null;
  const cache = await caches.open(STORE);
  const response = await cache.match(keyOf(name));
  if (!response) return null;
  const meta = metaOf(response);
  return { bytes: new Uint8Array(await response.arrayBuffer()), meta };
}

/** The meta kept under `name` without reading the bytes, or null. */
export async function meta(name) {
  if (!available()) return null;
  const response = await (await caches.open(STORE)).match(keyOf(name));
  if (!response) return null;
  return metaOf(response);
}

export async function remove(name) {
  if (!available()) return;
  await (await caches.open(STORE)).delete(keyOf(name));
}

/** Names kept whose name starts with `prefix`. */
export async function names(prefix = "") {
  if (!available()) return [];
  const keys = await (await caches.open(STORE)).keys();
  const base = keyOf("");
  return keys.map((r) => r.url.slice(base.length)).filter((n) => n.startsWith(prefix));
}

// Errors are kept in localStorage so that a reload (or a crash) still shows them.
const ERRORS = "pcb-pros-errors";

export function rememberError(message) {
  try {
    const kept = JSON.parse(localStorage.getItem(ERRORS) ?? "[]");
    const list = Array.isArray(kept) ? kept : [];
    list.push({ time: new Date().toISOString(), message });
    localStorage.setItem(ERRORS, JSON.stringify(list.slice(-5)));
  } catch {
    // Storage off: the message is still on screen.
  }
}

export function earlierErrors() {
  try {
    const list = JSON.parse(localStorage.getItem(ERRORS) ?? "[]");
    return Array.isArray(list) ? list.filter((e) => e && typeof e.message === "string") : [];
  } catch {
    return [];
  }
}

export function forgetErrors() {
  try {
    localStorage.removeItem(ERRORS);
  } catch {
    // nothing kept
  }
}
