"""`agentc schedule`: the JSON line, the human table, and one-line errors with status 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentc.scheduler.cli import main

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO.parent / "shared" / "benchmarks" / "scheduling"
needs_bench = pytest.mark.skipif(
    not BENCH.is_dir(), reason=f"shared benchmarks not found at {BENCH} (../shared absent)"
)


@needs_bench
def test_json_last_line(capsys):
    code = main(
        ["schedule", "--dag", str(BENCH / "heft_topcuoglu.json"), "--algo", "heft", "--json"]
    )
    out = capsys.readouterr().out
    assert code == 0
    result = json.loads(out.strip().splitlines()[-1])
    assert result["makespan"] == 80  # published HEFT makespan
    assert result["status"] == "heuristic"
    assert result["lower_bound"] <= 80
    assert result["assignment"]["n10"] == {"processor": "P2", "start": 73, "end": 80}


@needs_bench
def test_human_table(capsys):
    stg = BENCH / "stg" / "50" / "rand0000.stg"
    code = main(["schedule", "--stg", str(stg), "--processors", "8", "--algo", "cpsat"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[0].split() == ["task", "processor", "start", "end"]
    assert "makespan:    55" in out  # public optimum for 50/rand0000 on 8 processors
    assert "status:      optimal" in out
    assert "lower bound: 55" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--stg", "x.stg"], "agentc schedule: error: --stg needs --processors P"),
        (
            ["--dag", "missing.json"],
            "agentc schedule: error: missing.json: cannot read: No such file or directory",
        ),
        (
            ["--dag", "g.json", "--time-limit", "0"],
            "agentc schedule: error: --time-limit must be > 0, got 0.0",
        ),
    ],
)
def test_errors_are_one_line_with_status_2(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code = main(["schedule", *argv])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == message + "\n"
    assert captured.out == ""


def test_bad_file_error_names_the_line(capsys, tmp_path):
    bad = tmp_path / "rand0000.stg"
    bad.write_text("2\n0 0 0\n1 3 1 0\n2 4 2 1\n3 0 1 2\n")
    code = main(["schedule", "--stg", str(bad), "--processors", "2"])
    assert code == 2
    assert capsys.readouterr().err == (
        "agentc schedule: error: rand0000.stg:4: expected 2 predecessor ids, got 1\n"
    )


@needs_bench
def test_runs_as_a_module():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentc.scheduler.cli",
            "schedule",
            "--dag",
            str(BENCH / "peft_arabnejad.json"),
            "--algo",
            "peft",
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["makespan"] == 122


PRICED = {
    "tasks": ["a", "b"],
    "processors": [
        {"name": "slow", "cost_per_s": 1},
        {"name": "fast", "cost_per_s": 8, "reserve_cost": 0.5},
    ],
    "comp_cost": {"a": [10, 2], "b": [10, 2]},
    "edges": [["a", "b", 0]],
}


def test_tco_json_has_cost_and_utilisation(capsys, tmp_path):
    dag = tmp_path / "priced.json"
    dag.write_text(json.dumps(PRICED))
    argv = ["schedule", "--dag", str(dag), "--objective", "tco", "--sla", "12", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["objective"] == "tco"
    assert result["cost"] == 26.5  # 10 on slow, 8 x 2 on fast, fast's reserve 0.5
    assert result["sla"] == 12 and result["sla_met"] is True
    assert result["utilisation"] == {"slow": 10 / 12, "fast": 2 / 12}
    assert result["busy_time"] == {"slow": 10, "fast": 2}
    argv = [*argv[:-1], "--arrival-rate", "0.04"]  # only fast keeps up alone: 8 / 0.04
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cost:        200 per request" in out
    assert "objective:   tco" in out


def test_unreachable_sla_error_then_explanation(capsys, tmp_path):
    dag = tmp_path / "priced.json"
    dag.write_text(json.dumps(PRICED))
    code = main(["schedule", "--dag", str(dag), "--objective", "tco", "--sla", "3"])
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[0].startswith(
        "agentc schedule: error: SLA 3 is unreachable: the best achievable latency is 4"
    )
    assert err[1] == "critical path:"
    code = main(["schedule", "--dag", str(dag), "--objective", "tco"])
    assert code == 2
    assert "objective 'tco' needs an SLA" in capsys.readouterr().err
