#!/usr/bin/env bash
# Installs the XMPP servers the integration tests start (Debian 12 packages) when they are
# missing, without leaving system instances running: the tests start their own servers on
# free loopback ports (crate xmpp-testkit) and never use the system ones.
#
# Needs root or passwordless sudo when something is missing. Safe to run repeatedly.
set -euo pipefail

PACKAGES=(prosody prosody-modules lua-dbi-sqlite3 ejabberd)
POLICY_RC=/usr/sbin/policy-rc.d

log() { printf 'install-servers: %s\n' "$*"; }

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    log "already installed: ${PACKAGES[*]}"
else
    if [ "$(id -u)" -eq 0 ]; then
        as_root() { env DEBIAN_FRONTEND=noninteractive "$@"; }
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root() { sudo -n env DEBIAN_FRONTEND=noninteractive "$@"; }
    else
        log "missing ${missing[*]}; run this script as root (or with passwordless sudo)" >&2
        exit 1
    fi

    # Keep the packages' post-install scripts from starting system services (they would
    # hold ports 5222/5269/5280 and start epmd). invoke-rc.d and deb-systemd-invoke honour
    # policy-rc.d; exit status 101 means "action forbidden".
    created_policy=0
    if [ ! -e "$POLICY_RC" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" >/dev/null
        as_root chmod 755 "$POLICY_RC"
        created_policy=1
    fi
    remove_policy() {
        if [ "$created_policy" -eq 1 ]; then
            as_root rm -f "$POLICY_RC"
        fi
    }
    trap remove_policy EXIT

    log "installing ${missing[*]}"
    apt_get() { as_root apt-get -o DPkg::Lock::Timeout=600 "$@"; }
    apt_get update
    lean=()
    for pkg in "${missing[@]}"; do
        [ "$pkg" = ejabberd ] || lean+=("$pkg")
    done
    # Prosody's Recommends (lua-unbound, readline, event) are not needed.
    if [ "${#lean[@]}" -gt 0 ]; then
        apt_get install -y --no-install-recommends "${lean[@]}"
    fi
    # ejabberd is installed with its dependencies' Recommends (libsctp1, erlang-tools, ...):
    # that is the combination the test kit was verified with.
    if [[ " ${missing[*]} " == *" ejabberd "* ]]; then
        apt_get install -y ejabberd
    fi

    # Stop whatever a post-install script started anyway (e.g. a policy-rc.d that allowed it).
    for svc in prosody ejabberd; do
        if [[ " ${missing[*]} " == *" $svc "* ]] && command -v service >/dev/null 2>&1; then
            as_root service "$svc" stop >/dev/null 2>&1 || true
        fi
    done
fi

# Check the tools the test kit runs.
for tool in prosody prosodyctl ejabberdctl; do
    if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/usr/bin/$tool" ]; then
        log "$tool not found after installing" >&2
        exit 1
    fi
done
dpkg-query -W -f='install-servers: ${Package} ${Version}\n' "${PACKAGES[@]}"
