#!/usr/bin/env python3
"""An independent XMPP OMEMO client (slixmpp + python-omemo), the peer of the examples' OMEMO tests.

It speaks both OMEMO namespaces on a real server: OMEMO:2 (`urn:xmpp:omemo:2`, payload = an XEP-0420
`<envelope/>`) and legacy OMEMO (`eu.siacs.conversations.axolotl`, payload = the body text). The XMPP
side is slixmpp (login, presence, messages, raw XEP-0060 IQs for PEP); the OMEMO side is python-omemo's
`SessionManager` with the twomemo and oldmemo backends, driven one operation at a time. Every device is
trusted (blind trust): this is a test peer, not a messenger.

Modes:

  send:    omemo_client.py --jid py@localhost --password pw --host 127.0.0.1 --port N \\
               --to bot@localhost --ns omemo2|legacy --send TEXT [--expect-reply-prefix "echo: "]
           publishes its device, sends TEXT encrypted to --to, and (with --expect-reply-prefix) waits for
           an encrypted reply from --to in the same namespace whose body starts with the prefix.
  listen:  omemo_client.py ... --listen N [--echo PREFIX]
           publishes its device, prints {"event": "ready", ...}, then waits for N encrypted messages with
           a body (optionally answering each with PREFIX + body, encrypted in the namespace it came in).

Output: JSON lines on stdout, one per event:
  {"event": "ready", "jid", "device_id"}            device published in both namespaces
  {"event": "sent", "to", "ns", "body"}             an encrypted message went out
  {"event": "message", "from", "ns", "body", "device_id", "plain_body", ...}   a decrypted message
        ("plain_body": the stanza also had a plaintext <body>; OMEMO:2 adds
        "envelope": {"from", "to", "time", "rpad_len"})
  {"event": "empty", "from", "ns", "device_id"}     a key-transport (empty) OMEMO message
  {"event": "error", "error", ...}                  anything that went wrong (decryption, stanza errors)
  {"event": "done", "ok": bool, "reason"}           the last line
Exit status: 0 when the expected reply / the N messages arrived, 1 otherwise (timeout, errors), 2 on
bad arguments. Diagnostics go to stderr (--verbose for the libraries' debug logs).

State (identity, sessions) lives in the JSON file given by --state (kept between runs: the same device),
or in memory (a new device each run).
"""

import argparse
import asyncio
import datetime
import json
import logging
import os
import secrets
import string
import sys
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import omemo
import oldmemo
import oldmemo.etree
import slixmpp
import twomemo
import twomemo.etree
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import CoroutineCallback as Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS2 = twomemo.twomemo.NAMESPACE
NSL = oldmemo.oldmemo.NAMESPACE
NS_NAMES = {NS2: "omemo2", NSL: "legacy"}
NS_BY_NAME = {"omemo2": NS2, "legacy": NSL}

PUBSUB = "http://jabber.org/protocol/pubsub"
PUBSUB_OWNER = "http://jabber.org/protocol/pubsub#owner"
PUBSUB_ERRORS = "http://jabber.org/protocol/pubsub#errors"
XDATA = "jabber:x:data"
SCE = "urn:xmpp:sce:1"
CLIENT = "jabber:client"
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

NODE2_DEVICES = "urn:xmpp:omemo:2:devices"
NODE2_BUNDLES = "urn:xmpp:omemo:2:bundles"
NODEL_DEVICES = "eu.siacs.conversations.axolotl.devicelist"
NODEL_BUNDLES = "eu.siacs.conversations.axolotl.bundles:"

# A decrypted envelope larger than this is rejected unparsed (the test messages are tiny).
MAX_ENVELOPE = 256 * 1024
IQ_TIMEOUT = 20

LOG = logging.getLogger("omemo_client")


def emit(**fields):
    """One JSON line on stdout."""
    print(json.dumps(fields, ensure_ascii=False), flush=True)


# --------------------------------------------------------------------------------------------------
# python-omemo storage: a JSON file, or memory.


