"""Arrivals for load tests: the real traces read as the csv module reads them, window,
speed-up and rate scaling, and synthetic processes with the statistics they promise."""

import csv
import datetime

import numpy as np
import pytest

from agentc.serving.arrivals import ArrivalsError, gamma, read_trace, reshape, steps
from tests.conftest import ROOT

TRACE = ROOT.parent / "shared" / "traces" / "azure_llm_2023_code.csv"


@pytest.mark.skipif(not TRACE.exists(), reason="../shared/traces not beside the checkout")
def test_trace_matches_the_csv_module():
    rows = list(csv.DictReader(TRACE.read_text().splitlines()))
    got = read_trace(TRACE)
    assert len(got) == len(rows)
    t = sorted(datetime.datetime.fromisoformat(r["TIMESTAMP"][:26]) for r in rows)
    assert got[0].at == 0 and got[-1].at == pytest.approx((t[-1] - t[0]).total_seconds())
    assert sum(a.generated_tokens for a in got) == sum(int(r["GeneratedTokens"]) for r in rows)
    window = reshape(got, speedup=2.0, duration_s=600, start_s=60)
    inside = [a for a in got if 60 <= a.at < 660]
    assert len(window) == len(inside) and window[-1].at == pytest.approx((inside[-1].at - 60) / 2)


def test_rate_scale_keeps_and_copies_requests():
    base = [type(a)(float(i)) for i, a in enumerate(gamma(10, 1, 200, seed=1))]
    half = reshape(base, rate_scale=0.5, seed=2)
    assert abs(len(half) - len(base) / 2) < 4 * np.sqrt(len(base) / 4)  # binomial, 4 sigma
    assert len(reshape(base, rate_scale=3.0)) == 3 * len(base)


def test_gamma_and_steps_statistics():
    a = np.array([x.at for x in gamma(rate=50, cv=4, duration_s=2000, seed=0)])
    gaps = np.diff(a)
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.1)
    assert gaps.std() / gaps.mean() == pytest.approx(4, rel=0.15)
    s = np.array([x.at for x in steps([2, 40, 2], step_s=100, seed=0)])
    counts = np.histogram(s, bins=[0, 100, 200, 300])[0]
    assert counts[1] > 10 * counts[0] and counts[1] == pytest.approx(4000, rel=0.1)


@pytest.mark.parametrize("call, message", [
    (lambda: reshape([], speedup=0), "--speedup: must be > 0"),
    (lambda: gamma(0, 1, 10), "--rate, --cv and --duration must be > 0"),
    (lambda: read_trace("/nonexistent.csv"), "/nonexistent.csv: No such file"),
])
def test_bad_arrival_options(call, message):
    with pytest.raises(ArrivalsError, match=message):
        call()


def test_trace_with_wrong_columns(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("time,tokens\n1,2\n")
    with pytest.raises(ArrivalsError, match=r"t.csv:1: missing column\(s\) ContextTokens, GeneratedTokens, TIMESTAMP"):
        read_trace(p)


@pytest.mark.parametrize("args, message", [
    (["loadtest", "http://127.0.0.1:1", "--arrivals", "gamma", "--duration", "1"], "no agentc serve answers there"),
    (["loadtest", "http://127.0.0.1:1", "--duration", "1"], "give --trace FILE or --arrivals gamma|step"),
    (["loadtest", "http://127.0.0.1:1", "--trace", "/nonexistent.csv"], "/nonexistent.csv: No such file"),
    (["loadtest", "http://127.0.0.1:1", "--arrivals", "gamma", "--questions", "/nope.txt"], "--questions /nope.txt"),
    (["serve", "examples", "--api-key-file", "/nope"], "examples"),
])
def test_bad_load_and_serve_commands_are_one_line(args, message, tmp_path):
    from tests.conftest import agentc_cli

    r = agentc_cli(*args, "--out" if args[0] == "loadtest" else "--port", tmp_path if args[0] == "loadtest" else 8299)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
