"""`agentc study tco [--out DIR] [--agents a,b] [--rates 1,10]`: run the TCO study and write
its summary (summary.json), tables (report.md) and plots (pareto.png, ratios.png); the last
line a script can read: `cases=N hetero_within_10pct=M hetero_cheaper=K best_saving_pct=X`
(on-demand prices). `agentc study check`: the study's per-request figures against builds run
here (and the recorded H100 run), written to check.json; last line `checks=N within_15pct=M`."""

from __future__ import annotations

import json
import os
from pathlib import Path


def register(sub) -> None:
    st = sub.add_parser("study", help="studies built on agentc's cost model and placement (tco)")
    st.add_argument("name", choices=("tco", "check"),
                    help="tco: heterogeneous fleets against the newest GPUs; check: its figures against runs here")
    st.add_argument("--out", default="docs/results/tco", help="where to write (default docs/results/tco)")
    st.add_argument("--agents", help="comma-separated subset of: rag, rewrite_rag, panel, tools, rag_3b")
    st.add_argument("--rates", help="comma-separated arrival rates, requests/s (default 1,10,100)")
    st.add_argument("--requests", type=int, default=5, help="check: requests measured per agent (default 5)")
    st.add_argument("--measured", metavar="NAMESPACE",
                    help="tco: price with the calibration records of this namespace; check: write them there "
                         "(default study-check)")
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
    if args.name == "check":
        return _check(agents or ["rag", "rewrite_rag", "panel"], args.requests, out, args.measured)
    if args.measured:
        os.environ["AGENTC_MEASURED"] = args.measured

    def progress(total: int):
        bar = Progress(total, "study tco")
        return bar.step

    s = run.study(agents, rates, progress=progress)
    s["load_average"] = os.getloadavg()
    s["measured"] = args.measured or ""
    (out / "summary.json").write_text(json.dumps(s, separators=(",", ":"), default=str) + "\n")
    (out / "report.md").write_text(report.markdown(s))
    report.plots(s, out)
    h = s["headline"][ON_DEMAND]["hetero"]
    print(f"wrote {out}/summary.json, report.md, pareto.png, ratios.png ({s['seconds']:.0f} s)")
    print(f"cases={len(s['cases'])} compared={h['compared']} hetero_within_10pct={h['within_10pct']} "
          f"hetero_cheaper={h['cheaper']} best_saving_pct={h['best_saving_pct']}")
    return 0


def _check(agents: list[str], requests: int, out: Path, namespace: str | None) -> int:
    from agentc.frontend.graph import AgentError
    from agentc.study.validate import NAMESPACE, QUESTIONS, check

    if requests < 1:
        raise AgentError(f"--requests: must be >= 1, got {requests}")
    priced_only = [a for a in agents if a not in QUESTIONS]
    if priced_only:
        raise AgentError(f"--agents: '{priced_only[0]}' cannot be run here (runnable: {', '.join(QUESTIONS)})")
    rows = check(agents, requests, namespace=namespace or NAMESPACE)
    rows_out = {"load_average": os.getloadavg(), "checks": rows}
    (out / "check.json").write_text(json.dumps(rows_out, indent=1) + "\n")
    for key, r in rows.items():
        raw = f", uncalibrated {r['predicted_uncalibrated_ms']:.1f} ms" if "predicted_uncalibrated_ms" in r else ""
        print(f"{key:12s} {r['device']:26s} predicted {r['predicted_ms']:8.1f} ms  measured {r['measured_median_ms']:8.1f} ms"
              f"  ({r['error_pct']:+.1f}%{raw})")
    print(f"checks={len(rows)} within_15pct={sum(abs(r['error_pct']) <= 15 for r in rows.values())}")
    return 0
