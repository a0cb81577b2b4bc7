#!/usr/bin/env python3
"""Times python-omemo 2.1 (twomemo, oldmemo) doing what benches/benches/omemo_ratchet.rs times for our
core: one message of 200 bytes from Alice to Bob on an established session, i.e. payload encryption,
ratchet encryption of the key material, serialisation, parsing, ratchet decryption, payload decryption.

The backends are used directly (no SessionManager, no XML, no trust logic), with in-memory storage, so
the figure is python-omemo's cryptographic core. Run with the venv of xmpp-e2ee/tests/peer/requirements.txt:

    target/omemo-peer-venv/bin/python benches/python/omemo_ratchet.py [ITERATIONS] [ROUNDS]

Prints one JSON line: {"twomemo_us": best microseconds per message, "oldmemo_us": ..., ...}.
"""

import asyncio
import json
import sys
import time

import omemo
import oldmemo
import twomemo

MESSAGE = bytes(range(200))


class MemoryStorage(omemo.Storage):
    def __init__(self):
        super().__init__()
        self.data = {}

    async def _load(self, key):
        if key in self.data:
            return omemo.Just(self.data[key])
        return omemo.Nothing()

    async def _store(self, key, value):
        self.data[key] = value

    async def _delete(self, key):
        self.data.pop(key, None)


async def pair(module, backend_class):
    """Alice and Bob with confirmed sessions: a key exchange, a reply, a few messages each way."""
    alice = backend_class(MemoryStorage())
    bob = backend_class(MemoryStorage())
    await bob.generate_pre_keys(5)
    bundle = await bob.get_bundle("bob@localhost", 2)
    _, km = await alice.encrypt_plaintext(b"hello")
    a, ekm = await alice.build_session_active("bob@localhost", 2, bundle, km)
    b, km2 = await bob.build_session_passive("alice@localhost", 1, a.key_exchange, ekm)
    assert km2.key == km.key
    for _ in range(3):
        for (x, y, bx, by) in ((b, a, bob, alice), (a, b, alice, bob)):
            content, km = await bx.encrypt_plaintext(MESSAGE)
            ekm = await bx.encrypt_key_material(x, km)
            km2 = await by.decrypt_key_material(y, ekm)
            assert await by.decrypt_plaintext(content, km2) == MESSAGE
    return alice, a, bob, b, module.EncryptedKeyMaterialImpl


async def one_message(alice, a, bob, b, ekm_class):
    content, km = await alice.encrypt_plaintext(MESSAGE)
    wire = (await alice.encrypt_key_material(a, km)).serialize()
    ekm = ekm_class.parse(wire, "alice@localhost", 1)
    km2 = await bob.decrypt_key_material(b, ekm)
    return await bob.decrypt_plaintext(content, km2)


async def best_us(module, backend_class, iterations, rounds):
    state = await pair(module, backend_class)
    assert await one_message(*state) == MESSAGE
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iterations):
            await one_message(*state)
        best = min(best, (time.perf_counter() - start) / iterations)
    return best * 1e6


async def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    out = {"iterations": iterations, "rounds": rounds, "message_bytes": len(MESSAGE)}
    out["twomemo_us"] = await best_us(twomemo.twomemo, twomemo.Twomemo, iterations, rounds)
    out["oldmemo_us"] = await best_us(oldmemo.oldmemo, oldmemo.Oldmemo, iterations, rounds)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
