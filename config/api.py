"""The REST API of OneMap (django-ninja): one NinjaAPI, each domain adds its router. The OpenAPI 3
document is at /api/schema and the interactive docs at /api/docs, both served by OneMap itself
(ninja's own static Swagger UI, no CDN). Every error is an RFC 9457 problem (config/problems.py)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import SessionAuth

from config.problems import Problem, problem_response, unauthorized


class UserAuth(SessionAuth):
    """A logged-in browser session (with Django's CSRF check on unsafe methods), or a bearer API
    token (accounts.middleware has already resolved it; token requests carry no cookie)."""

    def __call__(self, request: HttpRequest) -> Any:
        if getattr(request, "bearer_token_used", False):
            return request.user if request.user.is_authenticated else None
        return super().__call__(request)


api = NinjaAPI(title="OneMap API", version="1", urls_namespace="api", docs_url="/docs", openapi_url="/schema",
               auth=UserAuth(), description="Dispatch (tasks, recommendations, KPIs) of the one map. Errors are "
               "RFC 9457 problem details. Authenticate with a session or `Authorization: Bearer om_...`.")


@api.exception_handler(Problem)
def _problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return problem_response(exc)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem_response(unauthorized())


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))[:200]} for e in exc.errors[:20]]
    first = errors[0] if errors else {"loc": [], "msg": "invalid input"}
    return problem_response(Problem(422, f"{'.'.join(first['loc'])}: {first['msg']}", title="Unprocessable Content",
                                    errors=errors))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return problem_response(Problem(exc.status_code, str(exc.message)))


def _register() -> None:
    from command.api import router as command_router

    api.add_router("/", command_router)


_register()
