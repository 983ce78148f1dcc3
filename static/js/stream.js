// The WebSocket: JSON in and out, reconnecting with back-off when it drops.

export class Stream {
  constructor(path, { onMessage, onOpen, onStatus }) {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // the path may come as an absolute ws:// URL; keep only its path, on this page's host
    this.url = `${proto}//${location.host}${new URL(path, location.href).pathname}`;
    this.onMessage = onMessage;
    this.onOpen = onOpen;
    this.onStatus = onStatus || (() => {});
    this.ws = null;
    this.delay = 250;
    this.everOpened = false;
    this.connect();
  }

  connect() {
    this.onStatus("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 250;
      this.onStatus("open");
      const again = this.everOpened;
      this.everOpened = true;
      this.onOpen(again);
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this.onMessage(msg, ev.data.length);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.onStatus("closed");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 4000);
    };
    ws.onerror = () => {};  // onclose follows and reconnects
  }

  get open() { return this.ws && this.ws.readyState === WebSocket.OPEN; }

  send(msg) {
    if (!this.open) return false;  // the reconnect re-sends the run's state
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  // For tests and the reconnect path: drop the current socket as a network failure would.
  drop() { if (this.ws) this.ws.close(); }
}
