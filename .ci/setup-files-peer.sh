#!/usr/bin/env bash
# Creates target/files-peer-venv: a Python venv with the `cryptography` package, the independent
# AES-GCM implementation that xmpp-e2ee's encrypted-file interop test (tests/files_python.rs, driving
# tests/peer/files_peer.py) checks our aesgcm:// files against. Idempotent: an existing venv with the
# pinned version is kept. Exits non-zero (saying why) on failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$PWD/target/files-peer-venv"
pin="cryptography==50.0.2"
check="import cryptography, sys; sys.exit(0 if cryptography.__version__ == '${pin#*==}' else 1)"

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "files peer venv up to date: $venv"
    exit 0
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "setup-files-peer: python3 is missing (Debian: apt-get install python3 python3-venv)" >&2
    exit 1
fi
rm -rf "$venv"
python3 -m venv "$venv" || {
    echo "setup-files-peer: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
    exit 1
}
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pin" || {
    echo "setup-files-peer: pip install $pin failed" >&2
    exit 1
}
"$venv/bin/python" -c "$check" || { echo "setup-files-peer: the venv does not have $pin" >&2; exit 1; }
echo "files peer venv ready: $venv ($pin)"
