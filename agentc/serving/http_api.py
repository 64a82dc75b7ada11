"""The HTTP API of a served build, as a FastAPI app over one loaded `Session`.

    POST /v1/agents/{agent}        {"query": "..."} (the agent's inputs) -> {"id", "agent", "outputs"}
    POST /v1/chat/completions      OpenAI-style, for agents with one text input ("stream": true too)
    GET  /healthz                  {"ok": true, "agent": ...}
    GET  /metrics                  Prometheus text: requests by status, latency histogram, in flight

Errors are JSON, `{"error": {"type", "message"}}`, with a status: 400 for bad input (naming the
input), 401 without the bearer token (when the server has an API key), 404 for another
agent, 413 for a body over the limit, 500 for a request that failed (naming the node and its
graph.py line), 503 with Retry-After when admission control refuses a request, 504 when a
request runs past its timeout (its work still ends on its own; the client stops waiting).
Every response carries `X-Request-Id`.

Admission control (per replica): a request is refused at once when its predicted completion,
(requests in flight + 1) x the service time, passes its deadline (the agent's SLA) by more
than `margin` (a fraction of it). The service time starts as the placement's prediction and
follows what the replica measures (an exponential average of each request's latency divided
by the requests it shared the replica with), so queues stay bounded under overload.
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

# A load test tells an emulated staged service how many tokens the request's LLM calls
# generate (a trace's GeneratedTokens); real services ignore it.
TOKENS_HEADER, TOKENS_KEY = "x-agentc-generated-tokens", "_generated_tokens"
# Latency buckets (seconds) of the histogram /metrics serves.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Admission:
    """Refuses a request whose predicted completion misses its deadline by more than `margin`."""

    def __init__(self, deadline_s: float | None, margin: float, service_s: float, alpha: float = 0.2):
        self.deadline_s, self.margin, self.alpha = deadline_s, margin, alpha
        self.service_s = max(service_s, 1e-4)
        self.lock = threading.Lock()

    def predicted_s(self, in_flight: int) -> float:
        return (in_flight + 1) * self.service_s

    def refuse(self, in_flight: int) -> float | None:
        """None to admit; else the seconds to suggest in Retry-After."""
        if self.deadline_s is None:
            return None
        over = self.predicted_s(in_flight) - self.deadline_s * (1 + self.margin)
        return None if over <= 0 else max(1.0, over)

    def measured(self, seconds: float, sharing: int) -> None:
        with self.lock:
            self.service_s += self.alpha * (seconds / max(1, sharing) - self.service_s)


class Metrics:
    """Counters of one replica, in Prometheus' text format."""

    def __init__(self, agent: str):
        self.agent = agent
        self.lock = threading.Lock()
        self.by_status: dict[int, int] = {}
        self.buckets = [0] * len(BUCKETS)
        self.count, self.total_s, self.in_flight = 0, 0.0, 0
        self.arrivals = 0  # requests that reached admission control, refused or not

    def started(self) -> None:
        with self.lock:
            self.in_flight += 1

    def refused(self) -> None:
        with self.lock:
            self.by_status[503] = self.by_status.get(503, 0) + 1

    def timed_out(self) -> None:
        with self.lock:
            self.by_status[504] = self.by_status.get(504, 0) + 1

    def ended(self, status: int, seconds: float, count: bool = True) -> None:
        with self.lock:
            self.in_flight -= 1
            if not count:
                return
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


