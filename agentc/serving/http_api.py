"""The HTTP API of a served build, as a FastAPI app over one loaded `Session`.

    POST /v1/agents/{agent}        {"query": "..."} (the agent's inputs) -> {"id", "agent", "outputs"}
    POST /v1/chat/completions      OpenAI-style, for agents with one text input
    GET  /healthz                  {"ok": true, "agent": ...}
    GET  /metrics                  Prometheus text: requests by status, latency histogram, in flight

Errors are JSON, `{"error": {"type", "message"}}`, with a status: 400 for bad input (naming the
input), 401 without the bearer token (when the server has an API key), 404 for another
agent, 413 for a body over the limit, 500 for a request that failed (naming the node and its
graph.py line). Every response carries `X-Request-Id`.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from agentc.runtime.host_ops import InputError, RunError

# Latency buckets (seconds) of the histogram /metrics serves.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Counters of one replica, in Prometheus' text format."""

    def __init__(self, agent: str):
        self.agent = agent
        self.lock = threading.Lock()
        self.by_status: dict[int, int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.count, self.total_s, self.in_flight = 0, 0.0, 0

    def started(self) -> None:
        with self.lock:
            self.in_flight += 1

    def ended(self, status: int, seconds: float) -> None:
        with self.lock:
            self.in_flight -= 1
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.count += 1
            self.total_s += seconds
            for i, le in enumerate(BUCKETS):
                if seconds <= le:
                    self.buckets[i] += 1

    def text(self) -> str:
        a = f'agent="{self.agent}"'
        with self.lock:
            lines = ["# HELP agentc_requests_total Requests answered, by HTTP status.",
                     "# TYPE agentc_requests_total counter"]
            lines += [f'agentc_requests_total{{{a},status="{s}"}} {n}' for s, n in sorted(self.by_status.items())]
            errors = sum(n for s, n in self.by_status.items() if s >= 400)
            lines += ["# HELP agentc_request_errors_total Requests answered with an error status.",
                      "# TYPE agentc_request_errors_total counter", f"agentc_request_errors_total{{{a}}} {errors}",
                      "# HELP agentc_request_seconds Request latency, arrival at the replica to response.",
                      "# TYPE agentc_request_seconds histogram"]
            lines += [f'agentc_request_seconds_bucket{{{a},le="{le:g}"}} {n}' for le, n in zip(BUCKETS, self.buckets)]
            lines += [f'agentc_request_seconds_bucket{{{a},le="+Inf"}} {self.count}',
                      f"agentc_request_seconds_sum{{{a}}} {self.total_s:.6f}",
                      f"agentc_request_seconds_count{{{a}}} {self.count}",
                      "# HELP agentc_requests_in_flight Requests being answered now.",
                      "# TYPE agentc_requests_in_flight gauge", f"agentc_requests_in_flight{{{a}}} {self.in_flight}"]
        return "\n".join(lines) + "\n"


def error(status: int, kind: str, message: str, rid: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}, "id": rid}, status_code=status,
                        headers={"X-Request-Id": rid})


def make_app(session, api_key: str | None = None, max_body_bytes: int = 1 << 20) -> FastAPI:
    """The app for one session. `api_key`: requests must send `Authorization: Bearer KEY`."""
    app = FastAPI(title=f"agentc: {session.plan['agent']}", docs_url=None, redoc_url=None, openapi_url=None)
    agent, inputs = session.plan["agent"], list(session.plan["inputs"])
    metrics = Metrics(agent)

    async def body_of(request: Request, rid: str):
        """The JSON object of the request, or the error response to send instead."""
        if api_key is not None:
            got = request.headers.get("authorization", "")
            if not hmac.compare_digest(got.encode(), f"Bearer {api_key}".encode()):
                return None, error(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer KEY)",
                                   rid)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return None, error(413, "too_large", f"request body of {declared} bytes; the limit is {max_body_bytes}",
                               rid)
        raw = await request.body()
        if len(raw) > max_body_bytes:
            return None, error(413, "too_large", f"request body of {len(raw)} bytes; the limit is {max_body_bytes}",
                               rid)
        try:
            body = json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as e:
            return None, error(400, "bad_json", f"the body is not JSON ({e})", rid)
        if not isinstance(body, dict):
            return None, error(400, "bad_input", f"expected a JSON object, got {type(body).__name__}", rid)
        return body, None

    def answer(values: dict, rid: str):
        """Run the agent; (outputs, None) or (None, error response)."""
        metrics.started()
        t0, status = time.perf_counter(), 200
        try:
            return session.run(values)["outputs"], None
        except InputError as e:
            status = 400
            return None, error(400, "bad_input", str(e), rid)
        except RunError as e:
            status = 500
            return None, error(500, "run_error", str(e), rid)
        finally:
            metrics.ended(status, time.perf_counter() - t0)

    @app.post("/v1/agents/{name}")
    async def run_agent(name: str, request: Request):
        rid = uuid.uuid4().hex
        body, bad = await body_of(request, rid)
        if bad is not None:
            return bad
        if name != agent:
            return error(404, "unknown_agent", f"no agent '{name}' here (this server runs '{agent}')", rid)
        outputs, bad = await _in_thread(answer, body, rid)
        if bad is not None:
            return bad
        return JSONResponse({"id": rid, "agent": agent, "outputs": outputs}, headers={"X-Request-Id": rid})

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        rid = uuid.uuid4().hex
        body, bad = await body_of(request, rid)
        if bad is not None:
            return bad
        if len(inputs) != 1:
            return error(400, "bad_input", f"agent '{agent}' takes {len(inputs)} inputs ({', '.join(inputs)}); "
                                           f"chat completions need an agent with one text input", rid)
        messages = body.get("messages")
        users = [m.get("content") for m in messages or [] if isinstance(m, dict) and m.get("role") == "user"]
        if not users or not isinstance(users[-1], str):
            return error(400, "bad_input", "messages: expected a list with a user message whose content is text", rid)
        outputs, bad = await _in_thread(answer, {inputs[0]: users[-1]}, rid)
        if bad is not None:
            return bad
        text = "\n".join(str(o) for o in outputs)
        return JSONResponse({"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(time.time()),
                             "model": agent, "choices": [{"index": 0, "finish_reason": "stop",
                                                          "message": {"role": "assistant", "content": text}}]},
                            headers={"X-Request-Id": rid})

    @app.get("/healthz")
    async def healthz():
        return {"ok": not session.closed, "agent": agent, "inputs": inputs, "sla_ms": session.plan.get("sla_ms")}

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.text(), media_type="text/plain; version=0.0.4")

    return app


async def _in_thread(fn, *args):
    """A request runs on a thread: the session blocks until its outputs are ready."""
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
