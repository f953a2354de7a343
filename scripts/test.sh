#!/usr/bin/env bash
# The test command of the README: installs what the tests need, then runs every check.
# Works on a fresh Debian machine as root (or with sudo); never skips a test because a
# tool is missing: it installs the tool or fails.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# From Debian's packages: ffprobe (ffmpeg) checks the emulator's videos with an
# independent decoder and reads the joined MP4 of `shotlist export`; Chromium opens the
# contact sheet headless; redis-server coordinates several renders of one account (the
# tests start their own on loopback, and stop it).
APT_NEEDED=()
command -v ffprobe >/dev/null 2>&1 || APT_NEEDED+=(ffmpeg)
command -v chromium >/dev/null 2>&1 || APT_NEEDED+=(chromium)
command -v redis-server >/dev/null 2>&1 || APT_NEEDED+=(redis-server)
if [ ${#APT_NEEDED[@]} -gt 0 ]; then
  echo "==> installing ${APT_NEEDED[*]} from Debian's packages"
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${APT_NEEDED[@]}" >/dev/null
fi
export SHOTLIST_TEST_CHROMIUM=chromium
export SHOTLIST_TEST_REDIS="$(command -v redis-server)"
# Debian starts the packaged server; the tests start their own on free ports.
if command -v service >/dev/null 2>&1; then need_root service redis-server stop >/dev/null 2>&1 || true; fi

# The official OpenAI, Replicate, fal and OpenRouter Python clients must work unchanged
# against the emulator; OpenTimelineIO (the reference implementation) reads the
# timelines `shotlist export --otio` writes.
PY=${PYTHON:-python3}
if ! "$PY" -c 'import openai, replicate, fal_client, openrouter, opentimelineio' >/dev/null 2>&1; then
  echo "==> installing the openai, replicate, fal-client, openrouter and opentimelineio Python packages from PyPI"
  "$PY" -m pip install --quiet --disable-pip-version-check 'openai>=2.3' 'replicate>=1,<2' 'fal-client>=1' 'openrouter>=1' 'opentimelineio>=0.17'
fi
export SHOTLIST_TEST_PYTHON="$PY"

# Real object stores for the shared cache's tests, started on loopback by the tests
# themselves (one per test, on a free port): moto's S3 server (PyPI) and Azurite's Blob
# service (npm, kept under target/ between runs).
if ! "$PY" -c 'import moto, flask, flask_cors' >/dev/null 2>&1; then
  echo "==> installing moto's S3 server (moto[server]) from PyPI"
  "$PY" -m pip install --quiet --disable-pip-version-check 'moto[server]>=5.1'
fi
export SHOTLIST_TEST_MOTO="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/moto_server"
AZURITE_DIR=target/test-tools/azurite
if ! "$AZURITE_DIR/node_modules/.bin/azurite-blob" --version >/dev/null 2>&1; then
  echo "==> installing Azurite (azurite) from the npm registry into $AZURITE_DIR"
  mkdir -p "$AZURITE_DIR"
  npm install --prefix "$AZURITE_DIR" --no-audit --no-fund --loglevel=error 'azurite@^3.35' >/dev/null
fi
export SHOTLIST_TEST_AZURITE="$PWD/$AZURITE_DIR/node_modules/.bin/azurite-blob"

# A real gateway: the LiteLLM proxy, in a virtual environment of its own (its pinned
# dependencies must not meet the clients above), kept under target/ between runs.
LITELLM_VENV=target/litellm-venv
if ! "$LITELLM_VENV/bin/litellm" --version >/dev/null 2>&1; then
  echo "==> installing the LiteLLM proxy (litellm[proxy]) from PyPI into $LITELLM_VENV"
  rm -rf "$LITELLM_VENV"
  mkdir -p target
  "$PY" -m venv "$LITELLM_VENV"
  "$LITELLM_VENV/bin/pip" install --quiet --disable-pip-version-check 'litellm[proxy]>=1.80'
fi
export SHOTLIST_TEST_LITELLM="$PWD/$LITELLM_VENV/bin/litellm"
export SHOTLIST_REQUIRE_TOOLS=1

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# One check without default features: no emulator and no H.264 (the emulator's own
# no-H.264 build is `cargo check -p shotlist-emulator --no-default-features`); the whole
# run stays well under CI's 30 minutes on 2 cores.
echo "==> cargo check: without the emulator and the H.264 encoder"
cargo check --no-default-features --quiet
echo "==> cargo test --workspace"
cargo test --workspace --all-targets