class JsonStorage(omemo.Storage):
    def __init__(self, path=None):
        super().__init__()
        self.path = path
        self.data = {}
        if path and os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.data = json.load(f)

    def _flush(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
        os.replace(tmp, self.path)

    async def _load(self, key):
        if key in self.data:
            return omemo.Just(self.data[key])
        return omemo.Nothing()

    async def _store(self, key, value):
        self.data[key] = value
        self._flush()

    async def _delete(self, key):
        self.data.pop(key, None)
        self._flush()


# --------------------------------------------------------------------------------------------------
# PEP over raw XEP-0060 IQs.


def error_condition(err):
    """The defined condition (and pubsub-specific condition) of an IqError."""
    cond = err.iq["error"]["condition"]
    app = None
    error_el = err.iq.xml.find(f"{{{CLIENT}}}error")
    if error_el is not None:
        for child in error_el:
            if child.tag.startswith(f"{{{PUBSUB_ERRORS}}}"):
                app = child.tag.split("}", 1)[1]
    return cond, app


def error_summary(err):
    """A short description of an IqError / IqTimeout (not the whole stanza, which holds our keys)."""
    if isinstance(err, IqTimeout):
        return "timeout"
    if not isinstance(err, IqError):
        return f"{type(err).__name__}: {err}"
    cond, app = error_condition(err)
    text = err.iq["error"]["text"]
    return f"{err.iq['error']['type']}/{cond}" + (f" ({app})" if app else "") + (f": {text}" if text else "")


def config_form(form_type, fields):
    x = ET.Element(f"{{{XDATA}}}x", {"type": "submit"})
    ft = ET.SubElement(x, f"{{{XDATA}}}field", {"var": "FORM_TYPE", "type": "hidden"})
    ET.SubElement(ft, f"{{{XDATA}}}value").text = form_type
    for var, value in fields.items():
        f = ET.SubElement(x, f"{{{XDATA}}}field", {"var": var})
        ET.SubElement(f, f"{{{XDATA}}}value").text = value
    return x


class Pep:
    """PEP publish/fetch for one account, through slixmpp IQs."""

    def __init__(self, xmpp):
        self.xmpp = xmpp

    async def _send(self, iq):
        return await iq.send(timeout=IQ_TIMEOUT)

    async def publish(self, node, item_id, payload, many_items=False):
        """Publishes `payload` as item `item_id` of our PEP `node` with access_model=open (and
        max_items=max when `many_items`, one item per device). Servers differ: ejabberd refuses
        pubsub#max_items in publish-options (then it is set by node configuration, best effort);
        a node existing with another configuration is reconfigured and the item published again."""
        open_access = {"pubsub#access_model": "open"}
        attempts = [dict(open_access, **{"pubsub#max_items": "max"}), open_access] if many_items else [open_access]

        def build(options):
            iq = self.xmpp.make_iq_set()
            pubsub = ET.SubElement(iq.xml, f"{{{PUBSUB}}}pubsub")
            publish = ET.SubElement(pubsub, f"{{{PUBSUB}}}publish", {"node": node})
            item = ET.SubElement(publish, f"{{{PUBSUB}}}item", {"id": item_id})
            item.append(payload)
            if options:
                po = ET.SubElement(pubsub, f"{{{PUBSUB}}}publish-options")
                po.append(config_form(f"{PUBSUB}#publish-options", options))
            return iq

        published_with = None
        for options in attempts:
            try:
                await self._send(build(options))
                published_with = options
                break
            except IqError as e:
                LOG.info("publish to %s with %s refused: %s", node, options, error_summary(e))
        if published_with is None:
            # The node exists with other settings: reconfigure it, then publish plainly.
            await self.configure(node, open_access)
            await self._send(build(None))
        if many_items and published_with is not attempts[0]:
            for value in ("max", "1000", "100"):
                try:
                    await self.configure(node, {"pubsub#max_items": value})
                    break
                except IqError as e:
                    LOG.info("max_items=%s on %s refused: %s", value, node, error_summary(e))

    async def configure(self, node, options):
        iq = self.xmpp.make_iq_set()
        pubsub = ET.SubElement(iq.xml, f"{{{PUBSUB_OWNER}}}pubsub")
        configure = ET.SubElement(pubsub, f"{{{PUBSUB_OWNER}}}configure", {"node": node})
        configure.append(config_form(f"{PUBSUB}#node_config", options))
        await self._send(iq)

    async def items(self, jid, node, item_id=None, max_items=None):
        """The items of `jid`'s PEP `node` as [(id, payload element)]; [] when the node does not
        exist."""
        iq = self.xmpp.make_iq_get(ito=jid)
        pubsub = ET.SubElement(iq.xml, f"{{{PUBSUB}}}pubsub")
        attrs = {"node": node}
        if max_items is not None:
            attrs["max_items"] = str(max_items)
        items = ET.SubElement(pubsub, f"{{{PUBSUB}}}items", attrs)
        if item_id is not None:
            ET.SubElement(items, f"{{{PUBSUB}}}item", {"id": item_id})
        try:
            result = await self._send(iq)
        except IqError as e:
            cond, _ = error_condition(e)
            if cond == "item-not-found":
                return []
            raise
        out = []
        for item in result.xml.iterfind(f"{{{PUBSUB}}}pubsub/{{{PUBSUB}}}items/{{{PUBSUB}}}item"):
            children = list(item)
            if children:
                out.append((item.get("id"), children[0]))
        return out

    async def retract(self, node, item_id):
        iq = self.xmpp.make_iq_set()
        pubsub = ET.SubElement(iq.xml, f"{{{PUBSUB}}}pubsub")
        retract = ET.SubElement(pubsub, f"{{{PUBSUB}}}retract", {"node": node})
        ET.SubElement(retract, f"{{{PUBSUB}}}item", {"id": item_id})
        await self._send(iq)

    async def delete_node(self, node):
        iq = self.xmpp.make_iq_set()
        pubsub = ET.SubElement(iq.xml, f"{{{PUBSUB_OWNER}}}pubsub")
        ET.SubElement(pubsub, f"{{{PUBSUB_OWNER}}}delete", {"node": node})
        await self._send(iq)


# --------------------------------------------------------------------------------------------------
# The session manager: python-omemo's hooks implemented over the XMPP connection.

# The running client (the SessionManager hooks are static methods).
CLIENT_REF = {}


def etree_of(ns):
    return twomemo.etree if ns == NS2 else oldmemo.etree


def devices_node(ns):
    return NODE2_DEVICES if ns == NS2 else NODEL_DEVICES


class ClientSessionManager(omemo.SessionManager):
    @staticmethod
    async def _upload_bundle(bundle):
        pep = CLIENT_REF["pep"]
        ns = bundle.namespace
        try:
            if ns == NS2:
                await pep.publish(
                    NODE2_BUNDLES, str(bundle.device_id), twomemo.etree.serialize_bundle(bundle), True
                )
            else:
                await pep.publish(
                    f"{NODEL_BUNDLES}{bundle.device_id}", "current", oldmemo.etree.serialize_bundle(bundle)
                )
        except (IqError, IqTimeout) as e:
            raise omemo.BundleUploadFailed(f"{ns}: {error_summary(e)}") from e

    @staticmethod
    async def _download_bundle(namespace, bare_jid, device_id):
        pep = CLIENT_REF["pep"]
        try:
            if namespace == NS2:
                items = await pep.items(bare_jid, NODE2_BUNDLES, item_id=str(device_id))
                items = [(i, p) for i, p in items if i == str(device_id)]
            else:
                items = await pep.items(bare_jid, f"{NODEL_BUNDLES}{device_id}", max_items=1)
        except (IqError, IqTimeout) as e:
            raise omemo.BundleDownloadFailed(f"{namespace} {bare_jid}/{device_id}: {error_summary(e)}") from e
        if not items:
            raise omemo.BundleNotFound(f"{namespace}: no bundle for {bare_jid}/{device_id}")
        try:
            return etree_of(namespace).parse_bundle(items[0][1], bare_jid, device_id)
        except Exception as e:
            raise omemo.BundleDownloadFailed(f"unparsable bundle of {bare_jid}/{device_id}: {e}") from e

    @staticmethod
    async def _delete_bundle(namespace, device_id):
        pep = CLIENT_REF["pep"]
        try:
            if namespace == NS2:
                await pep.retract(NODE2_BUNDLES, str(device_id))
            else:
                await pep.delete_node(f"{NODEL_BUNDLES}{device_id}")
        except (IqError, IqTimeout) as e:
            LOG.info("deleting bundle %s/%s: %s", namespace, device_id, error_summary(e))

    @staticmethod
    async def _upload_device_list(namespace, device_list):
        pep = CLIENT_REF["pep"]
        try:
            await pep.publish(
                devices_node(namespace), "current", etree_of(namespace).serialize_device_list(device_list)
            )
        except (IqError, IqTimeout) as e:
            raise omemo.DeviceListUploadFailed(f"{namespace}: {error_summary(e)}") from e

    @staticmethod
    async def _download_device_list(namespace, bare_jid):
        pep = CLIENT_REF["pep"]
        try:
            items = await pep.items(bare_jid, devices_node(namespace))
        except (IqError, IqTimeout) as e:
            raise omemo.DeviceListDownloadFailed(f"{namespace} {bare_jid}: {error_summary(e)}") from e
        chosen = next((p for i, p in items if i == "current"), None)
        if chosen is None and len(items) == 1:
            chosen = items[0][1]
        if chosen is None:
            return {}
        try:
            return etree_of(namespace).parse_device_list(chosen)
        except Exception as e:
            raise omemo.DeviceListDownloadFailed(f"unparsable device list of {bare_jid}: {e}") from e

    async def _evaluate_custom_trust_level(self, device):
        return omemo.TrustLevel.TRUSTED

    async def _make_trust_decision(self, undecided, identifier):
        for device in undecided:
            await self.set_trust(device.bare_jid, device.identity_key, "BLIND")

    @staticmethod
    async def _send_message(message, bare_jid):
        CLIENT_REF["client"].send_encrypted(bare_jid, message)


# --------------------------------------------------------------------------------------------------
# XEP-0420 envelope (OMEMO:2 payload).


def random_rpad():
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(secrets.randbelow(200) + 1))


