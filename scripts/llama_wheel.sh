#!/usr/bin/env bash
# The llama.cpp server the openai-backend tests start (tests/llm/llama_server.py).
#
#   scripts/llama_wheel.sh          print the path of a llama-cpp-python wheel, building it once
#   scripts/llama_wheel.sh venv     also install it with its [server] extras into its own venv
#                                   and print that venv's python
#
# Building takes about 8 minutes on 2 cores, so the wheel is cached in
# ${SELFALIGN_CACHE:-~/.cache/selfalign}/wheels and reused. GGML_NATIVE=OFF: a native
# build tunes for the build machine's CPU and crashed (illegal instruction) on others.
# The server goes into a venv of its own (${cache}/llama-venv) so that its pins
# (fastapi, pydantic, numpy) never move the project's.
# Progress goes to stderr; stdout holds only the path.
set -euo pipefail

VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
PYTHON="${PYTHON:-python3}"
CACHE="${SELFALIGN_CACHE:-$HOME/.cache/selfalign}"
WHEELS="$CACHE/wheels"
VENV="${LLAMA_VENV:-$CACHE/llama-venv}"

log() { echo "llama_wheel: $*" >&2; }

wheel_path() {
  compgen -G "$WHEELS/llama_cpp_python-$VERSION-*.whl" | head -n 1 || true
}

ensure_compiler() {
  if command -v c++ >/dev/null 2>&1 && command -v cc >/dev/null 2>&1; then
    return
  fi
  if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    log "building llama-cpp-python needs a C and C++ compiler: install gcc and g++"
    exit 1
  fi
  log "installing gcc and g++ from Debian's packages"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc g++ >/dev/null
}

build_wheel() {
  local found
  found="$(wheel_path)"
  if [[ -n "$found" ]]; then
    echo "$found"
    return
  fi
  mkdir -p "$WHEELS"
  BUILD_TMP="$(mktemp -d "$WHEELS/.build-XXXXXX")"
  trap 'rm -rf "$BUILD_TMP"' EXIT
  local tmp="$BUILD_TMP"
  ensure_compiler
  log "building llama-cpp-python $VERSION (about 8 minutes on 2 cores, once)"
  # pip fetches cmake and ninja from PyPI when they are absent; the compiler it cannot.
  CMAKE_ARGS="-DGGML_NATIVE=OFF ${CMAKE_ARGS:-}" \
    "$PYTHON" -m pip wheel --no-deps --no-cache-dir -w "$tmp" "llama-cpp-python==$VERSION" >&2
  local built
  built="$(compgen -G "$tmp/llama_cpp_python-$VERSION-*.whl" | head -n 1 || true)"
  if [[ -z "$built" ]]; then
    log "the build produced no wheel; install cmake and a C++ compiler (apt-get install cmake g++)"
    exit 1
  fi
  # Moved into place last: a killed build leaves no half wheel behind.
  mv "$built" "$WHEELS/"
  echo "$WHEELS/$(basename "$built")"
}

install_venv() {
  local wheel="$1"
  local marker
  marker="$VENV/.installed-$(basename "$wheel")"
  if [[ -f "$marker" && -x "$VENV/bin/python" ]]; then
    echo "$VENV/bin/python"
    return
  fi
  log "installing $(basename "$wheel") and its server extras into $VENV"
  test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "${wheel}[server]" >&2
  "$VENV/bin/python" -c "import llama_cpp.server" >&2
  touch "$marker"
  echo "$VENV/bin/python"
}

case "${1:-wheel}" in
  wheel) build_wheel ;;
  venv) install_venv "$(build_wheel)" ;;
  *)
    log "unknown command ${1}; use: $0 [wheel|venv]"
    exit 2
    ;;
esac
