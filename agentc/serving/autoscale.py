"""agentc's autoscaling policy: replicas from the arrival rate and the service time, so the
SLA holds with as few replicas (as little money) as that allows.

Each decision (every few seconds, from Serve's controller) sees the requests that arrived
since the last one and the service time the replicas measure (the placement's prediction
until they have):

- rate: an exponential average of the arrival rate; a burst (the latest rate above
  `burst_factor` x the average) is answered at once with the latest rate, not the average.
  The latest rate counts the arrivals of the last `rate_window_s` (or since the last
  decision, if that was longer ago): a controller that decides more often than that does
  not take one arrival in a short tick for a burst;
- replicas needed: ceil(rate x service / target_utilisation), so queues stay short; a replica
  asked for now serves only after `start_s` (process, module, weights: measured), so while
  short of replicas the backlog that builds during that start is charged too: enough extra
  replicas to clear it within the SLA;
- down: only after the lower target has held for `downscale_delay_s` (a burst's tail does not
  make replicas flap), to zero only after `to_zero_after_s` without arrivals;
- within [min_replicas, max_replicas].

`decide` is the policy, pure (its state is a dict it returns); `ServeAutoscaler` is the same
policy behind Ray Serve's custom-policy interface, fed by the replicas'
`record_autoscaling_stats` (arrivals counted, service time and their own start measured).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ScalePolicy:
    sla_s: float
    service_s: float  # before the replicas measure it: the placement's prediction
    start_s: float = 5.0  # a replica's start, asked for to serving
    min_replicas: int = 1
    max_replicas: int = 8
    target_utilisation: float = 0.7
    alpha: float = 0.3
    burst_factor: float = 2.0
    downscale_delay_s: float = 30.0
    to_zero_after_s: float = 120.0
    hold_s: float = 0.0  # size for the highest rate seen this long (bursts that recur)
    rate_window_s: float = 1.0  # the latest rate: arrivals over at least this long

    def decide(self, state: dict, now: float, arrivals: float, current: int,
               service_s: float | None = None) -> tuple[int, dict]:
        """The replicas wanted now. `arrivals`: requests arrived so far (a counter);
        `current`: replicas running or starting; `service_s`: measured, if any."""
        s = dict(state)
        if "t" not in s:  # first look: nothing to rate yet
            # (no arrival yet: nothing holds a replica up until one comes)
            s.update(t=now, arrivals=arrivals, rate=0.0, last_arrival=now if arrivals > 0 else -math.inf,
                     low_since=None)
            return max(self.min_replicas, min(current, self.max_replicas)), s
        # (time, arrivals) of the decisions within the window: the oldest is where it starts
        window = [p for p in [*s.get("past", []), (s["t"], s["arrivals"])] if p[0] >= now - self.rate_window_s - 1e-9]
        since, before = window[0] if window else (s["t"], s["arrivals"])
        s["past"] = window
        latest = max(0.0, arrivals - before) / max(now - since, 1e-6)
        rate = s["rate"] + self.alpha * (latest - s["rate"])
        if latest > self.burst_factor * max(s["rate"], 1e-9):
            rate = max(rate, latest)  # a burst: react to it now
        if latest > 0:
            s["last_arrival"] = now
        if self.hold_s > 0:
            recent = [(t, r) for t, r in s.get("recent", []) if t > now - self.hold_s] + [(now, latest)]
            s["recent"] = recent
            rate = max(rate, max(r for _, r in recent))
        service = service_s if service_s else self.service_s
        need = math.ceil(rate * service / self.target_utilisation - 1e-9) if rate > 0 else 0
        if need > current:
            # Replicas asked for now serve after start_s: clear what piles up meanwhile
            # within the SLA.
            backlog = max(0.0, rate - current / service) * self.start_s
            need += math.ceil(backlog * service / max(self.sla_s, 1e-6) - 1e-9)
        if need == 0 and now - s["last_arrival"] < self.to_zero_after_s:
            need = 1
        target = need
        if need < current:  # down only once the lower need has held
            if s["low_since"] is None:
                s["low_since"] = now
            if now - s["low_since"] < self.downscale_delay_s:
                target = current
        else:
            s["low_since"] = None
        target = max(self.min_replicas, min(target, self.max_replicas))
        s.update(t=now, arrivals=arrivals, rate=rate)
        return target, s

    def kwargs(self) -> dict:
        return asdict(self)


class ServeAutoscaler:
    """Ray Serve's custom autoscaling policy (`AutoscalingPolicy(policy_function=
    "agentc.serving.autoscale:ServeAutoscaler", policy_kwargs=policy.kwargs())`)."""

    def __init__(self, **kwargs):
        self.policy = ScalePolicy(**kwargs)

    def __call__(self, ctx) -> tuple[int, dict]:
        metrics = ctx.aggregated_metrics or {}
        arrivals = sum((metrics.get("arrivals") or {}).values())
        services = [v for v in (metrics.get("service_s") or {}).values() if v]
        service = sum(services) / len(services) if services else None
        starts = [v for v in (metrics.get("start_s") or {}).values() if v]
        policy = dataclasses.replace(self.policy, start_s=max(starts)) if starts else self.policy
        now = ctx.current_time if ctx.current_time is not None else 0.0
        # A replica that goes takes its count with it: the sum drops, and `decide` reads a
        # drop as no arrivals for that one interval.
        return policy.decide(dict(ctx.policy_state or {}), now, arrivals, ctx.target_num_replicas, service)
