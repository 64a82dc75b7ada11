"""The TCO study: its queueing model against textbook values and the event simulator, its
fleet kinds and prices, its costing pass against placement, and the command."""

import dataclasses
import json
import math

import pytest

from agentc.serving.stages import Call
from agentc.study import check, fleets, prices, sizing
from agentc.study.profile import AgentProfile, Node, profile_agent
from tests.conftest import EXAMPLES, agentc_cli


def test_erlang_c_matches_erlang_b_and_textbook_values():
    """C(c, a) from the Erlang B recursion, B(k) = a B(k-1) / (k + a B(k-1)), and C = B /
    (1 - (a / c)(1 - B)); M/M/2 at a = 1 waits with probability 1/3."""
    assert sizing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert sizing.erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    for c, a in [(3, 2.1), (10, 7.5), (40, 36.0), (120, 101.3)]:
        b = 1.0
        for k in range(1, c + 1):
            b = a * b / (k + a * b)
        assert sizing.erlang_c(c, a) == pytest.approx(b / (1 - a / c * (1 - b)), rel=1e-9)


def _chain(service_s: float, types=("nvidia-t4",), fan: int = 1) -> AgentProfile:
    """`fan` parallel calls of one model, then one more: a synthetic agent (no compiler)."""
    nodes = [Node("start", "", 0.001, {})]
    for i in range(fan):
        nodes.append(Node(f"branch{i}", "m", 0.0, {t: Call(f"branch{i}", f"m@{t}", (), service_s) for t in types},
                          {"start": 64}))
    nodes.append(Node("last", "m2", 0.0, {t: Call("last", f"m2@{t}", (), service_s) for t in types},
                      {f"branch{i}": 64 for i in range(fan)}))
    return AgentProfile("synthetic", "", tuple(nodes), {})


@pytest.mark.parametrize("fan", [1, 4])
def test_sized_fleets_meet_the_sla_in_the_event_simulator(fan):
    """The sizing's replicas, refined, hold the SLA in the simulator at 20 requests/s (and
    the unrefined M/M/c sizing is never more than the refinement)."""
    profile = _chain(0.05, fan=fan)
    where = {n.name: "nvidia-t4" for n in profile.calls}
    sla = 0.25
    s = sizing.size(profile, where, 20.0, sla)
    assert s.feasible and s.unloaded_s == pytest.approx(0.1 + 0.001 + 2 * sizing.HOP_S + 128 / sizing.NETWORK_BPS,
                                                        rel=1e-6)
    assert s.replicas["m@nvidia-t4"] >= fan  # the branches do not take turns
    refined, sim = check.refine(profile, s, 20.0, sla)
    assert refined.feasible and sim["p95_ms"] <= sla * 1e3 and sim["lost"] == 0
    assert all(refined.replicas[st] >= n for st, n in s.replicas.items())
    busy = 20.0 * 0.05 * (fan + 1)
    assert sum(refined.busy.values()) == pytest.approx(busy)


def test_an_unreachable_sla_is_infeasible():
    profile = _chain(0.2)
    s = sizing.size(profile, {"branch0": "nvidia-t4", "last": "nvidia-t4"}, 1.0, 0.3)
    assert not s.feasible


def test_fleet_kinds():
    kind = fleets.kind_of
    assert kind({"nvidia-h100-sxm": 3.0, fleets.CPU: 1.0}) == fleets.USES_NEWEST
    assert kind({"nvidia-t4": 1.0, "nvidia-a10g": 1.0}) == fleets.USES_OLDER  # two older types: one group
    assert kind({"nvidia-t4": 1.0, "nvidia-h100-sxm": 3.0}) == fleets.HETERO_NV
    assert kind({"nvidia-t4": 0.2, "nvidia-h100-sxm": 3.0}) == fleets.MINOR  # older carry 6%
    assert kind({"amd-mi300x": 1.0, "nvidia-h100-sxm": 3.0}) == fleets.HETERO_OTHER
    assert kind({fleets.CPU: 1.0}) == fleets.USES_CPU
    names = [f.name for f in fleets.families()]
    assert len(names) == len(set(names)) and "T4+H100+CPU" in names


def test_prices_from_the_catalog_and_the_inputs():
    from agentc.cost.hardware import load_hardware

    hw = load_hardware()
    inputs, sweep = prices.load_inputs()
    h100 = hw["nvidia-h100-sxm"]
    owned = h100.capex_usd / (inputs.life_years * 8766) + h100.tdp_w / 1e3 * inputs.pue * inputs.usd_per_kwh
    assert prices.hourly(prices.OWNED, inputs, hw)["nvidia-h100-sxm"] == pytest.approx(owned)
    assert prices.hourly(prices.RESERVED_3Y, inputs, hw)["nvidia-t4"] == pytest.approx(
        hw["nvidia-t4"].on_demand_per_hour * (1 - inputs.three_year_discount))
    old = dataclasses.replace(inputs, older_age_years=inputs.life_years)
    t4 = hw["nvidia-t4"]
    assert prices.hourly(prices.OWNED_BOOK, old, hw)["nvidia-t4"] == pytest.approx(
        t4.tdp_w / 1e3 * inputs.pue * inputs.usd_per_kwh)  # fully depreciated: power only
    assert "nvidia-b200" not in prices.hourly(prices.OWNED, inputs, hw)  # no purchase price in the catalog
    assert sweep["life_years"]


