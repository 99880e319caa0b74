"""Probes for a load balancer or an orchestrator.

- `GET /healthz`: the process answers (no database, no Redis): restart it if this fails.
- `GET /readyz`: the database and Redis (when REDIS_URL is set) are reachable, each checked with a
  fresh connection and a 2 s timeout: 200 `{"status": "ready", "checks": {...}}`, or 503 with an
  RFC 9457 body whose `down` names what is not (send traffic elsewhere meanwhile)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from config import dbhealth
from config.problems import Problem, problem_response, problem_view

CHECK_TIMEOUT_S = 2


def _redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_S,
                                  socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        client.ping()
    except (redis.RedisError, OSError) as error:
        return f"{type(error).__name__}: {str(error)[:200]}"
    finally:
        client.close()
    return None


@problem_view
def healthz(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        raise Problem(405, "use GET", headers={"Allow": "GET, HEAD"})
    return JsonResponse({"status": "ok"})


@problem_view
def readyz(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        raise Problem(405, "use GET", headers={"Allow": "GET, HEAD"})
    failures = {"database": dbhealth.probe(), "redis": _redis()}
    checks = {name: "ok" if why is None else f"unavailable: {why}" for name, why in failures.items()}
    if not settings.REDIS_URL:
        checks["redis"] = "not used (no REDIS_URL)"
    down = sorted(name for name, why in failures.items() if why is not None)
    if down:
        return problem_response(Problem(503, f"unavailable: {', '.join(down)}", title="Service Unavailable",
                                        headers={"Retry-After": str(dbhealth.RETRY_AFTER_S)}, down=down, checks=checks))
    return JsonResponse({"status": "ready", "checks": checks})
