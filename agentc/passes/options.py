"""Pass options from a pipeline string: each pass names the options it takes."""

from __future__ import annotations


def check_options(opts: dict[str, str], known: tuple[str, ...]) -> None:
    """A KeyError naming the first option the pass does not take."""
    unknown = sorted(set(opts) - set(known))
    if unknown:
        raise KeyError(f"unknown option '{unknown[0]}' (known: {', '.join(known)})")
