#!/usr/bin/env bash
# Install PyTorch into the given Python environment without ever pulling a multi-GB CUDA build
# onto a machine that has no NVIDIA GPU.
set -euo pipefail
PY=${1:-python3}
# the tested version, from the one list of exact versions
VERSION=$(sed -n 's/^torch==//p' "$(dirname "$0")/../constraints.txt")
if [ -z "$VERSION" ]; then
  echo "error: constraints.txt names no torch==VERSION" >&2
  exit 1
fi
if "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$VERSION') else 1)" 2>/dev/null; then
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 || [ "$(uname -s)" = "Darwin" ]; then
  # NVIDIA: the registry build carries CUDA; macOS: the registry build has MPS
  "$PY" -m pip install "torch==$VERSION"
elif "$PY" -m pip install "torch==$VERSION+cpu" 2>/dev/null; then
  :  # a CPU wheel this machine's pip already knows (find-links or a local index)
else
  # the CPU-only build from PyTorch's own index; its dependencies still come from the registry
  "$PY" -m pip install "torch==$VERSION+cpu" --extra-index-url https://download.pytorch.org/whl/cpu
fi
