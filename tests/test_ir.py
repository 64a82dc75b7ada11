"""IR tests: every .mlir file under tests/ir/ holds `// RUN:` lines, run here as lit would:
`agentc-opt` (in this process) on the file, piped into `filecheck` against the file's
CHECK lines, or with --verify-diagnostics against its expected-error annotations. A RUN
line may start with `not` (the tool must fail) and redirect `2>&1`, `2>/dev/null`,
`>/dev/null`."""

import contextlib
import io
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from agentc import opt

IR_TESTS = sorted((ROOT / "tests" / "ir").glob("*.mlir"))


def _runs(path: Path) -> list[str]:
    return [ln.split("RUN:", 1)[1].strip() for ln in path.read_text().splitlines() if ln.startswith("// RUN:")]


def _agentc_opt(tokens: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = opt.main(tokens)
        except SystemExit as e:  # argparse
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def run_line(line: str, path: Path) -> None:
    tokens = shlex.split(line.replace("%s", str(path)))
    cut = tokens.index("|") if "|" in tokens else len(tokens)
    first, rest = tokens[:cut], tokens[cut + 1:]
    expect_failure = first[0] == "not"
    first = first[1:] if expect_failure else first
    redirects = {t for t in first if t in ("2>&1", "2>/dev/null", ">/dev/null")}
    first = [t for t in first if t not in redirects]
    assert first[0] == "agentc-opt", line
    code, out, err = _agentc_opt(first[1:])
    assert (code != 0) == expect_failure, f"exit {code}: {line}\n{err}"
    stream = ("" if ">/dev/null" in redirects else out) + (err if "2>&1" in redirects else "")
    if rest:
        assert rest[0] == "filecheck", line
        r = subprocess.run([sys.executable, "-m", "filecheck", *rest[1:]], input=stream, text=True,
                           capture_output=True, check=False, cwd=ROOT)
        assert r.returncode == 0, f"{line}\n{r.stdout}{r.stderr}"


@pytest.mark.parametrize("path", IR_TESTS, ids=[p.stem for p in IR_TESTS])
def test_ir(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    runs = _runs(path)
    assert runs, f"{path.name}: no // RUN: line"
    for line in runs:
        run_line(line, path)


def test_ir_cases_count():
    """At least 30 cases: each RUN line of a file, times its `// -----` chunks when split."""
    cases = 0
    for path in IR_TESTS:
        chunks = path.read_text().count("// -----") + 1
        for line in _runs(path):
            cases += chunks if "--split-input-file" in line else 1
    assert cases >= 30, cases