def build_envelope(body, own_bare, peer_bare):
    """The SCE envelope of a chat message: content/body, rpad, time, to and from affixes."""
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"<envelope xmlns='{SCE}'>"
        f"<content><body xmlns='{CLIENT}'>{escape(body)}</body></content>"
        f"<rpad>{random_rpad()}</rpad>"
        f"<time stamp={quoteattr(stamp)}/>"
        f"<to jid={quoteattr(peer_bare)}/>"
        f"<from jid={quoteattr(own_bare)}/>"
        f"</envelope>"
    ).encode("utf-8")


class EnvelopeError(Exception):
    pass


def parse_envelope(data, sender_bare, own_bare):
    """(body, affixes) of a decrypted envelope; checks the from (and to, when present) affixes."""
    if len(data) > MAX_ENVELOPE:
        raise EnvelopeError(f"envelope of {len(data)} bytes")
    text = data.decode("utf-8")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise EnvelopeError("envelope with a DTD")
    root = ET.fromstring(text)
    if root.tag != f"{{{SCE}}}envelope":
        raise EnvelopeError(f"root element {root.tag}, not an SCE envelope")
    content = root.find(f"{{{SCE}}}content")
    if content is None:
        raise EnvelopeError("envelope without <content/>")
    body_el = content.find(f"{{{CLIENT}}}body")
    rpad = root.find(f"{{{SCE}}}rpad")
    frm = root.find(f"{{{SCE}}}from")
    to = root.find(f"{{{SCE}}}to")
    time = root.find(f"{{{SCE}}}time")
    affixes = {
        "from": None if frm is None else frm.get("jid"),
        "to": None if to is None else to.get("jid"),
        "time": None if time is None else time.get("stamp"),
        "rpad_len": None if rpad is None else len(rpad.text or ""),
    }
    if rpad is None:
        raise EnvelopeError("envelope without the <rpad/> the OMEMO SCE profile requires")
    if frm is not None and frm.get("jid") != sender_bare:
        raise EnvelopeError(f"from affix {frm.get('jid')!r} is not the sender {sender_bare!r}")
    if to is not None and to.get("jid") != own_bare:
        raise EnvelopeError(f"to affix {to.get('jid')!r} is not us ({own_bare!r})")
    return (None if body_el is None else (body_el.text or "")), affixes


