"""`agentc loadtest TARGET`: replay arrivals against a served agent, open loop, and report.

TARGET is the URL of a running `agentc serve`, or a build directory (served here for the
run, on a private cluster, and stopped after). Arrivals come from a trace (`--trace`) or a
synthetic process (`--arrivals gamma|step`); each request asks one of `--questions` (a file,
one per line) in turn. Requests are sent when their arrival comes, whatever is still in
flight; the lag between an arrival and its send is measured, and a run whose P99 send lag
passes 10 ms is flagged invalid (the client could not keep up, so the load was not what it
says).

Writes `requests.csv` (one row per request: arrival, sent, end, status, latency) and
`report.json` + `loadtest.png` (arrival rate and latency over time) to `--out`, prints the
report and ends with one `key=value` line.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
import threading
import time
from pathlib import Path

from agentc.serving.arrivals import Arrival, ArrivalsError, gamma, read_trace, reshape, steps
from agentc.serving.load_report import plot, summarize
from agentc.serving.measured import QUESTIONS

MAX_SEND_LAG_P99_MS = 10.0


def arrivals_from(args) -> list[Arrival]:
    if args.trace:
        return reshape(read_trace(args.trace), args.speedup, args.rate_scale, args.duration, args.start, args.seed)
    if args.arrivals == "gamma":
        return gamma(args.rate, args.cv, args.duration or 60.0, args.seed)
    if args.arrivals == "step":
        return steps([float(r) for r in args.step_rates.split(",")], args.step_s, args.seed)
    raise ArrivalsError("give --trace FILE or --arrivals gamma|step")


async def replay(url: str, arrivals: list[Arrival], questions: list[str], api_key: str | None,
                 timeout_s: float, progress=None) -> tuple[list[dict], dict]:
    import aiohttp

    from agentc.serving.http_api import TOKENS_HEADER

    info = await _health(url, api_key)
    agent, name = info["agent"], info["inputs"][0]
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    rows: list[dict] = []
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        start = loop.time() + 0.1

        async def one(i: int, a: Arrival) -> None:
            sent = loop.time()
            row = {"i": i, "arrival_s": a.at, "sent_s": sent - start, "status": 0, "end_s": None,
                   "latency_ms": None, "context_tokens": a.context_tokens, "generated_tokens": a.generated_tokens}
            try:
                hint = {TOKENS_HEADER: str(a.generated_tokens)} if a.generated_tokens else {}
                async with http.post(f"{url}/v1/agents/{agent}", json={name: questions[i % len(questions)]},
                                     headers={**headers, **hint}) as r:
                    await r.read()
                    row["status"] = r.status
            except (TimeoutError, aiohttp.ClientError) as e:
                row["error"] = type(e).__name__
            end = loop.time()
            row["end_s"] = end - start
            row["latency_ms"] = (end - (start + a.at)) * 1e3  # from the arrival: send lag counts
            rows.append(row)
            if progress is not None:
                progress()

        tasks = []
        for i, a in enumerate(arrivals):
            delay = start + a.at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, a)))
        await asyncio.gather(*tasks)
    return sorted(rows, key=lambda r: r["i"]), info


async def _health(url: str, api_key: str | None) -> dict:
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as r:
            if r.status != 200:
                raise ArrivalsError(f"{url}/healthz answered {r.status}: is it an agentc serve?")
            return await r.json()
    except (aiohttp.ClientError, ValueError) as e:
        raise ArrivalsError(f"{url}: no agentc serve answers there ({type(e).__name__}: {e})") from None


def run(args) -> int:
    arrivals = arrivals_from(args)
    if not arrivals:
        raise ArrivalsError("no arrivals in that window: widen --duration or raise --rate")
    if args.simulate:
        from agentc.serving import simulated_run

        return simulated_run.run(args, arrivals)
    try:
        questions = [q for q in Path(args.questions).read_text().splitlines() if q.strip()] if args.questions \
            else QUESTIONS
    except OSError as e:
        raise ArrivalsError(f"--questions {args.questions}: {e.strerror}") from None
    if not questions:
        raise ArrivalsError(f"--questions {args.questions}: no questions in it")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    api_key = Path(args.api_key_file).read_text().strip() if args.api_key_file else None
    target, stop, server, sampler = args.target, None, None, None
    if not target.startswith(("http://", "https://")):
        target, stop, server = _serve_here(args)
        sampler = ReplicaSampler(_replica_price(args.target))
    else:
        sampler = StageSampler(target.rstrip("/"))  # a staged service reports its stages in /metrics
    try:
        from agentc.bench.progress import Progress

        bar = Progress(len(arrivals), "requests", enabled=not args.quiet)
        t0 = time.perf_counter()
        if sampler is not None:
            sampler.start()
        rows, info = asyncio.run(replay(target.rstrip("/"), arrivals, questions, api_key, args.timeout, bar.step))
        wall = time.perf_counter() - t0
    finally:
        if sampler is not None:
            sampler.stop()
        if stop is not None:
            stop.set()
            server.join(120)
    sla = args.sla_ms or info.get("sla_ms") or 2000.0
    report = summarize(rows, sla, arrivals[-1].at, mode=info.get("mode", "real"))
    report.update({"target": args.target, "agent": info["agent"], "wall_s": round(wall, 2),
                   "arrivals": _describe(args), "valid": report["send_lag_p99_ms"] <= MAX_SEND_LAG_P99_MS})
    if sampler is not None:
        report.update(sampler.summary(report["ok"]))
    if isinstance(sampler, ReplicaSampler):
        report["scaling"] = "autoscale" if args.autoscale else f"static {args.replicas}"
    with open(out / "requests.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(rows, out / "loadtest.png", f"{info['agent']}: {_describe(args)}", sla,
         (sampler.samples or None) if sampler is not None else None)
    for k in ("sent", "completed", "refused", "lost", "p50_ms", "p95_ms", "p99_ms", "slo_pct", "throughput_rps",
              "goodput_rps", "send_lag_p99_ms", "replica_seconds", "cost_usd", "usd_per_1k_ok"):
        if k in report:
            print(f"{k:>16} {report[k]}")
    if not report["valid"]:
        print(f"agentc: warning: P99 send lag {report['send_lag_p99_ms']} ms > {MAX_SEND_LAG_P99_MS} ms: the "
              f"client could not keep up; this run is invalid", file=sys.stderr)
    print(f"p50_ms={report['p50_ms']} p95_ms={report['p95_ms']} p99_ms={report['p99_ms']} slo_pct={report['slo_pct']} "
          f"lost={report['lost']} mode={report['mode']}")
    return 0


class _Sampler:
    """A thread that samples every `period` seconds from `start` to `stop`."""

    def __init__(self, period_s: float):
        self.period = period_s
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        self._thread.join(10)


class ReplicaSampler(_Sampler):
    """Replicas of the served deployment over time (from Serve, twice a second), and what
    they cost: a replica counts from the moment it is asked for (starting included) at the
    price of the devices it holds."""

    def __init__(self, price_per_hour: float, period_s: float = 0.5):
        super().__init__(period_s)
        self.price = price_per_hour
        self.samples: list[tuple[float, int]] = []

    def _run(self) -> None:
        from ray import serve

        from agentc.serving.serving_cluster import APP

        while not self._halt.is_set():
            try:
                deps = serve.status().applications[APP].deployments
                n = sum(sum(d.replica_states.values()) for d in deps.values())
            except Exception:  # noqa: BLE001 - a missed sample; the next one counts
                n = self.samples[-1][1] if self.samples else 0
            self.samples.append((time.perf_counter() - self.t0, n))
            self._halt.wait(self.period)

    def summary(self, ok: int) -> dict:
        seconds = sum(n * (b[0] - a[0]) for (a, b), n in zip(zip(self.samples, self.samples[1:]),
                                                              (s[1] for s in self.samples)))
        cost = seconds / 3600 * self.price
        return {"replica_seconds": round(seconds, 3), "cost_usd": round(cost, 9),
                "usd_per_1k_ok": round(cost / ok * 1000, 6) if ok else None,
                "replicas_max": max((n for _, n in self.samples), default=0),
                "replica_price_per_hour": self.price}


class StageSampler(_Sampler):
    """A staged service's replicas per stage over the run, read from its /metrics twice a
    second (agentc_stage_replicas, agentc_stage_replica_seconds_total), and their cost at
    each stage's price; empty for a service without stages."""

    def __init__(self, url: str, period_s: float = 0.5):
        super().__init__(period_s)
        self.url = url
        self.samples: dict[str, list[tuple[float, float]]] = {}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.price: dict[str, float] = {}

    def stop(self) -> None:
        super().stop()
        self._read()  # the seconds up to the end of the run

    def _read(self) -> None:
        import re
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return
        t = time.perf_counter() - self.t0
        pat = re.compile(r'^(agentc_stage_replicas|agentc_stage_replica_seconds_total)'
                         r'\{stage="([^"]+)",device="[^"]*",price_per_hour="([^"]+)"\} (\S+)$')
        for line in text.splitlines():
            m = pat.match(line)
            if not m:
                continue
            name, stage, price, value = m.group(1), m.group(2), float(m.group(3)), float(m.group(4))
            self.price[stage] = price
            if name == "agentc_stage_replicas":
                self.samples.setdefault(stage, []).append((t, value))
            else:
                self.first.setdefault(stage, value)
                self.last[stage] = value

    def _run(self) -> None:
        while not self._halt.is_set():
            self._read()
            self._halt.wait(self.period)

    def summary(self, ok: int) -> dict:
        if not self.last:
            return {}
        seconds = {s: self.last[s] - self.first[s] for s in self.last}
        cost = sum(v / 3600 * self.price[s] for s, v in seconds.items())
        return {"replica_seconds": {s: round(v, 3) for s, v in seconds.items()}, "cost_usd": round(cost, 9),
                "usd_per_1k_ok": round(cost / ok * 1000, 6) if ok else None,
                "replicas_max": {s: max(n for _, n in pts) for s, pts in self.samples.items()}}


