/* OneMap field app's service worker (rendered by frontend/pwa.py). It keeps the app shell so the
   page opens without a network: the page itself (network first, the last good copy offline) and
   its static files (cache first; a new release is a new cache name, the old one is dropped).
   Tiles, APIs and sockets are never answered from here. */
const CACHE = 'onemap-field-{{ version }}';
const SHELL = {{ shell|safe }};
const SCOPE = '{{ scope }}';

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('onemap-field-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== location.origin) return;
  if (request.mode === 'navigate' && url.pathname === SCOPE) {
    event.respondWith(fetch(request).then((response) => {
      // A redirect to the login page is not the app: keep the last good copy instead.
      if (response.ok && !response.redirected) {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(SCOPE, copy));
      }
      return response;
    }).catch(() => caches.match(SCOPE)));
    return;
  }
  if (SHELL.includes(url.pathname)) {
    event.respondWith(caches.match(url.pathname).then((hit) => hit || fetch(request)));
  }
});
