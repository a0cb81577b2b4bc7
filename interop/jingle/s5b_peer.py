#!/usr/bin/env python3
"""An independent XEP-0065 (SOCKS5 Bytestreams) peer: slixmpp's xep_0065 plugin on a real server.

The xmpp-jingle tests (tests/socks5_prosody.rs) run it against the SDK in both directions:

  receive: s5b_peer.py --jid py@localhost --password pw --host 127.0.0.1 --port N receive
           accepts every bytestream offer (slixmpp connects to the offered streamhosts itself),
           hashes the bytes until the stream closes, then reports them.
  send:    s5b_peer.py ... send --to JID --size BYTES
           discovers the server's SOCKS5 proxy (slixmpp only offers proxies), offers it to JID,
           activates the stream, and sends BYTES random bytes.

Output: JSON lines on stdout:
  {"event": "ready", "jid"}                       logged in (receive: waiting for an offer)
  {"event": "stream", "sid"?}                     a bytestream is established
  {"event": "received", "bytes", "sha256"}        receive: the stream closed after this much data
  {"event": "sent", "bytes", "sha256"}            send: everything was written and the socket closed
  {"event": "done", "ok", "reason"}               the last line
Exit status 0 on success, 1 on failure or timeout, 2 on bad arguments.
"""

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys

import slixmpp


def emit(**fields):
    print(json.dumps(fields), flush=True)


class Peer(slixmpp.ClientXMPP):
    def __init__(self, args):
        # Loopback test servers offer no TLS: allow PLAIN/SCRAM in the clear.
        super().__init__(
            args.jid,
            args.password,
            plugin_config={
                "feature_mechanisms": {"unencrypted_plain": True, "unencrypted_scram": True}
            },
        )
        self.args = args
        self.enable_direct_tls = False
        self.enable_starttls = False
        self.enable_plaintext = True
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0065", {"auto_accept": True})
        self.result = asyncio.get_event_loop().create_future()
        self.hash = hashlib.sha256()
        self.count = 0
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("socks5_stream", self.on_stream)
        self.add_event_handler("socks5_data", self.on_data)
        self.add_event_handler("socks5_closed", self.on_closed)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.receiving = False

    def finish(self, ok, reason):
        if not self.result.done():
            self.result.set_result((ok, reason))

    async def on_start(self, _event):
        self.send_presence()
        emit(event="ready", jid=str(self.boundjid))
        if self.args.mode == "send":
            asyncio.ensure_future(self.send_stream())

    async def send_stream(self):
        try:
            proxies = await self.plugin["xep_0065"].discover_proxies(timeout=20)
            if not proxies:
                self.finish(False, "no SOCKS5 proxy found")
                return
            sock = await self.plugin["xep_0065"].handshake(self.args.to, timeout=30)
            if sock is None:
                self.finish(False, "handshake failed")
                return
            emit(event="stream")
            data = os.urandom(self.args.size)
            digest = hashlib.sha256(data).hexdigest()
            view = memoryview(data)
            for start in range(0, len(data), 65536):
                await sock.write(bytes(view[start:start + 65536]))
            closed = asyncio.get_event_loop().create_future()
            self.closed_future = closed
            # close() flushes what is buffered before closing.
            sock.transport.close()
            await asyncio.wait_for(closed, 30)
            emit(event="sent", bytes=len(data), sha256=digest)
            self.finish(True, "sent")
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.finish(False, f"send failed: {e!r}")

    def on_stream(self, _conn):
        self.receiving = True
        emit(event="stream")

    def on_data(self, data):
        self.hash.update(data)
        self.count += len(data)

    def on_closed(self, _exc):
        fut = getattr(self, "closed_future", None)
        if fut is not None and not fut.done():
            fut.set_result(None)
        if self.args.mode == "receive" and self.receiving:
            emit(event="received", bytes=self.count, sha256=self.hash.hexdigest())
            self.finish(True, "received")

    async def on_disconnected(self, _event):
        self.finish(False, "disconnected")


async def run(args):
    client = Peer(args)
    client.connect(args.host, args.port)
    try:
        ok, reason = await asyncio.wait_for(client.result, args.timeout)
    except asyncio.TimeoutError:
        ok, reason = False, "timeout"
    emit(event="done", ok=ok, reason=reason)
    try:
        await asyncio.wait_for(client.disconnect(wait=2.0), 5)
    except Exception:  # noqa: BLE001 - exiting anyway
        pass
    return 0 if ok else 1


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--verbose", action="store_true")
    sub = p.add_subparsers(dest="mode", required=True)
    sub.add_parser("receive")
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--size", type=int, required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR, stream=sys.stderr)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
