"""`POST /providers/{name}/callback`: a provider's completion call, verified, then queued.

A callback that cannot be queued (Redis down) is answered 503 with Retry-After, so the
provider delivers it again; the poll sweep finds the result otherwise. It answers at once:
the worker's finalize path asks the provider itself, so a callback delivered twice, or
together with a poll, finalizes once. A genuine callback for a task no generation holds is
answered 404 (unknown provider: 404 too; bad signature: 401; malformed: 400), unless its URL's
query names, under our MAC, a generation waiting for a job at that provider after an uncertain
submit: that job is adopted (domain/use_cases/adoption.py).

A fast provider's callback can arrive before the submit committed its task id, even while the
create call still waits for its answer: when its URL names (under our MAC) a generation still
being submitted without a task id, it is a 503 with Retry-After, so the provider delivers it
again, and it is then followed or adopted. Without that query it is a 404, and nothing is lost
once the submit commits: the generation is PROCESSING with its next poll due at once. A database outage during
the task lookup is a 503 with Retry-After (the unit of work turns it into ServiceUnavailable),
never a 500 or a 404, so the provider delivers it again.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from domain.errors import NotFound, ServiceUnavailable
from infrastructure.bootstrap import Services

MAX_CALLBACK_BYTES = 256 * 1024

router = APIRouter()


@router.post("/providers/{name}/callback", include_in_schema=False)
async def provider_callback(name: str, request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
        return JSONResponse({"error": "callback body too large"}, status_code=413)
    body = await request.body()
    if len(body) > MAX_CALLBACK_BYTES:
        return JSONResponse({"error": "callback body too large"}, status_code=413)
    try:
        task_id = await services.processing.receive_callback(
            name, dict(request.headers), body, dict(request.query_params)
        )
    except KeyError:
        return JSONResponse({"error": "unknown provider"}, status_code=404)
    except PermissionError:
        return JSONResponse({"error": "callback signature rejected"}, status_code=401)
    except ValueError:
        return JSONResponse({"error": "malformed callback"}, status_code=400)
    except NotFound:  # genuine, but for no task of ours (logged by the use case)
        return JSONResponse({"error": "unknown task"}, status_code=404)
    except ServiceUnavailable as exc:  # the queue (Redis) is down: the provider delivers it again later
        return JSONResponse(
            {"error": "temporarily unavailable"},
            status_code=503,
            headers={"Retry-After": str(exc.retry_after_seconds)},
        )
    return JSONResponse({"ok": True, "taskId": task_id})
