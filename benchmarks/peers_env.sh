#!/usr/bin/env bash
# Make benchmarks/.venv-peers: the peers bench_peers.py compares the reference
# backend with (PyTorch CPU, JAX, pcx). They are never dependencies of
# neuro-pc itself; this environment exists only to run the benchmark.
#
#   benchmarks/peers_env.sh            # then:
#   benchmarks/.venv-peers/bin/python benchmarks/bench_peers.py
#
# PyTorch: a CPU build of torch 2.13.0 for Python 3.11 is what
# `pip install torch==2.13.0` finds on the project's machines; on Python 3.10
# pip would pull a CUDA build of several GB, so a Python 3.11 is required
# ($NEURO_PC_PEERS_PYTHON, else pyenv's 3.11.*). neuro-pc is installed into the
# same environment (editable, without the Lava extra, which needs Python 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=benchmarks/.venv-peers

find_python() {
  local c
  for c in "${NEURO_PC_PEERS_PYTHON:-}" "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.11.*/bin/python \
           /usr/bin/python3.11 "$(command -v python3.11 2>/dev/null || true)"; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 11)' >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

PY=$(find_python) || { echo "peers_env: no Python 3.11 found; set NEURO_PC_PEERS_PYTHON" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q "torch==2.13.0"          # the CPU wheel (see above)
"$venv/bin/python" -m pip install -q jax pcx
"$venv/bin/python" -m pip install -q -e ".[dev]"
"$venv/bin/python" - <<'PY'
import importlib
for name in ("torch", "jax", "pcx", "neuro_pc"):
    mod = importlib.import_module(name)
    print(f"{name:9} {getattr(mod, '__version__', '?')}")
PY
