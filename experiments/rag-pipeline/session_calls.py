"""Where a request's device calls spend their time, against the same call made alone.

Runs requests through a loaded build (`agentc.load`), timing every device call inside the
runtime (the IREE invocation only) and every release of device buffers, then calls one
function again alone on its device's worker thread with the very arguments it got in the
last request. The gap between the two is what the request's surroundings cost that call.

    python experiments/rag-pipeline/session_calls.py BUILD [--requests 6] [--function __sample] [--switch-interval S]

Builds from `experiments/rag-pipeline/gpu_models.py compile` re-create their model archives first.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("build")
    p.add_argument("--requests", type=int, default=6)
    p.add_argument("--function", default="__sample", help="suffix of the function to call alone")
    p.add_argument("--switch-interval", type=float,
                   help="Python's GIL switch interval in seconds (default: Python's, 0.005)")
    args = p.parse_args(argv)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    build = Path(args.build)
    sys.path.insert(0, str(Path(__file__).parent))
    import gpu_models
    from rag_e2e import QUESTIONS

    gpu_models.regenerate(build)
    import agentc
    from agentc.runtime import device as S

    calls, last_args, releases = collections.defaultdict(list), {}, collections.defaultdict(list)
    invoke = S.Device.call

    def timed_call(self, fn, call_args):
        t0 = time.perf_counter()
        out = invoke(self, fn, call_args)
        calls[fn].append(time.perf_counter() - t0)
        last_args[fn] = (self, list(call_args))
        return out

    def timed_release(self, arrays):
        n = len(arrays)

        def clear():
            t0 = time.perf_counter()
            arrays.clear()
            releases[n].append(time.perf_counter() - t0)
        if self.owns_thread():
            clear()
        else:
            self.worker.submit(clear)

    S.Device.call, S.Device.release = timed_call, timed_release
    with agentc.load(build) as session:
        for i in range(args.requests):
            t0 = time.perf_counter()
            session.run({"query": QUESTIONS[i % len(QUESTIONS)]})
            print(f"request {i}: {(time.perf_counter() - t0) * 1e3:.1f} ms")
        for fn, ts in sorted(calls.items(), key=lambda kv: -sum(kv[1]))[:8]:
            print(f"in requests  {fn:44s} n={len(ts):4d} median {statistics.median(ts) * 1e3:8.3f} ms")
        for n, ts in sorted(releases.items()):
            print(f"release of {n:3d} buffers  n={len(ts):4d} median {statistics.median(ts) * 1e3:8.3f} ms"
                  f"  max {max(ts) * 1e3:.3f} ms")
        fn = next(f for f in calls if f.endswith(args.function))
        device, fn_args = last_args.pop(fn)

        def alone(dev, call_args):
            ts = []
            for _ in range(200):
                t0 = time.perf_counter()
                out = invoke(dev, fn, call_args)
                del out
                ts.append(time.perf_counter() - t0)
            return ts

        ts = device.on_thread(alone, device, fn_args)
        print(f"alone        {fn:44s} n={len(ts):4d} median {statistics.median(ts) * 1e3:8.3f} ms")
        del fn_args, device  # device buffers go before the session closes
        last_args.clear()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
