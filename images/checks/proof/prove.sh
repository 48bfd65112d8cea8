#!/usr/bin/env bash
# One-command proof of images/checks/gpu_check.py on a machine with an NVIDIA GPU (issue #15): five ordinary runs,
# one long sustained run with NVML clock and power samples, and fault injections, each asserted; the figures go into
# images/checks/README.md between its prove:begin/prove:end markers. Exits non-zero listing every failed assertion.
# PYTHON picks the interpreter (one with a CUDA build of torch and pynvml); flags go to prove.py (--help).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/prove.py" "$@"