def _replica_price(build) -> float:
    """$/hour of one replica: the catalog price of each device it holds."""
    from agentc.cost.catalog import load_catalog

    plan = json.loads((Path(build) / "plan.json").read_text())
    catalog = load_catalog()
    return sum(catalog.devices[d["runtime"]].cost_per_hour for d in plan["devices"].values())


def _describe(args) -> str:
    if args.trace:
        return (f"{Path(args.trace).name} from {args.start:g} s, {args.duration or 'all'} s, x{args.speedup:g} speed, "
                f"x{args.rate_scale:g} rate, seed {args.seed}")
    if args.arrivals == "gamma":
        return f"gamma arrivals {args.rate:g}/s, CV {args.cv:g}, {args.duration or 60:g} s, seed {args.seed}"
    return f"step arrivals {args.step_rates}/s, {args.step_s:g} s each, seed {args.seed}"


def _serve_here(args):
    """Serve the build TARGET for the run (private cluster); returns (url, stop, thread)."""
    from agentc.distributed.local_cluster import free_port
    from agentc.serving.server import _emulate_args, serve_build

    port = free_port()
    stop, up, failed = threading.Event(), threading.Event(), []

    def go():
        try:
            serve_build(args.target, port=port, api_key_file=args.api_key_file, ready=lambda url: up.set(), stop=stop,
                        replicas=args.replicas,
                        autoscale=(args.min_replicas, args.max_replicas) if args.autoscale else None,
                        emulate=_emulate_args(args))
        except BaseException as e:  # noqa: BLE001 - raised below, in the caller's thread
            failed.append(e)
            up.set()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    up.wait()
    if failed:
        raise failed[0]
    return f"http://127.0.0.1:{port}", stop, t


