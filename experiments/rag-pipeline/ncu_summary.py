"""Where a device call's time goes: Nsight Compute's per-kernel durations, by IREE dispatch.

IREE names each CUDA kernel `<function>_dispatch_<n>_<root op>_<shape>`, so an `ncu` CSV
of a run groups into agentc operators (the function) and the kind of dispatch in them:

    ncu --metrics gpu__time_duration.sum -k "regex:decode|block|sample" --launch-count 1200 \\
        --csv --log-file ncu.csv python3 experiments/rag-pipeline/gpu_models.py run BUILD --requests 1
    python experiments/rag-pipeline/ncu_summary.py ncu.csv [--top 25]

Prints the total per function, then the dispatch kinds by total time, with their launch
shape (grid and block): a kernel on a handful of workgroups stands out.
"""

from __future__ import annotations

import argparse
import collections
import csv
import io
import re
from pathlib import Path

TO_US = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}


def durations(path: Path) -> list[tuple[str, str, float, str, str]]:
    """(function, dispatch kind, microseconds, grid, block) per profiled kernel."""
    lines = path.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)  # after ==PROF==
    if start is None:
        raise SystemExit(f"{path}: no CSV header (\"ID\",...): not an `ncu --csv` log")
    out = []
    for r in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        if r["Metric Name"] != "gpu__time_duration.sum" or "_dispatch_" not in r["Kernel Name"]:
            continue
        function, rest = r["Kernel Name"].split("_dispatch_", 1)
        if r["Metric Unit"] not in TO_US:
            raise SystemExit(f"{path}: unknown time unit {r['Metric Unit']!r} for {r['Kernel Name']}")
        us = float(r["Metric Value"].replace(",", "")) * TO_US[r["Metric Unit"]]
        out.append((function, re.sub(r"^\d+_", "", rest), us, r["Grid Size"], r["Block Size"]))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("csv")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    rows = durations(Path(args.csv))
    total, count = collections.Counter(), collections.Counter()
    kinds = collections.defaultdict(list)
    for function, kind, us, grid, block in rows:
        total[function] += us
        count[function] += 1
        kinds[function, kind].append((us, grid, block))
    print(f"{len(rows)} kernels")
    for function, us in total.most_common():
        print(f"  {function:48s} {count[function]:5d} kernels {us:10.1f} us")
    ranked = sorted(kinds.items(), key=lambda kv: -sum(t for t, *_ in kv[1]))
    for (function, kind), v in ranked[:args.top]:
        ts = [t for t, *_ in v]
        print(f"  {function[-24:]:24s} {kind[:50]:50s} n={len(ts):4d} mean {sum(ts) / len(ts):8.1f} us"
              f" total {sum(ts):9.1f} us  grid {v[0][1]} block {v[0][2]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
