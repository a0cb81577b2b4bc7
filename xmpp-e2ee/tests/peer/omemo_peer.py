#!/usr/bin/env python3
"""A python-omemo device driven over JSON lines, the independent peer of the xmpp-e2ee interop tests.

Usage: omemo_peer.py JID STATE_FILE

Each input line is a JSON object with a "cmd"; each answer is one JSON line {"ok": true, ...} or
{"ok": false, "error": "..."}. Binary values are base64. Commands:

  {"cmd": "info"}                                   -> {"device_id": n}
  {"cmd": "bundle", "ns": NS}                       -> {"bundle": BUNDLE, "xml": "<bundle .../>"}
  {"cmd": "add_device", "ns": NS, "jid": J, "device_id": n, "bundle": BUNDLE | "xml": "<bundle/>"}
        makes J's device (with that bundle) known, as if fetched from PEP
  {"cmd": "encrypt", "ns": NS, "to": J, "plaintext": B64}  -> {"message": MESSAGE, "xml": "<encrypted/>"}
  {"cmd": "decrypt", "ns": NS, "from": J, "message": MESSAGE | "xml": "<encrypted/>"}
        -> {"plaintext": B64 or null, "device_id": n}
  {"cmd": "outbox"}          -> {"messages": [{"to": J, "ns": NS, "message": MESSAGE, "xml": "..."}]}

BUNDLE  = {"ik", "spk_id", "spk", "spks", "prekeys": [{"id", "key"}]}
MESSAGE = {"sid", "keys": [{"jid", "rid", "kex", "data"}], "iv" (legacy), "payload" (absent: empty message)}

The JSON is converted to and from the namespaces' XML elements here, and the XML is parsed and produced
by python-omemo's own twomemo.etree/oldmemo.etree, so the wire format on the Rust side is checked against
the Python implementation. All state lives in STATE_FILE, so the peer can be restarted.
"""

import asyncio
import base64
import json
import os
import sys
import traceback
import xml.etree.ElementTree as ET

import omemo
import oldmemo
import oldmemo.etree
import twomemo
import twomemo.etree

NS2 = twomemo.twomemo.NAMESPACE
NSL = oldmemo.oldmemo.NAMESPACE


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text)


class FileStorage(omemo.Storage):
    def __init__(self, path):
        super().__init__()
        self.path = path
        self.data = {}
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                self.data = json.load(f)

    def flush(self):
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
        self.flush()

    async def _delete(self, key):
        self.data.pop(key, None)
        self.flush()


STORAGE = None
OWN_JID = None
OWN_BUNDLES = {}
OUTBOX = []


def peers():
    """(ns, jid) -> {device_id: bundle JSON}, kept in the storage file to survive restarts."""
    return STORAGE.data.setdefault("peer-test/devices", {})


def own_lists():
    return STORAGE.data.setdefault("peer-test/own-lists", {})


def xml_text(elt):
    return ET.tostring(elt, encoding="unicode")


def etree_module(ns):
    return twomemo.etree if ns == NS2 else oldmemo.etree


def bundle_to_json(ns, elt):
    q = lambda name: f"{{{ns}}}{name}"
    if ns == NS2:
        spk = elt.find(q("spk"))
        return {
            "ik": elt.find(q("ik")).text,
            "spk_id": int(spk.get("id")),
            "spk": spk.text,
            "spks": elt.find(q("spks")).text,
            "prekeys": [{"id": int(pk.get("id")), "key": pk.text} for pk in elt.find(q("prekeys"))],
        }
    spk = elt.find(q("signedPreKeyPublic"))
    return {
        "ik": elt.find(q("identityKey")).text,
        "spk_id": int(spk.get("signedPreKeyId")),
        "spk": spk.text,
        "spks": elt.find(q("signedPreKeySignature")).text,
        "prekeys": [
            {"id": int(pk.get("preKeyId")), "key": pk.text} for pk in elt.find(q("prekeys"))
        ],
    }


def bundle_from_json(ns, b):
    q = lambda name: f"{{{ns}}}{name}"
    elt = ET.Element(q("bundle"))
    if ns == NS2:
        ET.SubElement(elt, q("spk"), attrib={"id": str(b["spk_id"])}).text = b["spk"]
        ET.SubElement(elt, q("spks")).text = b["spks"]
        ET.SubElement(elt, q("ik")).text = b["ik"]
        pks = ET.SubElement(elt, q("prekeys"))
        for pk in b["prekeys"]:
            ET.SubElement(pks, q("pk"), attrib={"id": str(pk["id"])}).text = pk["key"]
    else:
        ET.SubElement(elt, q("signedPreKeyPublic"), attrib={"signedPreKeyId": str(b["spk_id"])}).text = b["spk"]
        ET.SubElement(elt, q("signedPreKeySignature")).text = b["spks"]
        ET.SubElement(elt, q("identityKey")).text = b["ik"]
        pks = ET.SubElement(elt, q("prekeys"))
        for pk in b["prekeys"]:
            ET.SubElement(pks, q("preKeyPublic"), attrib={"preKeyId": str(pk["id"])}).text = pk["key"]
    return elt


def message_to_json(ns, elt):
    q = lambda name: f"{{{ns}}}{name}"
    header = elt.find(q("header"))
    out = {"sid": int(header.get("sid")), "keys": []}
    if ns == NS2:
        for keys in header.findall(q("keys")):
            for key in keys.findall(q("key")):
                out["keys"].append({
                    "jid": keys.get("jid"),
                    "rid": int(key.get("rid")),
                    "kex": key.get("kex", "false") in ("true", "1"),
                    "data": key.text,
                })
    else:
        for key in header.findall(q("key")):
            out["keys"].append({
                "jid": None,
                "rid": int(key.get("rid")),
                "kex": key.get("prekey", "false") in ("true", "1"),
                "data": key.text,
            })
        out["iv"] = header.find(q("iv")).text
    payload = elt.find(q("payload"))
    if payload is not None:
        out["payload"] = payload.text
    return out


