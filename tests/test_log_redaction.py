"""Tokens never reach a log (issue 14): the real server's output, with uvicorn's WebSocket lines
(logged even with --no-access-log) and its access log turned on, holds no API, device or tile
token; and the filter keeps uvicorn's record shapes intact."""

from __future__ import annotations

import logging
import socket
import tempfile
from urllib.parse import urlsplit

import pytest
from uvicorn.logging import AccessFormatter

from accounts.jurisdiction import Jurisdiction
from config.logredact import REDACTED, RedactTokens, redact
from tests.live_server import running_server
from tiles.auth import issue_token

API_TOKEN = "om_" + "S3cr3tApiT0ken" * 3
DEVICE_TOKEN = "dev_" + "S3cr3tDev1ce" * 3


def test_redact_rewrites_every_credential_form() -> None:
    tile = issue_token(1, Jurisdiction("city"))
    text = (f'127.0.0.1:5 - "WebSocket /ws/map?token={API_TOKEN}" [accepted] '
            f"/tiles/x/1/2/3.mvt?v=1&t={tile}&q=1 Authorization: Bearer {DEVICE_TOKEN} raw {API_TOKEN}")
    clean = redact(text)
    assert API_TOKEN not in clean and DEVICE_TOKEN not in clean and tile not in clean
    assert f"?token={REDACTED}" in clean and f"&t={REDACTED}&q=1" in clean and "?v=1" in clean


def test_the_filter_keeps_uvicorns_access_record_working() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", f"/ws/map?token={API_TOKEN}", "1.1", 200), None)
    assert RedactTokens().filter(record)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert line == f'127.0.0.1:5 - "GET /ws/map?token={REDACTED} HTTP/1.1" 200 OK'


def websocket_handshake(base: str, path: str) -> bytes:
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {address.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        return sock.recv(4096)


@pytest.mark.django_db
def test_the_real_servers_log_holds_no_token(django_db_blocker) -> None:  # type: ignore[no-untyped-def]
    tile = issue_token(1, Jurisdiction("city"))
    with tempfile.TemporaryFile() as output:
        with django_db_blocker.unblock(), running_server(log_level="info", output=output) as base:
            assert websocket_handshake(base, f"/ws/map?token={API_TOKEN}").startswith(b"HTTP/1.1 101")
            assert websocket_handshake(base, f"/ws/field?token={DEVICE_TOKEN}").startswith(b"HTTP/1.1 101")
        with django_db_blocker.unblock(), running_server(log_level="info", options=("--access-log",),
                                                         output=output) as base:
            websocket_handshake(base, f"/ws/map?token={API_TOKEN}")
            with socket.create_connection((urlsplit(base).hostname, urlsplit(base).port), timeout=30) as sock:
                sock.sendall(f"GET /tiles/districts/0/0/0.mvt?t={tile} HTTP/1.1\r\nHost: x\r\n"
                             "Connection: close\r\n\r\n".encode())
                while sock.recv(65536):
                    pass
        output.seek(0)
        log = output.read().decode(errors="replace")
    assert '"WebSocket /ws/map?token=' in log, log  # the lines are there ...
    assert "/tiles/districts/0/0/0.mvt?t=" in log, log
    for secret in (API_TOKEN, DEVICE_TOKEN, tile, tile.split(":")[-1]):  # ... without the tokens
        assert secret not in log, log
