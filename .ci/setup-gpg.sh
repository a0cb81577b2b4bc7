#!/usr/bin/env bash
# Installs GnuPG, the independent OpenPGP implementation that xmpp-e2ee's OX tests (tests/ox_gpg.rs)
# check our OpenPGP messages against. The tests run gpg with a temporary GNUPGHOME only. Idempotent;
# exits non-zero (saying why) on failure.
set -euo pipefail
if command -v gpg >/dev/null 2>&1; then
    gpg --version | head -1
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-gpg: gpg is missing and there is no apt-get (install GnuPG 2.2 or later)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gnupg >/dev/null
gpg --version | head -1