def test_the_costing_pass_prices_calls_as_placement_does(tmp_path):
    """Each call's service on a type is what `agentc place` predicts for it on a cluster of
    that type alone."""
    from agentc.compiler import place_file
    from agentc.serving.stages import from_placement

    graph = str(EXAMPLES / "fanout_agent.py")
    profile = profile_agent(graph, ["nvidia-t4", "nvidia-h100-sxm"])
    assert [n.name for n in profile.calls][-1] == "summary" and len(profile.calls) == 7
    for t in ("nvidia-t4", "nvidia-h100-sxm"):
        (tmp_path / f"{t}.yaml").write_text(f"devices:\n  - {{type: {t}}}\n")
        placed = from_placement(place_file(graph, str(tmp_path / f"{t}.yaml")))
        assert len(placed.calls) == len(profile.calls)
        for c, n in zip(placed.calls, profile.calls):  # each trace numbers the unnamed nodes anew
            assert n.on[t].service_s == pytest.approx(c.service_s, rel=1e-6), (c.node, n.name)
    t4, h100 = (sum(n.on[t].service_s for n in profile.calls) for t in ("nvidia-t4", "nvidia-h100-sxm"))
    assert h100 < t4


def test_bad_flags_are_one_line_errors(tmp_path):
    for flags, what in [(["--agents", "nope"], "--agents: unknown agent 'nope'"), (["--rates", "x"], "--rates:"),
                        (["--rates", "-1"], "--rates: rates must be > 0")]:
        r = agentc_cli("study", "tco", "--out", tmp_path, *flags)
        assert r.returncode == 2 and what in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.slow
def test_the_study_command_end_to_end(tmp_path):
    """One agent at one rate: the tables, plots and the key line, and a heterogeneous
    fleet's busy share as the kind says."""
    r = agentc_cli("study", "tco", "--out", tmp_path, "--agents", "rag", "--rates", "10", timeout=900)
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    keys = dict(kv.split("=") for kv in last.split())
    assert set(keys) >= {"cases", "hetero_within_10pct", "hetero_cheaper", "best_saving_pct"} and keys["cases"] == "3"
    for f in ("summary.json", "report.md", "pareto.png", "ratios.png"):
        assert (tmp_path / f).stat().st_size > 0
    s = json.loads((tmp_path / "summary.json").read_text())
    for case in s["cases"]:
        for kind, per in case["by_kind"].items():
            for ch in per.values():
                assert ch["p95_ms"] <= case["sla_ms"] + 1e-6
                if kind in fleets.HETERO and "busy_share" in ch:  # the summary keeps it for on-demand and owned
                    older = sum(b for t, b in ch["busy_share"].items() if fleets.group(t) in ("older", "other"))
                    assert older >= 0.10 - 1e-3
            if prices.ON_DEMAND in per:
                ch = per[prices.ON_DEMAND]
                cost = sum(n * s["prices"][prices.ON_DEMAND][t] for t, n in ch["counts"].items())
                assert math.isclose(cost, ch["cost_per_hour"], rel_tol=1e-3)


@pytest.mark.slow
def test_the_check_compares_a_cpu_build_with_the_study(tmp_path):
    """`agentc study check` on the RAG: one calibrated figure and one measured, the error
    between them, and the H100 row from the recorded run."""
    r = agentc_cli("study", "check", "--out", tmp_path, "--agents", "rag", "--requests", "2",
                   "--measured", f"study-check-test-{tmp_path.name}", timeout=900)  # not the namespace a user's study reads
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("checks=")
    rows = json.loads((tmp_path / "check.json").read_text())["checks"]
    rag = rows["rag"]
    assert len(rag["measured_ms"]) == 2 and rag["measured_median_ms"] > 0 and rag["predicted_ms"] > 0
    assert rag["error_pct"] == pytest.approx(100 * (rag["predicted_ms"] / rag["measured_median_ms"] - 1), abs=0.2)
    assert rows["rag@h100"]["measured_median_ms"] > 0


def test_an_llm_call_split_across_two_types_sends_its_kv_caches():
    """Prefill on the fast type, decode on the cheap one: two stages, the KV caches' bytes
    over the network on the path, each type busy for its part; the simulator holds the SLA."""
    from agentc.study.search import options

    fast, slow = "nvidia-h100-sxm", "nvidia-t4"
    answer = Node("answer", "llm", 0.0, {fast: Call("answer", "llm@h", (), 0.09), slow: Call("answer", "llm@t", (), 0.36)},
                  {"start": 64}, {fast: 0.03, slow: 0.25}, 12_000_000)
    profile = AgentProfile("split", "", (Node("start", "", 0.001, {}), answer), {})
    assert (fast, slow) in options(answer, (fast, slow), split=True)
    assert options(answer, (fast, slow), split=False) == [fast, slow]
    s = sizing.size(profile, {"answer": (fast, slow)}, 5.0, 0.5)
    kv = 12_000_000 / sizing.NETWORK_BPS
    assert set(s.replicas) == {f"llm:prefill@{fast}", f"llm:decode@{slow}"}
    assert s.unloaded_s == pytest.approx(0.001 + 2 * sizing.HOP_S + 64 / sizing.NETWORK_BPS + 0.03 + (0.36 - 0.25) + kv)
    assert s.busy == pytest.approx({fast: 5 * 0.03, slow: 5 * (0.11 + kv)})
    refined, sim = check.refine(profile, s, 5.0, 0.5)
    assert refined.feasible and sim["p95_ms"] <= 500 and sim["lost"] == 0
