"""RFC 9457 problem details: one error format for every API of OneMap.

A view (or anything it calls) raises `Problem`; `problem_response` renders it. The body is
{type, title, status, detail} with content type application/problem+json, so API clients (GDAL,
QGIS, scripts) get a machine-readable reason instead of an HTML error page."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
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
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
# Paths whose clients are programs (GDAL, QGIS, the field app, scripts): Django's own error pages
# (404, 500, CSRF, too many fields) answer them with a problem too, never with HTML.
API_PREFIXES = ("/api/", "/ogc/", "/tiles/", "/ingest/")


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


def suspicious_problem(error: SuspiciousOperation) -> Problem:
    """What Django raises on a request it will not read (too many fields, too large a body)."""
    if isinstance(error, RequestDataTooBig):
        return Problem(413, "the request body is too large", reason="too_large")
    # TooManyFieldsSent and the like: Django's own message names the limit, not the client's data.
    return Problem(400, str(error)[:200] or "the request was refused", reason=type(error).__name__)


def problem_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap a view so a raised `Problem` becomes its response. Django's refusals to read a request
    (SuspiciousOperation, e.g. more query fields than DATA_UPLOAD_MAX_NUMBER_FIELDS) become one
    too: the ingest fast path runs views outside Django's handler, which would make them 500s."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Problem as problem:
            return problem_response(problem)
        except SuspiciousOperation as error:
            return problem_response(suspicious_problem(error))

    return wrapper


# --- Django's error views (config/urls.py, settings.CSRF_FAILURE_VIEW) ---------------------------

# Headers a refusal carries that the client needs (RFC 9110): kept when the body is replaced.
KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


class ApiProblemMiddleware:
    """An error on an API path that is not JSON (the empty 405 of Django's require_GET, a page a
    middleware or a decorator answers) becomes a problem with the same status and headers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400 or not is_api(request) or response.streaming:
            return response
        if "json" in response.get("Content-Type", ""):
            return response  # a problem already, or a JSON error of the view's own
        allow = response.get("Allow")
        detail = f"{request.method} is not allowed here; use {allow}" if response.status_code == 405 and allow \
            else getattr(response, "reason_phrase", "") or "refused"
        problem = problem_response(Problem(response.status_code, detail))
        for name in KEPT_HEADERS:
            if response.has_header(name):
                problem[name] = response[name]
        return problem


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def bad_request(request: HttpRequest, exception: Exception | None = None, template_name: str = "400.html") -> HttpResponse:
    if is_api(request):
        if isinstance(exception, SuspiciousOperation):
            return problem_response(suspicious_problem(exception))
        return problem_response(Problem(400, "the request was refused"))
    from django.views import defaults

    return defaults.bad_request(request, exception, template_name)  # type: ignore[arg-type]


def permission_denied(request: HttpRequest, exception: Exception | None = None,
                      template_name: str = "403.html") -> HttpResponse:
    if is_api(request):
        return problem_response(Problem(403, str(exception)[:200] if exception and str(exception) else "forbidden"))
    from django.views import defaults

    return defaults.permission_denied(request, exception, template_name)  # type: ignore[arg-type]


def page_not_found(request: HttpRequest, exception: Exception | None = None,
                   template_name: str = "404.html") -> HttpResponse:
    if is_api(request):
        # Not the resolver's message: it lists the URL patterns (with DEBUG off it is not shown either).
        return problem_response(Problem(404, f"no resource at {request.path[:200]}"))
    from django.views import defaults

    return defaults.page_not_found(request, exception, template_name)  # type: ignore[arg-type]


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    if is_api(request):
        return problem_response(Problem(500, "the server failed; the failure is logged"))
    from django.views import defaults

    return defaults.server_error(request, template_name)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if is_api(request):
        return problem_response(Problem(
            403, f"CSRF check failed ({reason}): send the X-CSRFToken header with a session, or use "
                 "Authorization: Bearer <token>", title="Forbidden", reason="csrf_failed"))
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)
