"""Deferred imports for heavy libraries.

`import torch` costs about a second. A warm compile (every export cached) and the runtime
never touch torch, so modules that need it bind the name with `lazy_import` and pay for it
on first attribute use only.

This is a plain proxy over a normal import, not importlib's LazyLoader: torch's own
`__init__` deletes attributes on itself while loading, which recurses forever under a
LazyLoader module on Python 3.12.
"""

from __future__ import annotations

import importlib


class _Deferred:
    __slots__ = ("_module", "_name")

    def __init__(self, name: str):
        self._name = name
        self._module = None

    def __getattr__(self, attr: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<deferred module '{self._name}' ({state})>"


def lazy_import(name: str):
    """A stand-in for module `name` that imports it on first attribute access."""
    return _Deferred(name)
