#!/usr/bin/env python3
"""An independent XEP-0047 (In-Band Bytestreams) peer for xmpp-jingle's tests, on slixmpp's xep_0047.

Prints JSON lines on stdout:
  {"event": "ready"}                                   logged in, ready to receive
  {"event": "received", "bytes": N, "sha256": HEX}     receive mode: a stream was read to its close
  {"event": "sent", "bytes": N, "sha256": HEX}         send mode: the stream was written and closed
  {"event": "done", "ok": BOOL, "reason": TEXT}        always last

Modes:
  --receive                  accept one stream from anyone, read it until <close/>
  --send N --to JID --sid S  open stream S to the full JID, send N pseudo-random bytes, close it
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


class IbbPeer(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(
            args.jid,
            args.password,
            plugin_config={
                "feature_mechanisms": {"unencrypted_plain": True, "unencrypted_scram": True},
                "xep_0047": {"max_block_size": args.max_block_size, "auto_accept": True},
            },
        )
        self.args = args
        self.enable_direct_tls = False
        self.enable_starttls = False
        self.enable_plaintext = True
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0047")
        self.finished = asyncio.Event()
        self.ok = False
        self.reason = "timeout"
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("ibb_stream_start", self.on_stream_start)
        self.add_event_handler("failed_auth", lambda _e: self.finish(False, "authentication failed"))

    def finish(self, ok, reason):
        if not self.finished.is_set():
            self.ok = ok
            self.reason = reason
            self.finished.set()

    async def on_session_start(self, _event):
        self.send_presence()
        emit(event="ready")
        if self.args.send is not None:
            try:
                await self.send_stream()
            except Exception as e:  # report, never hang
                self.finish(False, f"send failed: {e!r}")

    async def send_stream(self):
        data = os.urandom(self.args.send)
        stream = await self["xep_0047"].open_stream(
            slixmpp.JID(self.args.to), block_size=self.args.block_size, sid=self.args.sid
        )
        await stream.sendall(data)
        await stream.close()
        emit(event="sent", bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        self.finish(True, "sent")

    async def on_stream_start(self, stream):
        if self.args.send is not None:
            return
        try:
            data = await stream.gather(timeout=self.args.timeout)
        except Exception as e:
            self.finish(False, f"receive failed: {e!r}")
            return
        emit(event="received", bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        self.finish(True, "received")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Independent XEP-0047 peer (slixmpp)")
    p.add_argument("--jid", required=True, help="full JID to log in with")
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--receive", action="store_true")
    p.add_argument("--send", type=int, metavar="N")
    p.add_argument("--to", help="full JID to send to")
    p.add_argument("--sid", help="bytestream id to open")
    p.add_argument("--block-size", type=int, default=4096)
    p.add_argument("--max-block-size", type=int, default=8192, help="largest block size accepted")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if args.receive == (args.send is not None):
        p.error("give exactly one of --receive or --send N")
    if args.send is not None and not (args.to and args.sid):
        p.error("--send needs --to and --sid")
    return args


async def run(args):
    client = IbbPeer(args)
    client.connect(args.host, args.port)
    try:
        await asyncio.wait_for(client.finished.wait(), args.timeout)
    except asyncio.TimeoutError:
        client.finish(False, f"timeout after {args.timeout}s")
    try:
        await asyncio.wait_for(client.disconnect(wait=2.0), 5)
    except Exception:
        pass
    emit(event="done", ok=client.ok, reason=client.reason)
    return 0 if client.ok else 1


def main():
    args = parse_args(sys.argv[1:])
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
