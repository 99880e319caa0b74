/* The phone's link to OneMap: /ws/field (realtime/README.md). Fixes go up, pushes come down and
   are acknowledged. It reconnects by itself; on every (re)connect the server redelivers every
   push not yet acknowledged, so the app drops duplicates by id.

   Everything the app sends goes through `link.outbox`. The default outbox sends when the socket
   is open and otherwise drops (a position is worth nothing later). Actions that must arrive
   exactly once (accept, arrive, feedback: they come with tasks) will use a queue module with the
   same interface ({send(message), flush()}) that keeps them, with idempotency keys, until the
   server confirms them: set it with link.setOutbox(queue). */

export class FieldLink {
  constructor(url, handlers) {
    this.url = url;
    this.handlers = handlers;  // {type: (message) => void}, plus onState(open)
    this.socket = null;
    this.open = false;
    this.retryMs = 1000;
    this.outbox = {send: (message) => this.sendNow(message), flush() {}};
  }

  setOutbox(outbox) { this.outbox = outbox; }

  connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(`${scheme}//${location.host}${this.url}`);
    this.socket = socket;
    socket.onopen = () => {
      this.open = true;
      this.retryMs = 1000;
      if (this.handlers.onState) this.handlers.onState(true);
      this.outbox.flush(this);
    };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      const handler = this.handlers[message.type];
      if (handler) handler(message);
    };
    socket.onclose = (event) => {
      this.open = false;
      if (this.handlers.onState) this.handlers.onState(false);
      if (event.code === 4401) {  // the session expired: log in again, then come back
        location.assign(`/login/?next=${encodeURIComponent(location.pathname)}`);
        return;
      }
      setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 15000);
    };
  }

  send(message) { return this.outbox.send(message); }

  sendNow(message) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }
}
