"""The shape of the code, held: no import cycles between agentc's modules; the compiler
reads and changes IR through the bindings (no regular expressions over printed IR or
locations, no cutting of printed modules); files stay short unless they say why."""

import ast
from pathlib import Path

import networkx as nx
from conftest import ROOT

PKG = ROOT / "agentc"
# The compiler proper: what builds, rewrites or reads IR.
COMPILER = ["ir", "passes", "cost/estimate.py", "cost/roofline.py", "placement/policy.py", "build/write.py",
            "compiler.py", "models/kernels.py"]
# Longer files, and why.
LONG_OK: dict[str, str] = {}
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _imports(path: Path, name: str, mods: dict) -> set[str]:
    """The agentc modules `path` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
            targets = subs if len(subs) == len(node.names) else [node.module, *subs]
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def test_no_import_cycles():
    mods = _modules()
    g = nx.DiGraph()
    for name, path in mods.items():
        for t in _imports(path, name, mods):
            g.add_edge(name, t)
    cycles = list(nx.simple_cycles(g))
    assert not cycles, " | ".join(" -> ".join(c) for c in cycles[:5])


def _compiler_files() -> list[Path]:
    out = []
    for item in COMPILER:
        p = PKG / item
        out += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return out


def test_no_regular_expressions_over_printed_ir():
    """In the compiler, a regular expression may only sanitize a name (a pattern that is a
    negated character class); locations are read through the location API, not str();
    printed modules are never cut (.index/.rindex/slicing of get_asm())."""
    bad = []
    for path in _compiler_files():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "re":
                pattern = node.args[0] if node.args else None
                if not (isinstance(pattern, ast.Constant) and str(pattern.value).startswith("[^")):
                    bad.append(f"{where}: re.{f.attr} over text")
            if isinstance(f, ast.Name) and f.id == "str" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Attribute) and arg.attr in ("location", "loc"):
                    bad.append(f"{where}: str() of a location")
            if isinstance(f, ast.Attribute) and f.attr in ("index", "rindex", "split", "partition"):
                inner = f.value
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and \
                        inner.func.attr == "get_asm":
                    bad.append(f"{where}: cutting a printed module")
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Call) and \
                    isinstance(node.value.func, ast.Attribute) and node.value.func.attr == "get_asm":
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: slicing a printed module")
    assert not bad, "\n".join(bad)


def test_files_are_short_or_say_why():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    unexplained = {f: n for f, n in long.items() if f not in LONG_OK}
    assert not unexplained, unexplained