def make_app(session, api_key: str | None = None, max_body_bytes: int = 1 << 20, deadline_ms: float | None = None,
             margin: float = 0.5, timeout_ms: float | None = None) -> FastAPI:
    """The app for one session. `api_key`: requests must send `Authorization: Bearer KEY`.
    `deadline_ms`: what admission control holds requests to (default: the agent's SLA);
    `timeout_ms`: when a request gets 504 (default: 4x the deadline)."""
    app = FastAPI(title=f"agentc: {session.plan['agent']}", docs_url=None, redoc_url=None, openapi_url=None)
    agent, inputs = session.plan["agent"], list(session.plan["inputs"])
    metrics = Metrics(agent)
    deadline_ms = deadline_ms if deadline_ms is not None else session.plan.get("sla_ms")
    predicted_ms = session.plan.get("placement", {}).get("predicted_ms") or 10.0
    # A staged service brings its own (agentc/serving/staged.py): it predicts from the stages.
    admission = getattr(session, "admission", None) or \
        Admission(deadline_ms / 1e3 if deadline_ms else None, margin, predicted_ms / 1e3)
    learn = getattr(admission, "measured", None)  # (a staged one learns from its stages instead)
    timeout_s = (timeout_ms if timeout_ms is not None else 4 * deadline_ms) / 1e3 if (timeout_ms or deadline_ms) \
        else None

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

    def answer(values: dict, rid: str, sharing: int, gave_up: threading.Event, on_token=None):
        """Run the agent; (outputs, None) or (None, error response). `gave_up`: the client
        already had its 504 (the request is counted there)."""
        t0, status = time.perf_counter(), 200
        try:
            outputs = session.run(values, on_token=on_token)["outputs"]
            if learn is not None:
                learn(time.perf_counter() - t0, sharing)
            return outputs, None
        except InputError as e:
            status = 400
            return None, error(400, "bad_input", str(e), rid)
        except RunError as e:
            status = 500
            return None, error(500, "run_error", str(e), rid)
        finally:
            metrics.ended(status, time.perf_counter() - t0, count=not gave_up.is_set())

    def chunk(rid: str, delta: dict, finish: str | None) -> dict:
        return {"id": f"chatcmpl-{rid}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": agent, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    async def streamed(values: dict, rid: str, chat: bool = False):
        """Server-sent events: `{"text": delta}` per token of the LLM whose text is the
        agent's output, then `{"id", "agent", "outputs"}` (or `{"error"}`), then [DONE];
        with `chat`, OpenAI's chat.completion.chunk objects instead."""
        import asyncio

        from fastapi.responses import StreamingResponse

        source = session.streamed
        if source is None:
            return error(400, "not_streamable", f"agent '{agent}' does not answer with an LLM's text: "
                                                f"nothing to stream (drop ?stream=true)", rid)
        model = session.models.get(source[1]) or _decoder(source[1])
        loop, queue = asyncio.get_running_loop(), asyncio.Queue()
        tokens: list = []

        def on_token(i: int, token) -> None:
            if i == len(tokens):  # a request run again after a lost device repeats its tokens
                tokens.append(token)
                loop.call_soon_threadsafe(queue.put_nowait, ("token", model.detokenize(tokens)))

        async def run():
            outputs, bad = await admitted(values, rid, on_token)
            await queue.put(("end", (outputs, bad)))

        task = asyncio.create_task(run())

        async def events():
            sent = ""
            while True:
                kind, item = await queue.get()
                if kind == "token":
                    delta = item.removeprefix(sent)
                    sent = item
                    if delta:
                        event = chunk(rid, {"content": delta}, None) if chat else {"text": delta}
                        yield f"data: {json.dumps(event)}\n\n"
                    continue
                outputs, bad = item
                final = {"id": rid, "agent": agent, "outputs": outputs} if bad is None else json.loads(bad.body)
                if chat and bad is None:
                    final = chunk(rid, {}, "stop")
                yield f"data: {json.dumps(final)}\n\n"
                yield "data: [DONE]\n\n"
                await task
                return

        return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Request-Id": rid})

    async def admitted(values: dict, rid: str, on_token=None):
        """Admission control, then the run, bounded by the timeout."""
        import asyncio

        with metrics.lock:
            ahead = metrics.in_flight
            metrics.arrivals += 1
        wait = admission.refuse(ahead)
        if wait is not None:
            metrics.refused()
            resp = error(503, "overloaded", f"refused: {ahead} requests ahead, predicted "
                                            f"{admission.predicted_s(ahead) * 1e3:.0f} ms against a deadline of "
                                            f"{admission.deadline_s * 1e3:.0f} ms (+{admission.margin:.0%})", rid)
            resp.headers["Retry-After"] = str(int(wait + 0.999))
            return None, resp
        metrics.started()
        gave_up = threading.Event()
        try:
            return await asyncio.wait_for(_in_thread(answer, values, rid, ahead + 1, gave_up, on_token), timeout_s)
        except TimeoutError:
            gave_up.set()
            metrics.timed_out()
            return None, error(504, "timeout", f"no answer within {timeout_s * 1e3:.0f} ms", rid)

    @app.post("/v1/agents/{name}")
    async def run_agent(name: str, request: Request, stream: bool = False):
        rid = uuid.uuid4().hex
        body, bad = await body_of(request, rid)
        if bad is not None:
            return bad
        if name != agent:
            return error(404, "unknown_agent", f"no agent '{name}' here (this server runs '{agent}')", rid)
        if stream:
            return await streamed(body, rid)
        hint = request.headers.get(TOKENS_HEADER, "")
        if hint.isdigit() and getattr(session, "takes_token_hint", False):  # an emulated staged service
            body = {**body, TOKENS_KEY: int(hint)}
        outputs, bad = await admitted(body, rid)
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
        if body.get("stream") is True:
            return await streamed({inputs[0]: users[-1]}, rid, chat=True)
        outputs, bad = await admitted({inputs[0]: users[-1]}, rid)
        if bad is not None:
            return bad
        text = "\n".join(str(o) for o in outputs)
        return JSONResponse({"id": f"chatcmpl-{rid}", "object": "chat.completion", "created": int(time.time()),
                             "model": agent, "choices": [{"index": 0, "finish_reason": "stop",
                                                          "message": {"role": "assistant", "content": text}}]},
                            headers={"X-Request-Id": rid})

    # What the autoscaler reads from each replica (agentc/serving/autoscale.py).
    app.state.autoscaling_stats = lambda: {"arrivals": float(metrics.arrivals), "service_s": admission.service_s}

    @app.get("/healthz")
    async def healthz():
        return {"ok": not session.closed, "agent": agent, "inputs": inputs, "sla_ms": session.plan.get("sla_ms"),
                "mode": getattr(session, "mode", "real")}

    @app.get("/metrics")
    async def prometheus():
        extra = session.metrics_text() if hasattr(session, "metrics_text") else ""  # a staged service's stages
        return PlainTextResponse(metrics.text() + extra, media_type="text/plain; version=0.0.4")

    return app


def _decoder(name: str):
    from agentc.models import registry

    return registry.decoder(name)


# Requests wait on these threads for their outputs (the work runs on the session's devices,
# or on stage replicas). asyncio's default pool has cpus + 4 threads: six on two cores, which
# held a staged ingress to six requests in flight and queued the rest of a burst there.
REQUEST_THREADS = 512
_requests_pool = None


async def _in_thread(fn, *args):
    """A request runs on a thread: the session blocks until its outputs are ready."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    global _requests_pool
    if _requests_pool is None:
        _requests_pool = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="agentc-request")
    return await asyncio.get_running_loop().run_in_executor(_requests_pool, fn, *args)
