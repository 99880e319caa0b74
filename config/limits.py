"""Limits the server enforces at the protocol level (config/http.py, the Makefile's server) and the
application repeats for any other server: one place for both."""

# WebSocket messages (uvicorn --ws-max-size): above this a frame is refused while it arrives,
# not buffered up to uvicorn's default 16 MiB first (40 sockets x 15 MB frames took a worker to
# 1.4 GB). A field app's batch of buffered fixes fits.
WS_MAX_BYTES = 1024 * 1024
# A connection must complete its request line and headers within this (config.http): uvicorn's
# keep-alive timeout is cancelled by the first byte, so a client that sends half a header kept
# the connection (and its memory) for ever.
HEADER_TIMEOUT_S = 10.0
# On SIGTERM, requests and WebSockets in flight get this long before they are cancelled
# (uvicorn --timeout-graceful-shutdown): an open WebSocket kept a worker alive for minutes.
GRACEFUL_SHUTDOWN_S = 10
