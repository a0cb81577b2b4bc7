#!/usr/bin/env bash
# Creates target/omemo-client-venv: the Python venv of the independent OMEMO client
# (interop/omemo_client/omemo_client.py, slixmpp + python-omemo) that the examples' omemo_cli test
# talks to. Idempotent: an existing venv is kept when it was built from the same requirements.txt and
# still imports the packages. Exits non-zero (saying why) on failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="$PWD/target/omemo-client-venv"
reqs="$PWD/interop/omemo_client/requirements.txt"
marker="$venv/.requirements.sha256"
want="$(sha256sum "$reqs" | cut -d' ' -f1)"
check='import slixmpp, omemo, twomemo, oldmemo, twomemo.etree, oldmemo.etree'

if [ -x "$venv/bin/python" ] && [ "$(cat "$marker" 2>/dev/null || true)" = "$want" ] \
    && "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "omemo client venv up to date: $venv"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "setup-omemo-client: python3 is missing (Debian: apt-get install python3 python3-venv)" >&2
    exit 1
fi
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; } || {
            echo "setup-omemo-client: installing python3-venv failed" >&2
            exit 1
        }
    else
        echo "setup-omemo-client: python3 has no venv/ensurepip (Debian: apt-get install python3-venv)" >&2
        exit 1
    fi
fi

rm -rf "$venv"
mkdir -p "$PWD/target"
python3 -m venv "$venv" || { echo "setup-omemo-client: python3 -m venv $venv failed" >&2; exit 1; }
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs" || {
    echo "setup-omemo-client: pip install -r $reqs failed" >&2
    exit 1
}
"$venv/bin/python" -c "$check" || { echo "setup-omemo-client: the venv does not import $check" >&2; exit 1; }
echo "$want" >"$marker"
"$venv/bin/python" -m pip freeze --disable-pip-version-check | grep -iE '^(slixmpp|omemo|twomemo|oldmemo)==' || true
echo "omemo client venv ready: $venv"
