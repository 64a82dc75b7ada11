"""agentc's autoscaling policy on synthetic load: replicas follow rate x service time,
bursts are met at once (with the replicas' start charged), scale-down waits, scale-to-zero
after quiet, bounds hold. Expected counts are worked out by hand from the policy's rule."""

import math

from agentc.serving.autoscale import ScalePolicy


def drive(policy, rates, step_s=2.0, service_s=None, current=1):
    """Feed `rates` (requests/s per step); returns the replicas decided at each step, the
    target becoming the current count (replicas start at once here)."""
    state, arrivals, out, now = {}, 0.0, [], 0.0
    current, state = policy.decide(state, now, arrivals, current, service_s)
    for r in rates:
        now += step_s
        arrivals += r * step_s
        current, state = policy.decide(state, now, arrivals, current, service_s)
        out.append(current)
    return out


def test_steady_rate_needs_rate_times_service_over_utilisation():
    p = ScalePolicy(sla_s=1.0, service_s=0.2, start_s=0.0, max_replicas=100, alpha=1.0)
    assert drive(p, [20] * 5)[-1] == math.ceil(20 * 0.2 / 0.7)  # 6


def test_burst_is_met_at_once_and_start_time_is_charged():
    slow = ScalePolicy(sla_s=0.5, service_s=0.1, start_s=10.0, max_replicas=100, alpha=0.1, burst_factor=2.0)
    quick = ScalePolicy(sla_s=0.5, service_s=0.1, start_s=0.0, max_replicas=100, alpha=0.1, burst_factor=2.0)
    got_slow = drive(slow, [5] * 10 + [50])
    got_quick = drive(quick, [5] * 10 + [50])
    # The burst step (50/s) is answered in that step, not after the average catches up:
    assert got_quick[-1] == math.ceil(50 * 0.1 / 0.7)  # 8
    # 10 s to start: (50 - 1/0.1) requests/s pile up for 10 s = 400, cleared within 0.5 s.
    assert got_slow[-1] == 8 + math.ceil((50 - got_slow[-2] / 0.1) * 10 * 0.1 / 0.5)
    assert got_slow[-1] > got_quick[-1]


def test_scale_down_waits_then_goes_to_zero_after_quiet():
    p = ScalePolicy(sla_s=1.0, service_s=0.2, start_s=0.0, min_replicas=0, max_replicas=20, alpha=1.0,
                    downscale_delay_s=10.0, to_zero_after_s=20.0)
    got = drive(p, [20] * 3 + [0] * 20, step_s=2.0)
    high = got[2]
    assert high == 6
    # No arrivals from step 4 on: held for the 10 s delay, then down to 1 (not yet quiet
    # for 20 s), then to 0.
    assert got[3:7] == [high] * 4
    assert 1 in got[7:] and got[-1] == 0
    first_zero = got.index(0)
    assert (first_zero - 2) * 2.0 >= 20.0  # quiet for at least to_zero_after_s


def test_bounds_hold():
    p = ScalePolicy(sla_s=1.0, service_s=1.0, start_s=0.0, min_replicas=2, max_replicas=3, alpha=1.0)
    assert max(drive(p, [100] * 3)) == 3
    assert min(drive(p, [0] * 3, current=2)) == 2


def test_measured_service_time_replaces_the_prediction():
    p = ScalePolicy(sla_s=1.0, service_s=0.01, start_s=0.0, max_replicas=100, alpha=1.0)
    assert drive(p, [10] * 3)[-1] == 1
    assert drive(p, [10] * 3, service_s=0.5)[-1] == math.ceil(10 * 0.5 / 0.7)


def every_tenth_second(policy):
    """One arrival every 0.5 s (2/s), decided every 0.1 s for 10 s: the replicas decided."""
    current, state = policy.decide({}, 0.0, 0, 1)
    got = []
    for k in range(1, 101):
        now = k * 0.1
        current, state = policy.decide(state, now, math.floor(now / 0.5 + 1e-9), current)
        got.append(current)
    return got


def test_a_fast_controller_rates_arrivals_over_the_window_not_one_tick():
    """2 requests/s, one every 0.5 s, decided every 0.1 s: a tick holding one arrival is
    10/s on its own; over the 1-s window it is 2/s, which needs ceil(2 x 0.4 / 0.7) = 2."""
    p = ScalePolicy(sla_s=1.0, service_s=0.4, start_s=0.0, max_replicas=100, alpha=1.0)
    assert max(every_tenth_second(p)[20:]) == 2
    # Without the window (one tick's rate) the same load reads as bursts of 10/s: 6 replicas.
    narrow = ScalePolicy(sla_s=1.0, service_s=0.4, start_s=0.0, max_replicas=100, alpha=1.0, rate_window_s=0.0)
    assert max(every_tenth_second(narrow)[20:]) == math.ceil(10 * 0.4 / 0.7)
