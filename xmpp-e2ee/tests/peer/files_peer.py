#!/usr/bin/env python3
"""Independent aesgcm:// (XEP-0454) peer for xmpp-e2ee's interop test, on pyca/cryptography.

  files_peer.py encrypt LOCATION IV_LEN IN OUT   -> prints aesgcm://LOCATION#<iv hex><key hex>, writes ciphertext||tag
  files_peer.py decrypt AESGCM_URL IN OUT        -> parses the URL itself, verifies the tag, writes plaintext
Exit status 2 with "TAG MISMATCH" on stderr when the tag does not verify.
"""
import os
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


def parse(url):
    if not url.lower().startswith("aesgcm://"):
        raise SystemExit("not an aesgcm URL")
    frag = url.split("#", 1)[1]
    if len(frag) == 88:
        iv_len = 12
    elif len(frag) == 96:
        iv_len = 16
    else:
        raise SystemExit(f"bad fragment length {len(frag)}")
    raw = bytes.fromhex(frag)
    return raw[:iv_len], raw[iv_len:]


def main():
    cmd = sys.argv[1]
    if cmd == "encrypt":
        location, iv_len, src, dst = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
        key = AESGCM.generate_key(bit_length=256)
        iv = os.urandom(iv_len)
        with open(src, "rb") as f:
            data = f.read()
        with open(dst, "wb") as f:
            f.write(AESGCM(key).encrypt(iv, data, None))
        print(f"aesgcm://{location}#{iv.hex()}{key.hex()}")
    elif cmd == "decrypt":
        url, src, dst = sys.argv[2], sys.argv[3], sys.argv[4]
        iv, key = parse(url)
        with open(src, "rb") as f:
            data = f.read()
        try:
            plain = AESGCM(key).decrypt(iv, data, None)
        except InvalidTag:
            print("TAG MISMATCH", file=sys.stderr)
            sys.exit(2)
        with open(dst, "wb") as f:
            f.write(plain)
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
