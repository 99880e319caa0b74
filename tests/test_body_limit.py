"""Bodies over the limit are refused before they are read: a real server answers 413 to the
headers of a 200 MB upload, and stops reading a chunked body at the limit."""

from __future__ import annotations

import json
import socket

import pytest

from config.bodylimit import DEFAULT_LIMIT, limit_for
from tests.live_server import running_server

pytestmark = pytest.mark.django_db


def raw_request(port: int, head: bytes, body_parts: list[bytes] | None = None) -> tuple[int, dict]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for part in body_parts or []:
            try:
                sock.sendall(part)
            except OSError:
                break  # the server answered and closed: it did not wait for the rest
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 10:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1].split(b"\r\n0\r\n")[0] or b"{}")


def test_limits_are_declared_per_path() -> None:
    assert limit_for("/api/tasks/12/photos") > 10 * 1024 * 1024
    assert limit_for("/api/tasks") == DEFAULT_LIMIT


def test_a_declared_oversize_upload_is_refused_before_its_body() -> None:
    with running_server() as base:
        port = int(base.rsplit(":", 1)[1])
        head = (b"POST /api/tasks/1/photos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data;"
                b" boundary=x\r\nContent-Length: 200000000\r\n\r\n")
        status, problem = raw_request(port, head)  # no body byte is sent: the answer comes anyway
        assert status == 413 and problem["status"] == 413


def test_a_chunked_body_is_cut_at_the_limit() -> None:
    with running_server() as base:
        port = int(base.rsplit(":", 1)[1])
        head = (b"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        parts = [b"%x\r\n" % len(chunk) + chunk + b"\r\n"] * (DEFAULT_LIMIT // len(chunk) + 8)
        status, problem = raw_request(port, head, parts)
        assert status == 413