def register(sub) -> None:
    p = sub.add_parser("loadtest", help="replay arrivals against a served agent (open loop) and report")
    p.add_argument("target", help="URL of an agentc serve, or a build directory to serve for the run")
    p.add_argument("--trace", help="CSV with TIMESTAMP,ContextTokens,GeneratedTokens (../shared/traces/)")
    p.add_argument("--speedup", type=float, default=1.0, help="replay the trace this many times faster")
    p.add_argument("--rate-scale", type=float, default=1.0, help="this many times the trace's requests")
    p.add_argument("--start", type=float, default=0.0, help="trace window start, seconds into the trace")
    p.add_argument("--duration", type=float, help="seconds of trace (or of synthetic arrivals; default 60)")
    p.add_argument("--arrivals", choices=("gamma", "step"), help="synthetic arrivals instead of a trace")
    p.add_argument("--rate", type=float, default=2.0, help="gamma: mean requests/s")
    p.add_argument("--cv", type=float, default=1.0, help="gamma: inter-arrival coefficient of variation")
    p.add_argument("--step-rates", default="1,5,1", help="step: comma-separated rates, requests/s")
    p.add_argument("--step-s", type=float, default=10.0, help="step: seconds per rate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--questions", help="a file of questions, one per line (default: a built-in list)")
    p.add_argument("--sla-ms", type=float, help="the SLA (default: the agent's, from /healthz)")
    p.add_argument("--api-key-file", help="bearer key, for a server started with one")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds before a request counts as lost")
    p.add_argument("--out", default="build/loadtest", help="directory for requests.csv, report.json, loadtest.png")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--replicas", type=int, default=1, help="serving a build here: a static deployment of N")
    p.add_argument("--autoscale", action="store_true", help="serving a build here: agentc's autoscaling policy")
    p.add_argument("--emulate", action="store_true", help="serving a build here: replicas hold requests instead")
    p.add_argument("--service-ms", type=float, help="with --emulate (default: the placement's prediction)")
    p.add_argument("--start-s", type=float, help="with --emulate: replica start (default: measured here)")
    p.add_argument("--min-replicas", type=int, default=1, help="per stage (0: scale to zero)")
    p.add_argument("--max-replicas", type=int, default=4, help="per stage")
    p.add_argument("--simulate", action="store_true",
                   help="simulated time: TARGET a build, or a graph.py with --cluster (agentc/serving/simulate.py)")
    p.add_argument("--cluster", help="with --simulate and a graph.py: the cluster.yaml to place it on")
    p.add_argument("--compare", action="store_true",
                   help="with --simulate: also the static-peak, static-iso-cost and static-iso-SLO baselines")
    p.add_argument("--scaling", choices=("joint", "reactive"), default="joint",
                   help="with --simulate: stages scale together from the ingress, or each on its own arrivals")
    p.add_argument("--target-utilisation", type=float, default=0.7, help="the scaler's replica utilisation")
    p.add_argument("--hold-s", type=float, default=600.0,
                   help="the scaler sizes for the highest 1-s rate seen this long (recurring bursts)")
    p.add_argument("--measured-service", action="store_true",
                   help="with --simulate and a build: service times timed here, not the placement's predictions")
    p.add_argument("--batch", type=int, default=0,
                   help="with --simulate: stage replicas batch up to this many calls (agentc/serving/batching.py)")
    p.add_argument("--batch-curves", default="docs/results/batching/summary.json",
                   help="with --batch: a batching summary.json (agentc bench batching), or TYPE=FILE,... per "
                        "device type")
    p.add_argument("--hop-ms", type=float, default=0.0,
                   help="with --simulate: each call's delay to its stage (measure it on a staged service)")
    p.add_argument("--admission-margin", type=float, default=0.5,
                   help="refuse a request predicted to pass the SLA by more than this fraction of it")
    p.set_defaults(func=run)
