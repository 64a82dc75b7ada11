"""Bad input, generated: graph.py files, CLI flags, request inputs, cluster YAML, DAG and
STG files, damaged builds and misbehaving tools. Each case must end in one line naming
what is wrong (no traceback, no MLIR), with the right exit code (2: usage or input, 1: a
failed request), and leave every file of the cache and of the other builds as it was; a
session that met a fault must serve the next good request with the reference's output.

Most cases run in-process through the CLI's `main(argv)`; every SUBPROCESS_EVERY-th one,
and the Ctrl-C cases, as real `python -m agentc.cli` processes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXAMPLES, GRAPHS, ROOT

import agentc
from agentc.cli import main
from agentc.frontend.reference import run_reference
from agentc.frontend.trace import trace_file
from agentc.runtime.host_ops import InputError, RunError

SUBPROCESS_EVERY = 9
GOOD_QUERY = "Where does the Rhine flow?"
MLIR_MARKS = ("module {", "func.func", "loc(", "%arg", "^bb")


# -- the workspace every case runs against ------------------------------------------------
@dataclass
class Workspace:
    root: Path
    cache: Path
    rag: Path  # a build of examples/rag_agent.py
    faults: Path  # a build of tests/graphs/faults.py
    fanout: Path  # a build of another graph (its module is foreign to the others)
    n: int = 0

    def path(self, name: str) -> Path:
        self.n += 1
        d = self.root / "cases" / f"{self.n:04d}"
        d.mkdir(parents=True, exist_ok=True)
        return d / name

    def write(self, name: str, text: str | bytes) -> Path:
        p = self.path(name)
        p.write_bytes(text if isinstance(text, bytes) else textwrap.dedent(text).lstrip().encode())
        return p

    def damaged(self, build: Path) -> Path:
        out = self.path("build")
        shutil.copytree(build, out)
        return out


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGENTC_CACHE", str(cache))
        builds = {}
        for name, graph in (("rag", EXAMPLES / "rag_agent.py"), ("faults", GRAPHS / "faults.py"),
                            ("fanout", EXAMPLES / "fanout_agent.py")):
            agentc.compile(str(graph), str(root / name), devices=["cpu"], quiet=True)
            builds[name] = root / name
        w = Workspace(root, cache, builds["rag"], builds["faults"], builds["fanout"])
        w.before = {"cache": _hashes(cache), **{n: _hashes(b) for n, b in builds.items()}}
        yield w


def _unchanged(w: Workspace) -> None:
    """Every file of the cache and of the three builds is as it was; the cache may only
    have gained verification memos (agentc/store.py)."""
    now = _hashes(w.cache)
    for rel, sha in w.before["cache"].items():
        assert now.get(rel) == sha, f"cache file {rel} changed or vanished"
    added = [rel for rel in now if rel not in w.before["cache"]]
    assert all(rel.startswith("verified/") for rel in added), added
    assert not list((w.cache / "tmp").glob("*")) if (w.cache / "tmp").exists() else True
    for n, b in (("rag", w.rag), ("faults", w.faults), ("fanout", w.fanout)):
        assert _hashes(b) == w.before[n], f"build {n} changed"


def _one_line(stderr: str, code: int, want_code: int, needles: tuple[str, ...]) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.strip().splitlines()
             if not ln.startswith("[agentc]") and not ln.startswith("agentc: warning:")]
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("agentc") and " error: " in line, line
    assert "internal error" not in line, line
    assert not any(m in line for m in MLIR_MARKS), line
    for n in needles:
        assert n in line, f"{n!r} not in {line!r}"
    assert code == want_code, f"exit {code}, want {want_code}: {line}"
    return line


# -- the cases ---------------------------------------------------------------------------
@dataclass
class Case:
    id: str
    make: object  # (Workspace) -> argv
    code: int
    needles: tuple[str, ...]


CASES: list[Case] = []


def case(id: str, code: int, *needles: str):
    def register(make):
        CASES.append(Case(id, make, code, needles))
        return make
    return register


def cli(id: str, argv: list[str], code: int, *needles: str) -> None:
    CASES.append(Case(id, lambda w, a=argv: [str(x).format(rag=w.rag, faults=w.faults) for x in a], code, needles))


GRAPH_HEAD = "import agentc\n\n"
AGENT = """
@agentc.agent(sla_ms=1000)
def a(q):
{body}
"""


def _graph(body: str, head: str = "") -> str:
    return GRAPH_HEAD + textwrap.dedent(head) + AGENT.format(body=textwrap.indent(textwrap.dedent(body).strip(), "    "))


# graph.py: each body is a small agent with one mistake; the needle names what is wrong
GRAPH_CASES = {
    "max_tokens_text": ("return agentc.llm(q, max_tokens='12')", "max_tokens"),
    "max_tokens_zero": ("return agentc.llm(q, max_tokens=0)", "max_tokens"),
    "max_tokens_huge": ("return agentc.llm(q, max_tokens=10**9)", "max_tokens"),
    "max_tokens_float": ("return agentc.llm(q, max_tokens=2.5)", "max_tokens"),
    "max_tokens_bool": ("return agentc.llm(q, max_tokens=True)", "max_tokens"),
    "llm_model_int": ("return agentc.llm(q, model=3)", "model"),
    "llm_model_unknown": ("return agentc.llm(q, model='gpt-9')", "unknown language model 'gpt-9'"),
    "llm_granularity": ("return agentc.llm(q, granularity='token')", "granularity"),
    "llm_prompt_len_text": ("return agentc.llm(q, prompt_len='64')", "prompt_len"),
    "llm_cache_len_neg": ("return agentc.llm(q, cache_len=-4)", "cache_len"),
    "llm_prompt_tensor": ("return agentc.llm(agentc.tokenize(q))", "expected text"),
    "tokenize_model_unknown": ("return agentc.format('{0}', agentc.embed(agentc.tokenize(q, model='bert-x')))",
                               "unknown encoder model 'bert-x'"),
    "tokenize_model_list": ("agentc.tokenize(q, model=['a'])\nreturn q", "model must be a str"),
    "embed_text": ("return agentc.embed(q)", "embed: expected token ids"),
    "embed_model_mismatch": ("return agentc.embed(agentc.tokenize(q), model='minilm-nope')", "unknown encoder"),
    "node_name_space": ("return agentc.format('{0}', q, name='my node')", "name='my node'"),
    "node_name_int": ("return agentc.format('{0}', q, name=7)", "name=7"),
    "node_name_lt": ("return agentc.format('{0}', q, name='<x>')", "name='<x>'"),
    "node_name_empty": ("return agentc.format('{0}', q, name='')", "name=''"),
    "node_name_dup": ("x = agentc.format('{0}', q, name='same')\nreturn agentc.format('{0}', x, name='same')",
                      "name 'same' is already the name of the node at"),
    "node_name_dup_branch": (("p = agentc.contains(q, 'x')\nx = agentc.format('{0}', q, name='n')\n"
                             "return agentc.cond(p, lambda: agentc.format('{0}', q, name='n'), lambda: x)"),
                             "name 'n' is already"),
    "after_unknown": ("return agentc.format('{0}', q, name='f') if False else agentc.tool(str.upper, q, after=['nope'])",
                      "after= names unknown node 'nope'"),
    "after_not_list": ("return agentc.tool(str.upper, q, after='x')", "after= must be a list"),
    "tool_not_callable": ("return agentc.tool(42, q)", "expected a callable"),
    "tool_timeout_zero": ("return agentc.tool(str.upper, q, timeout_ms=0)", "timeout_ms"),
    "tool_timeout_text": ("return agentc.tool(str.upper, q, timeout_ms='5')", "timeout_ms"),
    "tool_latency_neg": ("return agentc.tool(str.upper, q, latency_ms=-1)", "latency_ms"),
    "tool_two_named_alike": ("a1 = agentc.tool(lambda x: x, q)\nreturn agentc.tool(lambda x: x + '!', a1)",
                             "two different tools are named 'lambda'"),
    "tool_unpicklable": ("lock = __import__('threading').Lock()\nreturn agentc.tool(lambda x: x if lock else x, q)",
                         "tool 'lambda' cannot be recorded into the build"),
    "tool_arg_int": ("return agentc.tool(str.upper, 5)", "argument 0 must be an agent value or a string"),
    "format_missing": ("return agentc.format('{x} {y}', x=q)", "template does not match"),
    "format_extra_brace": ("return agentc.format('{', q)", "template does not match"),
    "contains_bad_regex": ("return agentc.format('{0}', agentc.contains(q, '('))", "bad pattern"),
    "cond_pred_text": ("return agentc.cond(q, lambda: q, lambda: q)", "predicate must come from"),
    "cond_branch_int": ("p = agentc.contains(q, 'x')\nreturn agentc.cond(p, lambda: 3, lambda: q)",
                        "then branch must return text"),
    "python_if": ("p = agentc.contains(q, 'x')\nif p:\n    return q\nreturn q", "only known when the agent runs"),
    "return_int": ("return 3", "must return agent values"),
    "return_nothing": ("pass", "must return agent values"),
    "unknown_op": ("return agentc.frobnicate(q)", "unknown op 'agentc.frobnicate'"),
    "runtime_error_body": ("return {}['missing']", "KeyError"),
    "recursion": ("def f(n):\n    return f(n + 1)\nreturn f(0)", "RecursionError"),
    "division": ("return 1 / 0", "ZeroDivisionError"),
    "vector_search_not_index": ("return agentc.format('{0}', agentc.vector_search(agentc.embed(agentc.tokenize(q)), 'idx'))",
                                "index must be an agentc.VectorIndex"),
    "vector_search_k_text": ("return agentc.passages(agentc.vector_search(agentc.embed(agentc.tokenize(q)), IDX, k='3'), IDX)",
                             "k must be a whole number"),
    "vector_search_k_zero": ("return agentc.passages(agentc.vector_search(agentc.embed(agentc.tokenize(q)), IDX, k=0), IDX)",
                             "k must be in"),
    "vector_search_k_huge": ("return agentc.passages(agentc.vector_search(agentc.embed(agentc.tokenize(q)), IDX, k=999), IDX)",
                             "k must be in"),
    "vector_search_text": ("return agentc.passages(agentc.vector_search(q, IDX), IDX)", "shape mismatch"),
    "join_not_values": ("return agentc.join([1, 2])", "argument 0 must be an agent value"),
    "fanout_bad_fn": ("return agentc.fanout(lambda x: 3, ['a', 'b'])", "argument 0 must be an agent value"),
    "endless_loop": ("x = q\nwhile True:\n    x = agentc.format('{0}.', x)", "traced more than 50000 nodes"),
}
IDX_HEAD = "IDX = agentc.VectorIndex('facts', {corpus!r}, encoder='tiny-encoder')\n"

for _id, (_body, _needle) in GRAPH_CASES.items():
    def _make(w, body=_body, id=_id):
        head = IDX_HEAD.format(corpus=str(EXAMPLES / "corpus.txt")) if "IDX" in body else ""
        g = w.write(f"{id}.py", _graph(body, head))
        return ["compile", g, "-o", g.with_suffix(".build"), "--devices", "cpu"]
    CASES.append(Case(f"graph-{_id}", _make, 2, (f"{_id}.py:", _needle)))

# graph.py files that are wrong as files
FILE_CASES = {
    "syntax": ("import agentc\ndef (:\n", "syntax error"),
    "indent": ("import agentc\n  x = 1\n", "syntax error"),
    "import_missing": ("import agentc\nimport no_such_module_xyz\n", "ModuleNotFoundError"),
    "raise_at_import": ("import agentc\nraise RuntimeError('config missing')\n", "config missing"),
    "exit_at_import": ("import agentc\nimport sys\nsys.exit(4)\n", "exit(4)"),
    "no_agent": ("import agentc\nx = 1\n", "no @agentc.agent function"),
    "two_agents": (_graph("return q") + "\n@agentc.agent\ndef b(q):\n    return q\n", "2 agents"),
    "same_agent_name": (_graph("return q") + "\n@agentc.agent(name='a')\ndef b(q):\n    return q\n",
                        "two agents are named 'a'"),
    "agent_default_param": ("import agentc\n@agentc.agent\ndef a(q='x'):\n    return q\n", "parameter 'q'"),
    "agent_varargs": ("import agentc\n@agentc.agent\ndef a(*qs):\n    return qs[0]\n", "parameter 'qs'"),
    "agent_sla_text": ("import agentc\n@agentc.agent(sla_ms='fast')\ndef a(q):\n    return q\n", "sla_ms"),
    "agent_sla_neg": ("import agentc\n@agentc.agent(sla_ms=-5)\ndef a(q):\n    return q\n", "sla_ms"),
    "agent_name_bad": ("import agentc\n@agentc.agent(name='a b')\ndef a(q):\n    return q\n", "name='a b'"),
    "agent_not_function": ("import agentc\nagentc.agent(5)\n", "must decorate a function"),
    "op_outside_agent": ("import agentc\nagentc.format('{0}', 'x')\n", "only be used inside"),
    "corpus_missing": ("import agentc\nIDX = agentc.VectorIndex('f', 'nope.txt')\n" + AGENT.format(body="    return q"),
                       "corpus file not found"),
    "corpus_empty": ("import agentc\nIDX = agentc.VectorIndex('f', 'empty.txt')\n" + AGENT.format(body="    return q"),
                     "has no passages"),
    "corpus_binary": ("import agentc\nIDX = agentc.VectorIndex('f', 'binary.txt')\n" + AGENT.format(body="    return q"),
                      "binary.txt: not UTF-8 text"),
    "index_name_int": ("import agentc\nIDX = agentc.VectorIndex(3, 'x.txt')\n" + AGENT.format(body="    return q"),
                       "name must be a non-empty str"),
    "index_encoder_unknown": ("import agentc\nIDX = agentc.VectorIndex('f', 'x.txt', encoder='nope')\n"
                              + AGENT.format(body="    return q"), "unknown encoder model 'nope'"),
    "not_utf8_source": (b"import agentc\nx = '\xff\xfe'\n", "not UTF-8"),
}
for _id, (_text, _needle) in FILE_CASES.items():
    def _make(w, text=_text, id=_id):
        g = w.write(f"{id}.py", text)
        (g.parent / "empty.txt").write_text("\n\n")
        (g.parent / "binary.txt").write_bytes(b"ok line\n\xff\xfe\xfd bad\n")
        (g.parent / "x.txt").write_text("a passage\n")
        return ["compile", g, "-o", g.with_suffix(".build"), "--devices", "cpu"]
    CASES.append(Case(f"file-{_id}", _make, 2, (_needle,)))


def _endless_with_limit(w):
    g = w.write("endless.py", _graph("x = q\nwhile True:\n    x = agentc.format('{0}.', x)"))
    return ["compile", g, "-o", g.with_suffix(".build"), "--devices", "cpu", "--max-nodes", "500"]


CASES.append(Case("graph-endless-limit", _endless_with_limit, 2, ("traced more than 500 nodes", "--max-nodes")))

# CLI flags
RAG = str(EXAMPLES / "rag_agent.py")
for _i, (_flags, _needle) in enumerate([
    (["--devices", ","], "--devices: empty device name"),
    (["--devices", "cpu,,vulkan"], "--devices: empty device name"),
    (["--devices", ""], "--devices: empty device name"),
    (["--devices", "tpu"], "unknown device 'tpu'"),
    (["--devices", "cpu,gpu9"], "unknown device 'gpu9'"),
    (["--time-limit", "0"], "--time-limit"),
    (["--time-limit", "-1"], "--time-limit"),
    (["--time-limit", "abc"], "--time-limit"),
    (["--time-limit", "nan"], "--time-limit"),
    (["--time-limit", "inf"], "--time-limit"),
    (["--sla-ms", "0"], "--sla-ms"),
    (["--sla-ms", "-3"], "--sla-ms"),
    (["--sla-ms", "soon"], "--sla-ms"),
    (["--arrival-rate", "0"], "--arrival-rate"),
    (["--arrival-rate", "-2"], "--arrival-rate"),
    (["--objective", "cheap"], "--objective"),
    (["--emit", "llvm"], "--emit: unknown stage 'llvm'"),
    (["--max-nodes", "0"], "--max-nodes"),
    (["--max-nodes", "lots"], "--max-nodes"),
    (["--agent", "nobody"], "no agent named 'nobody'"),
    (["--cluster", "/nonexistent/cluster.yaml"], "cluster.yaml"),
    (["--devices", "cpu", "--cluster", str(EXAMPLES / "clusters" / "t4_h100.yaml")], "--devices and --cluster"),
    (["--bogus-flag"], "unrecognized arguments"),
]):
    cli(f"flag-compile-{_i}", ["compile", RAG, "-o", "/tmp/agentc-fuzz-never", *_flags], 2, _needle)
for _i, (_argv, _needle) in enumerate([
    (["compile", "/nonexistent/graph.py"], "no such file"),
    (["compile", str(EXAMPLES)], "no such file"),
    (["place", RAG, "--devices", ","], "--devices: empty device name"),
    (["place", RAG, "--time-limit", "0"], "--time-limit"),
    (["place", RAG, "--devices", "cpu", "--cluster", "x.yaml"], "--devices and --cluster"),
    (["place", "/nonexistent.py"], "no such file"),
    (["run", "/nonexistent/build", "--input", "query=x"], "not a build directory"),
    (["run", RAG, "--input", "query=x"], "not a build directory"),
    (["run", "{rag}", "--input", "query"], "--input expects NAME=VALUE"),
    (["run", "{rag}", "--input", "query=a", "--input", "query=b"], "--input query: given twice"),
    (["run", "{rag}", "--input", "bogus=1"], "unknown input 'bogus'"),
    (["run", "{rag}", "--input", "query=a", "--input", "bogus=1"], "unknown input 'bogus'"),
    (["run", "{rag}"], "missing input 'query'"),
    (["run", "{rag}", "--input", "query=a", "--repeat", "0"], "--repeat"),
    (["run", "{rag}", "--input", "query=a", "--trace", "/nonexistent/dir/t.json"], "/nonexistent/dir/t.json"),
    (["schedule", "--dag", "/nonexistent.json"], "cannot read"),
    (["schedule", "--stg", str(EXAMPLES / "rag_agent.py")], "--stg needs --processors"),
    (["schedule", "--dag", "x.json", "--processors", "2"], "--processors applies only to --stg"),
    (["schedule", "--dag", "x.json", "--time-limit", "0"], "--time-limit"),
    (["schedule", "--dag", "x.json", "--workers", "0"], "--workers"),
    (["schedule", "--dag", "x.json", "--algo", "magic"], "--algo"),
    (["cache", "purge"], "invalid choice: 'purge'"),
    (["cache", "gc", "--older-than", "-1"], "--older-than"),
    (["bench", "--fit", "/nonexistent/profile.json"], "profile.json"),
    (["bench", "--target", "tpu"], "--target"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "required"),
]):
    cli(f"flag-{_i}", _argv, 2, _needle)

# cluster YAML
CLUSTER_CASES = {
    "misspelt_cost": ("devices:\n  - {type: nvidia-t4, cost_per_hr: 0.3}\n", ":2:", "cost_per_hr", "cost_per_hour"),
    "misspelt_top": ("device:\n  - {type: nvidia-t4}\n", ":1:", "unknown key 'device'", "devices"),
    "misspelt_host": ("host: {thread: 4}\ndevices:\n  - {type: cpu}\n", ":1:", "host.thread", "threads"),
    "misspelt_link": (("devices:\n  - {type: nvidia-t4, count: 2}\nlinks:\n  - {between: [nvidia-t4, nvidia-t4], "
                      "bandwith_gbps: 12}\n"), ":4:", "bandwith_gbps", "bandwidth_gbps"),
    "misspelt_host_link": ("devices:\n  - type: nvidia-t4\n    host_link: {latency: 3, bandwidth_gbps: 8}\n",
                           ":3:", "latency", "latency_us"),
    "unknown_type": ("devices:\n  - {type: nvidia-t5}\n", ":2:", "unknown device type 'nvidia-t5'", "nvidia-t4"),
    "count_zero": ("devices:\n  - {type: cpu, count: 0}\n", ":2:", "count", ">= 1"),
    "count_frac": ("devices:\n  - {type: cpu, count: 1.5}\n", ":2:", "count"),
    "count_text": ("devices:\n  - {type: cpu, count: many}\n", ":2:", "count"),
    "count_inf": ("devices:\n  - {type: cpu, count: .inf}\n", ":2:", "count"),
    "count_huge": ("devices:\n  - {type: cpu, count: 2000000}\n", "at most 1000000"),
    "cost_neg": ("devices:\n  - {type: cpu, cost_per_hour: -1}\n", ":2:", "cost_per_hour"),
    "cost_nan": ("devices:\n  - {type: cpu, cost_per_hour: .nan}\n", ":2:", "cost_per_hour"),
    "reserve_text": ("devices:\n  - {type: cpu, reserve_usd_per_request: x}\n", ":2:", "reserve_usd_per_request"),
    "host_link_list": ("devices:\n  - {type: nvidia-t4, host_link: [1, 2]}\n", ":2:", "host_link"),
    "host_link_bw0": ("devices:\n  - type: nvidia-t4\n    host_link: {bandwidth_gbps: 0}\n", "bandwidth_gbps", "> 0"),
    "link_unknown_end": ("devices:\n  - {type: cpu}\nlinks:\n  - {between: [cpu, tpu], bandwidth_gbps: 1}\n",
                         ":4:", "no device named 'tpu'"),
    "link_one_end": ("devices:\n  - {type: cpu}\nlinks:\n  - {between: [cpu], bandwidth_gbps: 1}\n",
                     ":4:", "expected two device names"),
    "link_no_bw": ("devices:\n  - {type: nvidia-t4, count: 2}\nlinks:\n  - {between: [nvidia-t4, nvidia-t4]}\n",
                   "bandwidth_gbps", "missing"),
    "link_not_mapping": ("devices:\n  - {type: cpu}\nlinks:\n  - 3\n", "links[0]"),
    "links_not_list": ("devices:\n  - {type: cpu}\nlinks: 3\n", "links", "expected a list"),
    "dup_name": ("devices:\n  - {type: cpu, name: a}\n  - {type: nvidia-t4, name: a}\n", ":3:", "duplicate device name 'a'"),
    "name_colon": ("devices:\n  - {type: cpu, name: 'a:1'}\n", ":2:", "without ':'"),
    "no_devices": ("host: {threads: 2}\n", "devices", "non-empty list"),
    "empty_devices": ("devices: []\n", "devices", "non-empty list"),
    "top_list": ("- cpu\n- gpu\n", "expected a mapping"),
    "yaml_syntax": ("devices:\n  - {type: cpu\n", "cannot read cluster"),
    "yaml_tab": ("devices:\n\t- {type: cpu}\n", "cannot read cluster"),
    "threads_zero": ("host: {threads: 0}\ndevices:\n  - {type: cpu}\n", ":1:", "threads"),
    "entry_not_mapping": ("devices:\n  - cpu\n", ":2:", "expected a mapping with a 'type'"),
    "empty_file": ("", "devices", "non-empty list"),
    "binary": (b"\xff\xfe\x00devices", "not UTF-8"),
    "link_to_many": (("devices:\n  - {type: nvidia-t4, count: 2}\n  - {type: cpu, count: 1000}\nlinks:\n"
                     "  - {between: ['nvidia-t4:1', cpu], bandwidth_gbps: 1}\n"), ":5:", "group 'cpu' of 1000"),
    "link_one_of_many": (("devices:\n  - {type: nvidia-t4, count: 1000}\n  - {type: cpu}\nlinks:\n"
                         "  - {between: ['nvidia-t4:3', cpu], bandwidth_gbps: 1}\n"), "group of 1000"),
}
for _id, (_text, *_needles) in CLUSTER_CASES.items():
    def _make(w, text=_text, id=_id):
        c = w.write(f"{id}.yaml", text)
        return ["place", RAG, "--cluster", c]
    CASES.append(Case(f"cluster-{_id}", _make, 2, (f"{_id}.yaml", *_needles)))

# DAG and STG files
DAG_OK = {"tasks": ["a", "b"], "processors": ["p", "q"], "comp_cost": {"a": {"p": 1, "q": 2}, "b": {"p": 1, "q": 1}},
          "edges": [["a", "b", 1]]}


def _dag(**change):
    d = json.loads(json.dumps(DAG_OK))
    for k, v in change.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return json.dumps(d)


DAG_CASES = {
    "empty": (_dag(tasks=[], comp_cost={}, edges=[]), "no tasks"),
    "no_procs": (_dag(processors=[]), "processors"),
    "binary": (b"\x00\xff\x13\x37" * 40, "not UTF-8"),
    "not_json": ("{tasks: [a]}", "invalid JSON"),
    "truncated": (_dag()[:30], "invalid JSON"),
    "top_list": ("[1, 2]", "expected a JSON object"),
    "missing_tasks": (_dag(tasks=None), "missing field 'tasks'"),
    "missing_edges": (_dag(edges=None), "missing field 'edges'"),
    "tasks_dict": (_dag(tasks={"a": 1}), "tasks"),
    "proc_field": (_dag(processors=[{"name": "p", "speed": 2}]), "unknown field 'speed'"),
    "proc_capacity": (_dag(processors=[{"name": "p", "capacity": 0}]), "capacity"),
    "neg_cost": (_dag(comp_cost={"a": {"p": -1, "q": 1}, "b": {"p": 1, "q": 1}}), "a"),
    "cycle": (_dag(edges=[["a", "b", 1], ["b", "a", 1]]), "cycle"),
    "edge_unknown": (_dag(edges=[["a", "zz", 1]]), "zz"),
    "dup_proc": (_dag(processors=["p", "p"]), "duplicate processor"),
}
for _id, (_text, _needle) in DAG_CASES.items():
    def _make(w, text=_text, id=_id):
        return ["schedule", "--dag", w.write(f"{id}.json", text), "--algo", "heft"]
    CASES.append(Case(f"dag-{_id}", _make, 2, (_needle,)))
STG_CASES = {
    "empty": ("", "empty file"),
    "header": ("two\n", "expected the number of tasks"),
    "short": ("3\n0 0 0\n1 1 1 0\n", "expected 5 task lines"),
    "letters": ("1\n0 0 0\n1 x 1 0\n2 0 1 1\n", "expected non-negative integers"),
    "bad_pred": ("1\n0 0 0\n1 1 1 9\n2 0 1 1\n", "predecessor 9 is not a task"),
    "binary": (b"\xff\xff\xff", "not UTF-8"),
}
for _id, (_text, _needle) in STG_CASES.items():
    def _make(w, text=_text, id=_id):
        return ["schedule", "--stg", w.write(f"{id}.stg", text), "--processors", "2"]
    CASES.append(Case(f"stg-{_id}", _make, 2, (_needle,)))


# damaged builds: each file of the build, truncated, emptied, grown, removed, replaced
def _damage(kind: str, rel: str):
    def make(w):
        b = w.damaged(w.rag)
        f = b / rel
        if kind == "truncate":
            f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 3)])
        elif kind == "empty":
            f.write_bytes(b"")
        elif kind == "append":
            with open(f, "ab") as fh:
                fh.write(b"\n")
        elif kind == "flip":
            data = bytearray(f.read_bytes())
            data[len(data) // 2] ^= 0x01
            f.write_bytes(bytes(data))
        elif kind == "remove":
            f.unlink()
        elif kind == "foreign":  # the same file of another build
            f.write_bytes((w.fanout / rel).read_bytes())
        return ["run", b, "--input", "query=x"]
    return make


_REL = ["plan.json", "cpu.vmfb", "graph.py", "corpus.txt", "weights/tiny-lm.irpa",
        "weights/tiny-encoder.irpa", "weights/index_facts.irpa"]
for _rel in _REL:
    for _kind in ("truncate", "empty", "append", "flip", "remove"):
        _needle = "missing (listed in manifest.json)" if _kind == "remove" else "changed since the build was written"
        CASES.append(Case(f"build-{_kind}-{_rel}", _damage(_kind, _rel), 2, (_rel, _needle, "recompile")))
for _rel in ("plan.json", "cpu.vmfb", "graph.py"):  # (the two builds share their tiny-lm archive)
    CASES.append(Case(f"build-foreign-{_rel}", _damage("foreign", _rel), 2, (_rel, "changed since")))


def _manifest(text: bytes | None):
    def make(w):
        b = w.damaged(w.rag)
        if text is None:
            (b / "manifest.json").unlink()
        else:
            (b / "manifest.json").write_bytes(text)
        return ["run", b, "--input", "query=x"]
    return make


for _id, _text, _needle in [
    ("missing", None, "no manifest.json"), ("empty", b"", "not valid JSON"), ("garbage", b"{x", "not valid JSON"),
    ("binary", b"\xff\xfe", "not UTF-8"), ("list", b"[]", "expected a JSON object"),
    ("no_files", b"{}", "field 'files'"), ("files_list", b'{"files": []}', "field 'files'"),
    ("bad_hash", b'{"files": {"plan.json": "abc"}}', "field 'files'"),
    ("escape", b'{"files": {"plan.json": "' + b"0" * 64 + b'", "../x": "' + b"0" * 64 + b'"}}', "missing"),
]:
    CASES.append(Case(f"manifest-{_id}", _manifest(_text), 2, ("manifest.json" if _id != "escape" else "x", _needle)))


# with the check skipped (--no-verify), damage is still one line from the loader
def _unverified(rel: str, data):
    def make(w):
        b = w.damaged(w.rag)
        (b / rel).write_bytes(data(w, b / rel))
        return ["run", b, "--input", "query=x", "--no-verify"]
    return make


for _rel, _data, _needle in [
    ("plan.json", lambda w, f: f.read_bytes()[:100], "plan.json: not valid JSON"),
    ("plan.json", lambda w, f: b"{}", "plan.json: damaged"),
    ("plan.json", lambda w, f: b'{"agent": 1, "inputs": [], "input_ids": [], "outputs": [], "devices": {}, '
                               b'"ops": 5, "indexes": {}}', "plan.json: damaged"),
    ("cpu.vmfb", lambda w, f: f.read_bytes()[:500], "could not load its module"),
    ("cpu.vmfb", lambda w, f: b"", "could not load its module"),
    ("weights/tiny-lm.irpa", lambda w, f: f.read_bytes()[:700], "not a readable weights archive"),
    ("cpu.vmfb", lambda w, f: (w.fanout / "cpu.vmfb").read_bytes(), "cpu"),
]:
    CASES.append(Case(f"unverified-{_rel}-{len(CASES)}", _unverified(_rel, _data), 2, (_needle,)))

# runtime faults through the CLI: a failed request is exit 1
for _q, _needle in [("raise", "raised ValueError: the lookup service is down"),
                    ("slow", "exceeded its timeout of 300 ms"), ("none", "returned NoneType, not text"),
                    ("bytes", "returned bytes, not text"), ("number", "returned int, not text"),
                    ("exit", "raised SystemExit")]:
    cli(f"runfault-{_q}", ["run", "{faults}", "--input", f"query=please {_q}"], 1, "node 'lookup'", _needle)


# -- running them -------------------------------------------------------------------------
def _subprocess(index: int) -> bool:
    return index % SUBPROCESS_EVERY == 0


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c.id for c in CASES])
def test_bad_input(ws, index, capfd, monkeypatch):
    c = CASES[index]
    argv = [str(a) for a in c.make(ws)]
    if _subprocess(index):
        r = subprocess.run([sys.executable, "-m", "agentc.cli", *argv], capture_output=True, text=True, check=False,
                           cwd=ROOT, timeout=300, env={**os.environ, "AGENTC_CACHE": str(ws.cache)})
        code, err = r.returncode, r.stderr
    else:
        capfd.readouterr()
        monkeypatch.setenv("AGENTC_CACHE", str(ws.cache))
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's usage errors
            code = e.code
        err = capfd.readouterr().err
    _one_line(err, code, c.code, c.needles)
    _unchanged(ws)


def test_corpus_size():
    """The corpus holds at least 200 cases, at least 20 of them run as real processes."""
    assert len(CASES) >= 200, len(CASES)
    assert sum(_subprocess(i) for i in range(len(CASES))) >= 20


# -- a long-lived session meets every fault, then serves the reference's answer ------------
SESSION_FAULTS = [
    ({"query": "please raise"}, RunError, "raised ValueError"),
    ({"query": "please slow"}, RunError, "exceeded its timeout"),
    ({"query": "none please"}, RunError, "returned NoneType"),
    ({"query": "bytes please"}, RunError, "returned bytes"),
    ({"query": "a number"}, RunError, "returned int"),
    ({"query": "exit now"}, RunError, "raised SystemExit"),
    ({"query": "hang forever"}, RunError, "exceeded its timeout"),
    ({"query": 5}, InputError, "input 'query' must be text (str), got int"),
    ({"query": None}, InputError, "got NoneType"),
    ({"query": b"x"}, InputError, "got bytes"),
    ({"query": ["a"]}, InputError, "got list"),
    ({"query": 1.5}, InputError, "got float"),
    ({"query": True}, InputError, "got bool"),
    ({"query": {"q": 1}}, InputError, "got dict"),
    ({}, InputError, "missing input 'query'"),
    ({"query": "x", "extra": "y"}, InputError, "unknown input 'extra'"),
    ({"q": "x"}, InputError, "unknown input 'q'"),
    ("query=x", InputError, "inputs must be a mapping"),
    (None, InputError, "inputs must be a mapping"),
    ([("query", "x")], InputError, "inputs must be a mapping"),
]


def test_session_survives_every_fault(ws, capfd, monkeypatch):
    ref = run_reference(trace_file(GRAPHS / "faults.py"), {"query": GOOD_QUERY})["outputs"]
    monkeypatch.setenv("AGENTC_CACHE", str(ws.cache))
    s = agentc.load(ws.faults)
    try:
        for inputs, error, needle in SESSION_FAULTS:
            with pytest.raises(error) as e:
                s.run(inputs)
            assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
            assert s.run({"query": GOOD_QUERY})["outputs"] == ref
        deadline = time.monotonic() + 2.0  # the slow call (0.5 s) returns on its own
        while s.stats()["tools_stuck"] != ["lookup"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.stats()["tools_stuck"] == ["lookup"]  # the hung call, still running
        t0 = time.perf_counter()
    finally:
        stuck = s.close()
    assert time.perf_counter() - t0 < 0.3 + 1.0  # the longest tool timeout + 1 s
    assert stuck == ["lookup"]
    assert "abandoned: lookup" in capfd.readouterr().err
    with pytest.raises(RunError, match="the session is closed"):
        s.run({"query": GOOD_QUERY})
    _unchanged(ws)


def test_load_options_are_checked(ws):
    with pytest.raises(InputError, match="unknown option 'verfy'.*did you mean 'verify'"):
        agentc.load(ws.rag, verfy=False)
    with pytest.raises(agentc.AgentError, match="unknown option 'devics'.*did you mean 'devices'"):
        agentc.compile(str(EXAMPLES / "rag_agent.py"), str(ws.path("b")), devics=["cpu"])


# -- Ctrl-C: one line, exit 130, nothing left half-written --------------------------------
def _interrupt(argv: list[str], ws: Workspace, after_s: float = 0.0, when: str | None = None):
    """Run the CLI and send it SIGINT `after_s` seconds after it starts, or once a line of
    its stderr contains `when`."""
    p = subprocess.Popen([sys.executable, "-m", "agentc.cli", *map(str, argv)], cwd=ROOT, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "AGENTC_CACHE": str(ws.cache)})
    seen = []
    if when is not None:
        for line in p.stderr:
            seen.append(line)
            if when in line:
                break
    time.sleep(after_s)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(argv, p.returncode, out, "".join(seen) + err)


def test_ctrl_c_during_run(ws):
    r = _interrupt(["run", ws.rag, "--input", "query=x", "--repeat", "1000000"], ws, after_s=6.0)
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("agentc: warning:")]
    assert r.returncode == 130 and lines == ["agentc: interrupted"], r.stderr
    _unchanged(ws)


def test_ctrl_c_during_compile(ws):
    # kernels no other build has together: the module is compiled afresh
    head = IDX_HEAD.format(corpus=str(EXAMPLES / "corpus.txt"))
    g = ws.write("slowcompile.py", _graph("return agentc.passages(agentc.vector_search(agentc.embed("
                                          "agentc.tokenize(q)), IDX, k=4), IDX)", head))
    out = g.with_suffix(".build")
    r = _interrupt(["compile", g, "-o", out, "--devices", "cpu"], ws, after_s=0.3, when="placed")
    if r.returncode == 0:
        pytest.skip("the compile finished before the interrupt")
    assert r.returncode == 130 and r.stderr.strip().splitlines()[-1] == "agentc: interrupted", r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "manifest.json").exists()
    assert not [p for p in out.rglob("*.tmp")] if out.exists() else True
    assert not list((ws.cache / "tmp").glob("*")) if (ws.cache / "tmp").exists() else True
