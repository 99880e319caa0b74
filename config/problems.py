"""RFC 9457 problem details: one error format for every API of OneMap.

A view (or anything it calls) raises `Problem`; `problem_response` renders it. The body is
{type, title, status, detail} with content type application/problem+json, so API clients (GDAL,
QGIS, scripts) get a machine-readable reason instead of an HTML error page."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
# No problem catalogue is published: "about:blank" tells the client that the HTTP status and the
# title say everything (RFC 9457 section 4.2.1).
ABOUT_BLANK = "about:blank"

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    500: "Internal Server Error",
}


class Problem(Exception):
    """An error a client can act on. `extra` members are added to the body (RFC 9457 extensions)."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, type_: str = ABOUT_BLANK,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or TITLES.get(status, "Error")
        self.type = type_
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "title": self.title, "status": self.status, "detail": self.detail, **self.extra}


def problem_response(problem: Problem) -> HttpResponse:
    response = HttpResponse(json.dumps(problem.body(), ensure_ascii=False), status=problem.status,
                            content_type=PROBLEM_CONTENT_TYPE)
    for name, value in problem.headers.items():
        response[name] = value
    return response


def unauthorized(detail: str = "Log in, or send Authorization: Bearer <token>.") -> Problem:
    # WWW-Authenticate is mandatory on a 401 (RFC 9110 section 15.5.2).
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="OneMap"'})


def problem_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a view so a raised `Problem` becomes its response."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Problem as problem:
            return problem_response(problem)

    return wrapper
