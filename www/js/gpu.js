// The page's side of the GPU worker (worker.js): start it on the same build of the
// library the page loaded, call its operations as promises, hear its training events.

/** The URLs of the library's JavaScript bindings and WebAssembly that trunk wrote. */
function libraryUrls() {
  const loader = [...document.querySelectorAll("script[type=module]:not([src])")]
    .map((s) => s.textContent)
    .find((text) => /_bg\.wasm/.test(text));
  const js = loader?.match(/from\s+['"]([^'"]+\.js)['"]/)?.[1];
  const wasm = loader?.match(/['"]([^'"]+_bg\.wasm)['"]/)?.[1];
  if (!js || !wasm) throw new Error("the page's WebAssembly loader was not found: the build is incomplete");
  return { js: new URL(js, location.href).href, wasmUrl: new URL(wasm, location.href).href };
}

export class GpuWorker {
  constructor({ onEvent }) {
    this.worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    this.pending = new Map();
    this.next = 1;
    this.onEvent = onEvent;
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => {
      e.preventDefault();
      const error = new Error(`The GPU worker failed: ${e.message || "it could not start"}`);
      for (const { reject } of this.pending.values()) reject(error);
      this.pending.clear();
      this.onEvent("crash", { message: error.message });
    };
  }

  /** Start the worker's copy of the library. */
  start() {
    return this.call("init", libraryUrls());
  }

  receive(message) {
    if (message.event) {
      this.onEvent(message.event, message.data);
      return;
    }
    const waiting = this.pending.get(message.id);
    if (!waiting) return;
    this.pending.delete(message.id);
    if (message.ok) waiting.resolve(message.value);
    else waiting.reject(Object.assign(new Error(message.error.message), { name: message.error.name }));
  }

  /** Run operation `op` in the worker; `transfer` lists buffers handed over, not copied. */
  call(op, args = {}, transfer = []) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }
}
