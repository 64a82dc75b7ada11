"""The staged service's per-stage metrics, in Prometheus text: replicas asked for and
serving, calls in flight, the service time per call the scaler uses, replica-seconds from each ask,
starts and their durations, retries (agentc/serving/staged.py keeps the counts)."""

from __future__ import annotations


def metrics_text(session) -> str:
    """The per-stage Prometheus lines of a staged session."""
    with session.lock:
        session.account()
        rows = [(st, session.target[st], session.ready.get(st, 0), session.in_flight[st], session.replica_s[st],
                 session.starts[st], sum(session.start_s_seen[st]), len(session.start_s_seen[st]),
                 session.measured.get(st) or 0.0)
                for st in session.graph.stages]
    lines = []
    for name, kind, what, k in (
            ("agentc_stage_replicas", "gauge", "Replicas asked for (running or starting), per stage.", 1),
            ("agentc_stage_replicas_ready", "gauge", "Replicas serving, per stage.", 2),
            ("agentc_stage_in_flight", "gauge", "Calls queued or running at the stage.", 3),
            ("agentc_stage_call_seconds", "gauge",
             ("Service time per call the scaler uses: a moving average of the calls measured (an emulated "
              "replica's hold; a computing stage's call from the ingress to its answer); 0 before the first."), 8),
            ("agentc_stage_replica_seconds_total", "counter",
             "Replica-seconds from the moment each replica was asked for.", 4),
            ("agentc_stage_replica_starts_total", "counter", "Replicas asked for.", 5),
            ("agentc_stage_replica_start_seconds_sum", "counter",
             "Seconds from asking for a replica to it serving (to the controller's tick), summed.", 6),
            ("agentc_stage_replica_start_seconds_count", "counter", "Replica starts timed.", 7)):
        lines += [f"# HELP {name} {what}", f"# TYPE {name} {kind}"]
        for r in rows:
            st = session.graph.stages[r[0]]
            lines.append(f'{name}{{stage="{r[0]}",device="{st.device_type}",price_per_hour="'
                         f'{st.price_per_hour:g}"}} {r[k]:g}')
    lines += ["# HELP agentc_stage_retries_total Calls tried again after their replica died.",
              "# TYPE agentc_stage_retries_total counter", f"agentc_stage_retries_total {session.retries}"]
    return "\n".join(lines) + "\n"


def read_stage_metric(text: str, name: str) -> dict[str, float]:
    """One per-stage metric from a staged service's /metrics text: {stage: value}."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + '{stage="'):
            out[line[len(name) + 8:].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out