# --------------------------------------------------------------------------------------------------
# The client.


class OmemoClient(slixmpp.ClientXMPP):
    def __init__(self, args):
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
        self.own_bare = self.boundjid.bare
        self.sm = None
        self.lock = asyncio.Lock()
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self.ok = False
        self.reason = "timeout"
        self.received = 0
        self.failed = None
        self.add_event_handler("session_start", self.on_session_start)
        # slixmpp's "message" event needs a <body/>; OMEMO:2 messages have none.
        for ns in (NS2, NSL):
            self.register_handler(
                Callback(f"omemo {ns}", MatchXPath(f"{{{CLIENT}}}message/{{{ns}}}encrypted"), self.on_message)
            )
        self.add_event_handler("message_error", self.on_message_error)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("disconnected", self.on_disconnected)
        CLIENT_REF["client"] = self
        CLIENT_REF["pep"] = Pep(self)

    def finish(self, ok, reason):
        if not self.finished.is_set():
            self.ok = ok
            self.reason = reason
            self.finished.set()

    async def on_failed_auth(self, _event):
        self.finish(False, "authentication failed")

    async def on_disconnected(self, _event):
        self.finish(False, "disconnected")

    def send_encrypted(self, bare_jid, message, body_hint=False):
        """Sends a python-omemo Message (already encrypted) to `bare_jid`."""
        ns = message.namespace
        msg = self.make_message(mto=bare_jid, mtype="chat")
        msg.xml.append(etree_of(ns).serialize_message(message))
        if body_hint and ns == NSL:
            # Legacy clients (Conversations, Dino) add a fallback body; OMEMO:2 (SCE) must not.
            msg["body"] = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."
        ET.SubElement(msg.xml, "{urn:xmpp:eme:0}encryption", {"namespace": ns, "name": "OMEMO"})
        ET.SubElement(msg.xml, "{urn:xmpp:hints}store")
        msg.send()

    async def on_session_start(self, _event):
        try:
            self.send_presence()
            await self.get_roster()
            storage = JsonStorage(self.args.state)
            self.sm = await ClientSessionManager.create(
                backends=[twomemo.Twomemo(storage), oldmemo.Oldmemo(storage)],
                storage=storage,
                own_bare_jid=self.own_bare,
                initial_own_label=None,
                undecided_trust_level_name="BLIND",
            )
            await self.sm.after_history_sync()
            info, _ = await self.sm.get_own_device_information()
            # Make sure both device lists name us (create() publishes; re-check after the fact).
            for ns in (NS2, NSL):
                listed = await ClientSessionManager._download_device_list(ns, self.own_bare)
                if info.device_id not in listed:
                    raise RuntimeError(f"own device {info.device_id} missing from the {NS_NAMES[ns]} list")
            emit(event="ready", jid=self.own_bare, device_id=info.device_id)
            self.started.set()
            if self.args.send is not None:
                await self.send_text(self.args.to, NS_BY_NAME[self.args.ns], self.args.send)
                if self.args.expect_reply_prefix is None:
                    self.finish(True, "sent")
        except Exception as e:  # report, don't hang
            LOG.exception("startup failed")
            emit(event="error", error=f"{type(e).__name__}: {e}")
            self.finish(False, f"startup failed: {type(e).__name__}: {e}")

    async def send_text(self, to, ns, text):
        to = slixmpp.JID(to).bare
        async with self.lock:
            await self.sm.refresh_device_list(ns, to)
            plaintext = build_envelope(text, self.own_bare, to) if ns == NS2 else text.encode("utf-8")
            messages, errors = await self.sm.encrypt(
                frozenset({to}), {ns: plaintext}, backend_priority_order=[ns]
            )
            for err in errors:
                LOG.warning("encryption error: %r", err)
            message = next((m for m in messages if m.namespace == ns), None)
            if message is None:
                raise RuntimeError(f"no {NS_NAMES[ns]} message produced for {to}: {errors!r}")
            if not any(k.bare_jid == to for k, _ in message.keys):
                raise RuntimeError(f"the {NS_NAMES[ns]} message has no key for {to}: {errors!r}")
            self.send_encrypted(to, message, body_hint=True)
        emit(event="sent", to=to, ns=NS_NAMES[ns], body=text)

    async def on_message_error(self, msg):
        emit(event="error", error="message error", condition=msg["error"]["condition"],
             text=msg["error"]["text"], stanza_from=str(msg["from"]))

    async def on_message(self, msg):
        if msg["type"] == "error":
            return
        enc = None
        for ns in (NS2, NSL):
            enc = msg.xml.find(f"{{{ns}}}encrypted")
            if enc is not None:
                break
        if enc is None:
            return
        await self.started.wait()
        sender = msg["from"].bare
        name = NS_NAMES[ns]
        try:
            async with self.lock:
                if ns == NS2:
                    message = twomemo.etree.parse_message(enc, sender)
                else:
                    message = await oldmemo.etree.parse_message(enc, sender, self.own_bare, self.sm)
                plaintext, device, _ = await self.sm.decrypt(message)
        except Exception as e:
            emit(event="error", error=f"decrypting a {name} message from {sender}: {type(e).__name__}: {e}")
            return
        if plaintext is None:
            emit(event="empty", **{"from": sender}, ns=name, device_id=device.device_id)
            return
        fields = {"event": "message", "from": sender, "ns": name, "device_id": device.device_id,
                  # A plaintext <body> beside the encrypted one: customary in legacy OMEMO, forbidden
                  # by XEP-0420 for SCE (OMEMO:2) messages.
                  "plain_body": msg.xml.find(f"{{{CLIENT}}}body") is not None}
        try:
            if ns == NS2:
                body, affixes = parse_envelope(plaintext, sender, self.own_bare)
                fields["envelope"] = affixes
            else:
                body = plaintext.decode("utf-8")
        except Exception as e:
            emit(event="error", error=f"bad {name} content from {sender}: {type(e).__name__}: {e}")
            return
        fields["body"] = body
        emit(**fields)
        await self.after_message(sender, ns, body)

    async def after_message(self, sender, ns, body):
        args = self.args
        if args.listen is not None:
            if body is None:
                return
            self.received += 1
            if args.echo is not None:
                try:
                    await self.send_text(sender, ns, args.echo + body)
                except Exception as e:
                    emit(event="error", error=f"echo failed: {type(e).__name__}: {e}")
            if self.received >= args.listen:
                self.finish(True, f"{self.received} messages received")
        elif args.expect_reply_prefix is not None:
            if sender != slixmpp.JID(args.to).bare or body is None:
                return
            if not body.startswith(args.expect_reply_prefix):
                self.finish(False, f"reply {body!r} does not start with {args.expect_reply_prefix!r}")
            elif ns != NS_BY_NAME[args.ns]:
                self.finish(False, f"reply came in {NS_NAMES[ns]}, not {args.ns}")
            else:
                self.finish(True, "reply received")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Independent XMPP OMEMO client (slixmpp + python-omemo)")
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--state", help="JSON file keeping the OMEMO device between runs (default: memory)")
    p.add_argument("--to", help="peer bare JID (send mode)")
    p.add_argument("--ns", choices=sorted(NS_BY_NAME), default="omemo2")
    p.add_argument("--send", metavar="TEXT", help="send TEXT encrypted to --to")
    p.add_argument("--expect-reply-prefix", metavar="PREFIX",
                   help="wait for an encrypted reply from --to whose body starts with PREFIX")
    p.add_argument("--listen", type=int, metavar="N", help="wait for N encrypted messages")
    p.add_argument("--echo", metavar="PREFIX", help="in --listen mode, answer each message with PREFIX+body")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before giving up (default 30)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    if (args.send is None) == (args.listen is None):
        p.error("give exactly one of --send TEXT or --listen N")
    if args.send is not None and not args.to:
        p.error("--send needs --to")
    if args.expect_reply_prefix is not None and args.send is None:
        p.error("--expect-reply-prefix goes with --send")
    if args.echo is not None and args.listen is None:
        p.error("--echo goes with --listen")
    return args


async def run(args):
    client = OmemoClient(args)
    client.connect(args.host, args.port)
    try:
        await asyncio.wait_for(client.finished.wait(), args.timeout)
    except asyncio.TimeoutError:
        client.finish(False, f"timeout after {args.timeout}s")
    ok, reason = client.ok, client.reason
    try:
        # Give the last stanzas (an echo, an empty message) time to leave.
        await asyncio.wait_for(client.disconnect(wait=2.0), 5)
    except (asyncio.TimeoutError, Exception):
        pass
    emit(event="done", ok=ok, reason=reason)
    return 0 if ok else 1


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if not args.verbose:
        # python-omemo logs expected situations (unknown sender device, refreshes) as warnings.
        logging.getLogger("omemo").setLevel(logging.ERROR)
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
