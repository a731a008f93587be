#!/usr/bin/env bash
# Installs the js-ipfs test node used by tests/it/ipfs_node.rs (idempotent; safe to re-run).
# Needs Node.js >= 18 with npm (installed with apt-get if missing) and access to the npm
# registry. CI then runs the ignored tests too (--include-ignored), so a missing node fails.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq nodejs npm curl
fi
command -v curl >/dev/null 2>&1 || { echo "ipfs-node-setup: curl is required by ipfs-node.sh" >&2; exit 1; }
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -lt 18 ]; then
  echo "ipfs-node-setup: Node.js $(node --version) is too old; js-ipfs 0.66.1 needs >= 18 (tested on 20)" >&2
  exit 1
fi

bash "$ROOT/tests/ipfs-node/ipfs-node.sh" install
echo "ipfs-node-setup: js-ipfs test node installed in tests/ipfs-node/node_modules (node $(node --version))"
