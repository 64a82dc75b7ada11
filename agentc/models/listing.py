"""`agentc models`: every model a graph.py can name, and where each comes from."""

from __future__ import annotations

from agentc.models import builtin_dirs, local_models, registry


def available() -> list[dict]:
    """One row per model: name, kind (llm/encoder/reranker), architecture, source, weights."""
    rows = []
    for kind, table in (("encoder", registry.ENCODERS), ("llm", registry.DECODERS)):
        for name, (cls, _) in table.items():
            rows.append({"name": name, "kind": kind, "architecture": cls.__name__,
                         "source": "built in: seeded random weights", "weights": "yes"})
    for name, b in builtin_dirs.DIRS.items():
        rows.append({"name": name, "kind": b.kind, "architecture": b.architecture, "source": b.source,
                     "weights": "yes"})
    for name, path, where in local_models.listed():
        rows.append(_directory_row(name, path, where))
    return rows


def _directory_row(name, path, where) -> dict:
    from agentc.models.hf.checkpoint import Checkpoint, ModelFileError
    from agentc.models.hf.families import ARCHITECTURES

    try:
        ck = Checkpoint(path)
        fam = ARCHITECTURES.get(ck.architecture)
        kind = fam.kind if fam else "unsupported"
        weights = "yes" if ck.has_weights else "config only"
        arch = ck.architecture
    except ModelFileError as e:
        kind, arch, weights = "unreadable", str(e), "?"
    return {"name": name, "kind": kind, "architecture": arch, "source": f"{where}: {path}", "weights": weights}


def table(rows: list[dict]) -> str:
    cols = ("name", "kind", "architecture", "weights", "source")
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in cols) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
