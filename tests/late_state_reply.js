// Hold the kernel's update_states reply (and every kernel message after it, to keep their order) until
// DELAY ms after the first widget view started waiting for its model ("Loading widget...").
(() => {
  const DELAY = __DELAY__;
  const probe = { viewStarted: null, statesArrived: null, statesReleased: null };
  window.__lateStates = probe;
  new MutationObserver(() => {
    if (probe.viewStarted === null && document.body && document.body.innerText.includes("Loading widget...")) {
      probe.viewStarted = performance.now();
    }
  }).observe(document, { childList: true, subtree: true, characterData: true });
  const text = (data) => typeof data === "string" ? data
    : data instanceof ArrayBuffer ? new TextDecoder("utf-8", { fatal: false }).decode(data) : "";
  const Native = window.WebSocket;
  class LateStatesSocket extends Native {
    constructor(...args) {
      super(...args);
      this.__held = null;      // null: pass through; an array: messages held, in order
      this.__handler = null;
      super.onmessage = (event) => this.__receive(event);
    }
    set onmessage(handler) { this.__handler = handler; }
    get onmessage() { return this.__handler; }
    __deliver(event) { if (this.__handler) this.__handler.call(this, event); }
    __receive(event) {
      if (this.__held === null && text(event.data).includes('"update_states"')) {
        probe.statesArrived = performance.now();
        this.__held = [];
        const start = probe.viewStarted === null ? probe.statesArrived : probe.viewStarted;
        setTimeout(() => {
          probe.statesReleased = performance.now();
          const held = this.__held; this.__held = [];
          for (const e of held) this.__deliver(e);
          this.__held = null;
        }, Math.max(0, start + DELAY - performance.now()));
      }
      if (this.__held !== null) this.__held.push(event); else this.__deliver(event);
    }
  }
  window.WebSocket = LateStatesSocket;
})();
