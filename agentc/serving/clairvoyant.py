"""A clairvoyant scaling policy: what scaling could reach if it knew the arrivals to come.

No running service can use it. It marks where a causal policy's losses come from: from the
replica start time (a replica asked for now serves `start_s` later), or from not knowing
when the next burst comes. At each decision it asks for the replicas that the busiest
`window_s` (from t to t + window_s) of the requests arriving within the next `start_s + lookahead_s` will need at the
target utilisation, and lets them go as soon as they are no longer needed. It keeps no
hold and no downscale delay. So it has the same start time and the same sizing rule as
agentc's policy (agentc/serving/autoscale.py), and sees the arrivals ahead.

It runs in the simulator in joint mode (agentc/serving/stage_scaler.py): there, each
stage's counter is the requests offered times the stage's visits per request, so the
ratio of the counter to the requests so far gives the visits.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from agentc.serving.autoscale import ScalePolicy


@dataclass(frozen=True)
class Clairvoyant(ScalePolicy):
    arrivals: tuple[float, ...] = ()  # every request's arrival time, sorted
    window_s: float = 1.0
    lookahead_s: float = 1.0
    step_s: float = 0.25  # where the windows start, within the look ahead

    def decide(self, state: dict, now: float, arrivals: float, current: int,
               service_s: float | None = None) -> tuple[int, dict]:
        times = self.arrivals
        so_far = bisect.bisect_right(times, now)
        visits = arrivals / so_far if so_far else 1.0
        busiest, t = 0, now
        while t <= now + self.start_s + self.lookahead_s:
            busiest = max(busiest, bisect.bisect_left(times, t + self.window_s) - bisect.bisect_left(times, t))
            t += self.step_s
        rate = busiest / self.window_s * visits
        service = service_s if service_s else self.service_s
        need = math.ceil(rate * service / self.target_utilisation - 1e-9) if rate > 0 else 0
        return max(self.min_replicas, min(need, self.max_replicas)), dict(state)
