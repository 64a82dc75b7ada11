"""`agentc study tco [--out DIR] [--agents a,b] [--rates 1,10]`: run the TCO study and write
its summary (summary.json), tables (report.md) and plots (pareto.png, ratios.png); the last
line a script can read: `cases=N hetero_within_10pct=M hetero_cheaper=K best_saving_pct=X`
(on-demand prices)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def register(sub) -> None:
    st = sub.add_parser("study", help="studies built on agentc's cost model and placement (tco)")
    st.add_argument("name", choices=("tco",), help="tco: heterogeneous fleets against the newest GPUs")
    st.add_argument("--out", default="docs/results/tco", help="where to write (default docs/results/tco)")
    st.add_argument("--agents", help="comma-separated subset of: rag, rewrite_rag, panel, tools, rag_3b")
    st.add_argument("--rates", help="comma-separated arrival rates, requests/s (default 1,10,100)")
    st.set_defaults(func=_study)


def _study(args) -> int:
    from agentc.bench.progress import Progress
    from agentc.frontend.graph import AgentError
    from agentc.study import report, run
    from agentc.study.prices import ON_DEMAND
    from agentc.study.search import RATES

    agents = args.agents.split(",") if args.agents else None
    unknown = [a for a in agents or [] if a not in run.AGENTS]
    if unknown:
        raise AgentError(f"--agents: unknown agent '{unknown[0]}' (known: {', '.join(run.AGENTS)})")
    try:
        rates = tuple(float(r) for r in args.rates.split(",")) if args.rates else RATES
    except ValueError:
        raise AgentError(f"--rates: expected numbers separated by commas, got {args.rates!r}") from None
    if any(not r > 0 for r in rates):
        raise AgentError(f"--rates: rates must be > 0, got {args.rates!r}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def progress(total: int):
        bar = Progress(total, "study tco")
        return bar.step

    s = run.study(agents, rates, progress=progress)
    s["load_average"] = os.getloadavg()
    (out / "summary.json").write_text(json.dumps(s, indent=1, default=str) + "\n")
    (out / "report.md").write_text(report.markdown(s))
    report.plots(s, out)
    h = s["headline"][ON_DEMAND]["hetero"]
    print(f"wrote {out}/summary.json, report.md, pareto.png, ratios.png ({s['seconds']:.0f} s)")
    print(f"cases={len(s['cases'])} compared={h['compared']} hetero_within_10pct={h['within_10pct']} "
          f"hetero_cheaper={h['cheaper']} best_saving_pct={h['best_saving_pct']}")
    return 0
