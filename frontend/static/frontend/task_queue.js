/* The phone's outbox for task actions: kept in localStorage until the server has answered, so an
   action taken offline (or while the page is closed) is sent when the connection returns, once.
   Exactly once comes from the server: a transition carries If-Match with the task's version, so a
   replay of one that already went through (the answer was lost) is a 409 — taken as done when the
   task's state has moved on; a create carries an Idempotency-Key. Photos wait in the item as data
   URLs and are uploaded before the feedback that names them (their ids kept in the item, so an
   interrupted flush does not upload them twice).

   It is also the FieldLink's outbox ({send, flush}): other messages (fixes, acks) go straight to
   the socket, and every (re)connect flushes the queue. */
import {ApiError, api} from './task_api.js';

const KEY = 'onemap.field.queue';
const RETRY_MS = 5000;

export class TaskQueue {
  constructor(link, {onDone, onFailed, onChange} = {}) {
    this.link = link;
    this.hooks = {onDone, onFailed, onChange};
    this.flushing = null;
    window.addEventListener('online', () => this.flush());
    setInterval(() => { if (this.items().length) this.flush(); }, RETRY_MS);
  }

  items() { try { return JSON.parse(localStorage.getItem(KEY) || '[]'); } catch (error) { return []; } }
  save(items) { localStorage.setItem(KEY, JSON.stringify(items)); if (this.hooks.onChange) this.hooks.onChange(items); }
  pending(taskId) { return this.items().filter((item) => item.task === taskId); }

  /** The outbox interface: task actions are queued; anything else goes to the socket now. */
  send(message) {
    if (message && message.type === 'task_action') { this.enqueue(message); return true; }
    return this.link.sendNow(message);
  }

  enqueue({task, action, version, fromState, body = {}, photos = []}) {
    const id = crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    this.save([...this.items(), {id, task, action, version, fromState, body, photos, uploaded: [],
                                 queuedAt: new Date().toISOString()}]);
    this.flush();
    return id;
  }

  update(id, change) { this.save(this.items().map((item) => (item.id === id ? {...item, ...change} : item))); }
  drop(id) { this.save(this.items().filter((item) => item.id !== id)); }

  flush() {
    if (!this.flushing) this.flushing = this.run().finally(() => { this.flushing = null; });
    return this.flushing;
  }

  async run() {
    for (const item of this.items()) {
      try {
        const task = await this.deliver(item);
        this.drop(item.id);
        if (this.hooks.onDone) this.hooks.onDone(item, task);
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 401 || error.status >= 500 || error.status === 429) return;  // offline or later: keep it
        if (error.status === 409 && error.problem.state === item.fromState && !item.refreshed) {
          // Same state, newer version (e.g. the deadline was extended): still ours to take, once.
          const current = await api('GET', `/api/tasks/${item.task}`).catch(() => null);
          if (current && current.allowed_actions.includes(item.action)) {
            this.update(item.id, {version: current.version, refreshed: true});
            return this.run();
          }
        }
        this.drop(item.id);
        // A 409 after the state moved on: the action (or a later one) already went through.
        const done = error.status === 409 && error.problem.state && error.problem.state !== item.fromState;
        if (done && this.hooks.onDone) this.hooks.onDone(item, null);
        else if (!done && this.hooks.onFailed) this.hooks.onFailed(item, error);
      }
    }
  }

  async deliver(item) {
    const uploaded = [...(item.uploaded || [])];
    for (let i = uploaded.length; i < item.photos.length; i += 1) {
      const blob = await (await fetch(item.photos[i].data)).blob();
      const form = new FormData();
      form.append('file', blob, item.photos[i].name || `photo-${i}.jpg`);
      const photo = await api('POST', `/api/tasks/${item.task}/photos`, {form});
      uploaded.push(photo.id);
      this.update(item.id, {uploaded});
    }
    const body = {...item.body, ...(uploaded.length ? {photos: uploaded} : {})};
    return api('POST', `/api/tasks/${item.task}/${item.action}`, {body, headers: {'If-Match': String(item.version)}});
  }
}

/** A picked photo as a data URL, scaled down to at most `side` px (phones take 12 MP photos). */
export function photoDataUrl(file, side = 1600) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    const url = URL.createObjectURL(file);
    image.onload = () => {
      const scale = Math.min(1, side / Math.max(image.width, image.height));
      const canvas = document.createElement('canvas');
      canvas.width = Math.round(image.width * scale);
      canvas.height = Math.round(image.height * scale);
      canvas.getContext('2d').drawImage(image, 0, 0, canvas.width, canvas.height);
      URL.revokeObjectURL(url);
      resolve({name: (file.name || 'photo').replace(/\.\w+$/, '') + '.jpg', data: canvas.toDataURL('image/jpeg', 0.85)});
    };
    image.onerror = () => { URL.revokeObjectURL(url); reject(new Error('not an image')); };
    image.src = url;
  });
}
