"""`agentc-opt`: run agentc's passes on a .mlir file, as `mlir-opt` runs upstream ones.

    agentc-opt FILE.mlir --pass-pipeline='builtin.module(decompose-agent-ops{granularity=step},cse)'
        [--print-ir-after-all] [--verify-diagnostics] [--split-input-file] [--device-modules]
        [--mlir-print-debuginfo] [-o OUT]

The input is parsed in a context with the `agent` dialect loaded; agentc's passes run by
name (agentc.passes.PASSES) and any other pipeline segment goes to MLIR's own PassManager.
`--device-modules` prints, after the module, each device module that
outline-device-modules made. `--verify-diagnostics` checks the errors against
`// expected-error {{...}}` annotations (`@below`, `@above`, `@+N`, `@-N` as in MLIR) and
succeeds when they match one to one. `--split-input-file` runs each `// -----` chunk alone.
Exit status 0 on success, 1 otherwise.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SPLIT = "// -----"
_EXPECT = re.compile(r"//\s*expected-(error|warning|note)\s*(@below|@above|@[+-]\d+)?\s*\{\{(.*?)\}\}")


@dataclass
class Diagnostic:
    line: int  # 1-based, within the chunk
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.line}: {self.severity}: {self.message}"


def expected_diagnostics(chunk: str) -> list[Diagnostic]:
    """The `// expected-<severity> [@where] {{message}}` annotations of a chunk (the source
    format, not printed IR: annotations are comments a test author wrote)."""
    out = []
    for i, line in enumerate(chunk.splitlines(), 1):
        for m in _EXPECT.finditer(line):
            where = m.group(2) or ""
            target = i + 1 if where == "@below" else i - 1 if where == "@above" else \
                i + int(where[1:]) if where else i
            out.append(Diagnostic(target, m.group(1), m.group(3)))
    return out


def _line_of(loc) -> int:
    """The input line a location points at (0 if none)."""
    from torch_mlir import ir

    loc = ir.Location.from_attr(loc.attr, loc.context)
    while isinstance(loc, ir.NameLoc):
        loc = loc.child_loc
    return loc.start_line if isinstance(loc, ir.FileLineColLoc) else 0


def run_chunk(chunk: str, pipeline: str, args, out) -> list[Diagnostic]:
    """Parse, run, print; returns the diagnostics (errors) it produced."""
    from torch_mlir import ir

    from agentc.ir import context
    from agentc.passes import PassFailure, PipelineError, print_after, run_pipeline

    ctx = context()
    with ctx:
        try:
            module = ir.Module.parse(chunk)
        except ir.MLIRError as e:
            return _diagnostics(e)
        after = (lambda name, m: print_after(name, m, sys.stderr)) if args.print_ir_after_all else None
        try:
            ran = run_pipeline(module, pipeline, after) if pipeline else []
        except ir.MLIRError as e:
            return _diagnostics(e)
        except PipelineError:
            raise
        except (PassFailure, Exception) as e:  # noqa: BLE001 - a pass's error, reported at its op
            loc = getattr(e, "location", None)
            msg = e.args[0] if e.args else type(e).__name__
            return [Diagnostic(_line_of(loc) if loc is not None else 0, "error", str(msg))]
        print(module.operation.get_asm(enable_debug_info=args.mlir_print_debuginfo), file=out)
        if args.device_modules:
            for step in ran:
                for device, text in sorted(getattr(step, "device_modules", {}).items()):
                    print(f"// -----// device module: {device} //----- //", file=out)
                    print(text, file=out)
    return []


def _diagnostics(e) -> list[Diagnostic]:
    diags = [Diagnostic(_line_of(d.location), "error", d.message) for d in e.error_diagnostics or []]
    return diags or [Diagnostic(0, "error", str(e).splitlines()[0])]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="agentc-opt", description=__doc__.splitlines()[0])
    p.add_argument("input", help=".mlir file, or - for standard input")
    p.add_argument("--pass-pipeline", default="", help="e.g. builtin.module(decompose-agent-ops,cse)")
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass (stderr)")
    p.add_argument("--verify-diagnostics", action="store_true",
                   help="check errors against // expected-error {{...}} annotations")
    p.add_argument("--split-input-file", action="store_true", help="run each '// -----' chunk alone")
    p.add_argument("--device-modules", action="store_true", help="print outline-device-modules' device modules")
    p.add_argument("--mlir-print-debuginfo", action="store_true", help="print locations")
    p.add_argument("-o", "--output", help="write here instead of standard output")
    args = p.parse_args(argv)
    from agentc.passes import PipelineError

    try:
        text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        print(f"agentc-opt: error: {args.input}: {getattr(e, 'strerror', None) or e}", file=sys.stderr)
        return 1
    chunks = text.split(SPLIT) if args.split_input_file else [text]
    out = io.StringIO()
    failed = False
    offset = 0  # lines before this chunk, for messages that name input lines
    for i, chunk in enumerate(chunks):
        if i:
            print(SPLIT, file=out)
        try:
            got = run_chunk(chunk, args.pass_pipeline, args, out)
        except PipelineError as e:
            print(f"agentc-opt: error: --pass-pipeline: {e}", file=sys.stderr)
            return 1
        if args.verify_diagnostics:
            want = expected_diagnostics(chunk)
            for d in _unmatched(want, got):
                print(f"{args.input}:{d.line + offset}: error: expected {d.severity} \"{d.message}\" "
                      "was not produced", file=sys.stderr)
                failed = True
            for d in _unmatched(got, want, produced=True):
                print(f"{args.input}:{d.line + offset}: error: unexpected {d.severity}: {d.message}", file=sys.stderr)
                failed = True
        else:
            for d in got:
                print(f"{args.input}:{d.line + offset}: {d.severity}: {d.message}", file=sys.stderr)
                failed = True
        offset += chunk.count("\n") + (1 if i + 1 < len(chunks) else 0)
    if args.output:
        Path(args.output).write_text(out.getvalue())
    else:
        sys.stdout.write(out.getvalue())
    return 1 if failed else 0


def _unmatched(these: list[Diagnostic], others: list[Diagnostic], produced: bool = False) -> list[Diagnostic]:
    """Diagnostics of `these` with no partner in `others` (same line and severity, and the
    expected message contained in the produced one)."""
    left = list(others)
    missing = []
    for d in these:
        hit = next((o for o in left if o.line == d.line and o.severity == d.severity and
                    ((o.message in d.message) if produced else (d.message in o.message))), None)
        if hit is None:
            missing.append(d)
        else:
            left.remove(hit)
    return missing


if __name__ == "__main__":
    sys.exit(main())
