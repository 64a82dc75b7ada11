"""A plain-text progress bar on stderr (no dependency): one redrawn line on a terminal,
one line per step otherwise, so logs of remote runs stay readable."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True, width: int = 28):
        self.total, self.label, self.enabled, self.width = max(total, 1), label, enabled, width
        self.done = 0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def step(self, item: str = "") -> None:
        self.done += 1
        if not self.enabled:
            return
        filled = self.width * self.done // self.total
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = time.perf_counter() - self.start
        line = f"{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s {item}"
        if self.tty:
            end = "\n" if self.done >= self.total else ""
            sys.stderr.write("\r" + line[:120].ljust(120) + end)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