def message_from_json(ns, m):
    q = lambda name: f"{{{ns}}}{name}"
    elt = ET.Element(q("encrypted"))
    header = ET.SubElement(elt, q("header"), attrib={"sid": str(m["sid"])})
    if ns == NS2:
        by_jid = {}
        for k in m["keys"]:
            by_jid.setdefault(k["jid"], []).append(k)
        for jid, keys in by_jid.items():
            keys_elt = ET.SubElement(header, q("keys"), attrib={"jid": jid})
            for k in keys:
                attrib = {"rid": str(k["rid"])}
                if k.get("kex"):
                    attrib["kex"] = "true"
                ET.SubElement(keys_elt, q("key"), attrib=attrib).text = k["data"]
    else:
        for k in m["keys"]:
            attrib = {"rid": str(k["rid"])}
            if k.get("kex"):
                attrib["prekey"] = "true"
            ET.SubElement(header, q("key"), attrib=attrib).text = k["data"]
        ET.SubElement(header, q("iv")).text = m["iv"]
    if m.get("payload") is not None:
        ET.SubElement(elt, q("payload")).text = m["payload"]
    return elt


class PeerSessionManager(omemo.SessionManager):
    @staticmethod
    async def _upload_bundle(bundle):
        OWN_BUNDLES[bundle.namespace] = bundle

    @staticmethod
    async def _download_bundle(namespace, bare_jid, device_id):
        b = peers().get(f"{namespace} {bare_jid}", {}).get(str(device_id))
        if b is None:
            raise omemo.BundleDownloadFailed(f"no bundle for {bare_jid}/{device_id} in {namespace}")
        elt = ET.fromstring(b) if isinstance(b, str) else bundle_from_json(namespace, b)
        return etree_module(namespace).parse_bundle(elt, bare_jid, device_id)

    @staticmethod
    async def _delete_bundle(namespace, device_id):
        pass

    @staticmethod
    async def _upload_device_list(namespace, device_list):
        own_lists()[namespace] = {str(k): v for k, v in device_list.items()}
        STORAGE.flush()

    @staticmethod
    async def _download_device_list(namespace, bare_jid):
        if bare_jid == OWN_JID:
            return {int(k): v for k, v in own_lists().get(namespace, {}).items()}
        return {int(k): None for k in peers().get(f"{namespace} {bare_jid}", {})}

    async def _evaluate_custom_trust_level(self, device):
        return omemo.TrustLevel.TRUSTED

    async def _make_trust_decision(self, undecided, identifier):
        pass

    @staticmethod
    async def _send_message(message, bare_jid):
        ns = message.namespace
        elt = etree_module(ns).serialize_message(message)
        OUTBOX.append({"to": bare_jid, "ns": ns, "message": message_to_json(ns, elt), "xml": xml_text(elt)})


async def handle(sm, req):
    cmd = req["cmd"]
    if cmd == "info":
        info = await sm.get_own_device_information()
        return {"device_id": info[0].device_id}
    if cmd == "bundle":
        ns = req["ns"]
        elt = etree_module(ns).serialize_bundle(OWN_BUNDLES[ns])
        return {"bundle": bundle_to_json(ns, elt), "xml": xml_text(elt)}
    if cmd == "add_device":
        ns = req["ns"]
        bundle = req["xml"] if "xml" in req else req["bundle"]
        peers().setdefault(f"{ns} {req['jid']}", {})[str(req["device_id"])] = bundle
        STORAGE.flush()
        await sm.refresh_device_list(ns, req["jid"])
        return {}
    if cmd == "encrypt":
        ns = req["ns"]
        messages, errors = await sm.encrypt(
            frozenset({req["to"]}), {ns: unb64(req["plaintext"])}, backend_priority_order=[ns]
        )
        if errors:
            return {"ok": False, "error": "encryption errors: " + repr(errors)}
        for message in messages:
            if message.namespace == ns:
                elt = etree_module(ns).serialize_message(message)
                return {"message": message_to_json(ns, elt), "xml": xml_text(elt)}
        return {"ok": False, "error": "no message for " + ns}
    if cmd == "decrypt":
        ns = req["ns"]
        elt = ET.fromstring(req["xml"]) if "xml" in req else message_from_json(ns, req["message"])
        if ns == NS2:
            message = twomemo.etree.parse_message(elt, req["from"])
        else:
            message = await oldmemo.etree.parse_message(elt, req["from"], OWN_JID, sm)
        plaintext, device, _ = await sm.decrypt(message)
        return {
            "plaintext": None if plaintext is None else b64(plaintext),
            "device_id": device.device_id,
        }
    if cmd == "outbox":
        out = list(OUTBOX)
        OUTBOX.clear()
        return {"messages": out}
    return {"ok": False, "error": f"unknown command {cmd!r}"}


async def main():
    global STORAGE, OWN_JID
    OWN_JID = sys.argv[1]
    STORAGE = FileStorage(sys.argv[2])
    sm = await PeerSessionManager.create(
        backends=[twomemo.Twomemo(STORAGE), oldmemo.Oldmemo(STORAGE)],
        storage=STORAGE,
        own_bare_jid=OWN_JID,
        initial_own_label=None,
        undecided_trust_level_name="UNDECIDED",
    )
    await sm.after_history_sync()
    print(json.dumps({"ok": True, "ready": True}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        if not line.strip():
            continue
        try:
            answer = await handle(sm, json.loads(line))
            answer.setdefault("ok", True)
        except Exception as e:  # report every failure to the driving test
            answer = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
