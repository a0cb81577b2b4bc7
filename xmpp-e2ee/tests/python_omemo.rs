//! Interop with python-omemo 2.1 (twomemo/oldmemo), the independent implementation: our core and a
//! python-omemo SessionManager (tests/peer/omemo_peer.py, driven over JSON lines) exchange messages in
//! both directions, in both namespaces.
//!
//! The Python virtualenv is taken from `XMPP_E2EE_PEER_PYTHON` (a python executable, set by `.ci/run`)
//! or created once under `target/omemo-peer-venv` from tests/peer/requirements.txt. Without a Python that
//! can make that venv the tests fail, saying why: they never skip.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use minidom::Element;
use serde_json::{json, Value};
use xmpp_e2ee::omemo::{
    payload, Bundle, DeviceAddress, DeviceKeys, Encrypted, EncryptedKey, EncryptedPayload,
    MemoryStore, MessageKey, OmemoStore, PreKeyPublic, Profile, Session,
};

const PY_JID: &str = "py@localhost";
const RUST_JID: &str = "rust@localhost";
const RUST_DEVICE: u32 = 4242;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> bool {
    matches!(cmd.stdout(Stdio::null()).status(), Ok(s) if s.success())
}

/// The Python interpreter of a venv with the pinned python-omemo. The interop tests never skip: without
/// the peer they fail, saying why (`.ci/run` prepares the venv; `XMPP_E2EE_PEER_PYTHON` points at one).
fn python() -> Option<&'static PathBuf> {
    let py = python_or_none();
    assert!(
        py.is_some(),
        "no python-omemo peer: could not create a venv with xmpp-e2ee/tests/peer/requirements.txt \
         (python3 -m venv + pip); run .ci/run's setup or set XMPP_E2EE_PEER_PYTHON"
    );
    py
}

fn python_or_none() -> Option<&'static PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let check =
                |py: &Path| run(Command::new(py).args(["-c", "import omemo, twomemo, oldmemo"]));
            if let Some(p) = std::env::var_os("XMPP_E2EE_PEER_PYTHON").map(PathBuf::from) {
                if check(&p) {
                    return Some(p);
                }
                eprintln!("XMPP_E2EE_PEER_PYTHON={} lacks python-omemo", p.display());
            }
            let venv = manifest_dir().join("../target/omemo-peer-venv");
            let py = venv.join("bin/python");
            if py.exists() && check(&py) {
                return Some(py);
            }
            let reqs = manifest_dir().join("tests/peer/requirements.txt");
            let ok = run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
                && run(Command::new(&py)
                    .args(["-m", "pip", "install", "-q", "-r"])
                    .arg(&reqs))
                && check(&py);
            if ok {
                Some(py)
            } else {
                eprintln!(
                    "could not create a python-omemo venv at {} (python3 -m venv + pip)",
                    venv.display()
                );
                None
            }
        })
        .as_ref()
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    device_id: u32,
    /// Exchange elements as XML text (true) or as JSON fields (false).
    xml: bool,
    python: PathBuf,
    state: PathBuf,
}

impl Peer {
    fn start(python: &Path, state: &Path, xml: bool) -> Peer {
        let mut child = Command::new(python)
            .arg(manifest_dir().join("tests/peer/omemo_peer.py"))
            .arg(PY_JID)
            .arg(state)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start omemo_peer.py");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Peer {
            child,
            stdin,
            stdout,
            device_id: 0,
            xml,
            python: python.to_owned(),
            state: state.to_owned(),
        };
        let ready = peer.read();
        assert_eq!(ready["ready"], true, "{ready}");
        peer.device_id = peer.call(json!({"cmd": "info"}))["device_id"]
            .as_u64()
            .unwrap() as u32;
        peer
    }

    /// Stops the Python process and starts it again from its state file.
    fn restart(&mut self) {
        let (python, state) = (self.python.clone(), self.state.clone());
        let device_id = self.device_id;
        *self = Peer::start(&python, &state, self.xml);
        assert_eq!(self.device_id, device_id);
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from peer");
        assert!(!line.is_empty(), "the python peer exited");
        serde_json::from_str(&line).expect("peer answers JSON")
    }

    fn try_call(&mut self, req: Value) -> Result<Value, String> {
        writeln!(self.stdin, "{req}").expect("write to peer");
        self.stdin.flush().unwrap();
        let answer = self.read();
        if answer["ok"] == true {
            Ok(answer)
        } else {
            Err(format!(
                "{}\n{}",
                answer["error"],
                answer["trace"].as_str().unwrap_or("")
            ))
        }
    }

    fn call(&mut self, req: Value) -> Value {
        let cmd = req["cmd"].clone();
        self.try_call(req)
            .unwrap_or_else(|e| panic!("python peer failed on {cmd}: {e}"))
    }

    fn bundle(&mut self, profile: Profile) -> Bundle {
        let answer = self.call(json!({"cmd": "bundle", "ns": profile.namespace()}));
        if self.xml {
            Bundle::try_from(&parse_xml(&answer["xml"])).unwrap()
        } else {
            bundle_from_json(profile, &answer["bundle"])
        }
    }

    fn add_device(&mut self, us: &Rust) {
        let profile = us.profile;
        let bundle = us.keys.bundle(profile);
        let mut req = json!({
            "cmd": "add_device", "ns": profile.namespace(), "jid": RUST_JID, "device_id": us.device_id,
        });
        if self.xml {
            req["xml"] = json!(String::from(&Element::from(&bundle)));
        } else {
            req["bundle"] = bundle_to_json(&bundle);
        }
        self.call(req);
    }

    /// Reads a message of the peer (as the answer of `encrypt` or an outbox entry carries it).
    fn message(&self, profile: Profile, answer: &Value) -> Encrypted {
        if self.xml {
            let m = Encrypted::try_from(&parse_xml(&answer["xml"])).unwrap();
            assert_eq!(m.profile, profile);
            m
        } else {
            message_from_json(profile, &answer["message"])
        }
    }

    fn encrypt(&mut self, profile: Profile, text: &str) -> Encrypted {
        let answer = self.call(json!({
            "cmd": "encrypt", "ns": profile.namespace(), "to": RUST_JID,
            "plaintext": B64.encode(text),
        }));
        self.message(profile, &answer)
    }

    fn decrypt(&mut self, profile: Profile, message: &Encrypted) -> Result<Option<String>, String> {
        let mut req = json!({"cmd": "decrypt", "ns": profile.namespace(), "from": RUST_JID});
        if self.xml {
            req["xml"] = json!(String::from(&Element::from(message)));
        } else {
            req["message"] = message_to_json(message);
        }
        let answer = self.try_call(req)?;
        assert_eq!(answer["device_id"], message.sid);
        Ok(answer["plaintext"]
            .as_str()
            .map(|p| String::from_utf8(B64.decode(p).unwrap()).unwrap()))
    }

    fn outbox(&mut self) -> Vec<Value> {
        self.call(json!({"cmd": "outbox"}))["messages"]
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("base64 string"))
        .expect("valid base64")
}

fn bundle_from_json(profile: Profile, b: &Value) -> Bundle {
    Bundle {
        profile,
        identity_key: bytes(&b["ik"]),
        signed_prekey_id: b["spk_id"].as_u64().unwrap() as u32,
        signed_prekey: bytes(&b["spk"]),
        signed_prekey_signature: bytes(&b["spks"]),
        prekeys: b["prekeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pk| PreKeyPublic {
                id: pk["id"].as_u64().unwrap() as u32,
                key: bytes(&pk["key"]),
            })
            .collect(),
    }
}

fn parse_xml(v: &Value) -> Element {
    v.as_str()
        .expect("XML text")
        .parse()
        .expect("well-formed XML from python")
}

fn message_from_json(profile: Profile, m: &Value) -> Encrypted {
    let opt = |v: &Value| (!v.is_null()).then(|| bytes(v));
    Encrypted {
        profile,
        sid: m["sid"].as_u64().unwrap() as u32,
        keys: m["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| MessageKey {
                jid: k["jid"].as_str().map(str::to_owned),
                rid: k["rid"].as_u64().unwrap() as u32,
                key_exchange: k["kex"] == true,
                data: bytes(&k["data"]),
            })
            .collect(),
        iv: opt(&m["iv"]),
        payload: opt(&m["payload"]),
    }
}

fn message_to_json(m: &Encrypted) -> Value {
    json!({
        "sid": m.sid,
        "keys": m.keys.iter().map(|k| json!({
            "jid": k.jid, "rid": k.rid, "kex": k.key_exchange, "data": B64.encode(&k.data),
        })).collect::<Vec<_>>(),
        "iv": m.iv.as_ref().map(|iv| B64.encode(iv)),
        "payload": m.payload.as_ref().map(|p| B64.encode(p)),
    })
}

fn bundle_to_json(b: &Bundle) -> Value {
    json!({
        "ik": B64.encode(&b.identity_key),
        "spk_id": b.signed_prekey_id,
        "spk": B64.encode(&b.signed_prekey),
        "spks": B64.encode(&b.signed_prekey_signature),
        "prekeys": b.prekeys.iter().map(|pk| json!({"id": pk.id, "key": B64.encode(&pk.key)})).collect::<Vec<_>>(),
    })
}

/// Our side of a conversation with the peer device.
struct Rust {
    profile: Profile,
    device_id: u32,
    keys: DeviceKeys,
    session: Option<Session>,
}

impl Rust {
    fn new(profile: Profile) -> Rust {
        Rust::with_id(profile, RUST_DEVICE)
    }

    fn with_id(profile: Profile, device_id: u32) -> Rust {
        Rust {
            profile,
            device_id,
            keys: DeviceKeys::generate(10),
            session: None,
        }
    }

    /// Saves keys and session to a store and rebuilds this side from it, as after a restart.
    fn restart(&mut self, peer_device: u32) {
        let mut store = MemoryStore::new();
        let addr = DeviceAddress::new(self.profile, PY_JID, peer_device);
        store.store_own_device(self.device_id, &self.keys).unwrap();
        store
            .store_session(&addr, self.session.as_ref().unwrap())
            .unwrap();
        let (_, keys) = store.load_own_device().unwrap().unwrap();
        self.keys = keys;
        self.session = Some(store.load_session(&addr).unwrap().unwrap());
    }

    /// Encrypts `text` for the peer device.
    fn encrypt(&mut self, peer_device: u32, text: &str) -> (Encrypted, bool) {
        let (km, body) = payload::encrypt(self.profile, text.as_bytes());
        let key: EncryptedKey = self.session.as_mut().unwrap().encrypt(&km).unwrap();
        let m = Encrypted {
            profile: self.profile,
            sid: self.device_id,
            keys: vec![MessageKey {
                jid: (self.profile == Profile::Omemo2).then(|| PY_JID.to_owned()),
                rid: peer_device,
                key_exchange: key.key_exchange,
                data: key.data,
            }],
            iv: body.iv,
            payload: Some(body.ciphertext),
        };
        (m, key.key_exchange)
    }

    /// Decrypts a message of the peer; `None` for an empty (key-transport) message.
    fn decrypt(&mut self, m: &Encrypted) -> Option<String> {
        let key = m
            .keys_for(Some(RUST_JID), self.device_id)
            .next()
            .expect("a key for our device");
        let km = match &mut self.session {
            Some(s) => s.decrypt(&key.data, key.key_exchange).unwrap(),
            None => {
                assert!(
                    key.key_exchange,
                    "first message of the peer must be a key exchange"
                );
                let (s, km) = self.keys.accept(self.profile, &key.data).unwrap();
                self.session = Some(s);
                km
            }
        };
        let body = EncryptedPayload {
            ciphertext: m.payload.clone()?,
            iv: m.iv.clone(),
        };
        Some(String::from_utf8(payload::decrypt(self.profile, &km, &body).unwrap()).unwrap())
    }
}

/// Handles messages python-omemo sent on its own (e.g. empty messages that answer key exchanges).
fn drain_outbox(peer: &mut Peer, us: &mut Rust) -> usize {
    let msgs = peer.outbox();
    for m in &msgs {
        assert_eq!(m["to"], RUST_JID);
        assert_eq!(m["ns"], us.profile.namespace());
        let message = peer.message(us.profile, m);
        assert_eq!(us.decrypt(&message), None);
    }
    msgs.len()
}

/// A conversation after the first message: `rounds` turns, alternating sides, 1-3 messages per turn,
/// plus an out-of-order batch each way.
fn converse(peer: &mut Peer, us: &mut Rust, rounds: usize) {
    let profile = us.profile;
    let pd = peer.device_id;
    for round in 0..rounds {
        if round == rounds / 2 {
            // Both sides restart from their stores mid-conversation.
            us.restart(pd);
            peer.restart();
        }
        let count = round % 3 + 1;
        for k in 0..count {
            let text = format!("{profile:?} round {round} message {k}");
            if round % 2 == 0 {
                let (m, _) = us.encrypt(pd, &text);
                assert_eq!(peer.decrypt(profile, &m).unwrap(), Some(text));
            } else {
                let m = peer.encrypt(profile, &text);
                assert_eq!(us.decrypt(&m), Some(text));
            }
        }
        drain_outbox(peer, us);
    }
    // Out of order, with a gap that is filled last.
    let ours: Vec<_> = (0..4)
        .map(|i| us.encrypt(pd, &format!("ours {i}")).0)
        .collect();
    for i in [3usize, 0, 2, 1] {
        assert_eq!(
            peer.decrypt(profile, &ours[i]).unwrap(),
            Some(format!("ours {i}"))
        );
    }
    let theirs: Vec<_> = (0..4)
        .map(|i| peer.encrypt(profile, &format!("theirs {i}")))
        .collect();
    for i in [2usize, 3, 0, 1] {
        assert_eq!(us.decrypt(&theirs[i]), Some(format!("theirs {i}")));
    }
    // A replayed message is refused by python-omemo too.
    assert!(peer.decrypt(profile, &ours[1]).is_err());
    drain_outbox(peer, us);
}

fn peer_for(profile: Profile, dir: &tempfile::TempDir, xml: bool) -> Option<(Peer, Rust)> {
    let python = python()?;
    let mut peer = Peer::start(python, &dir.path().join("peer.json"), xml);
    let us = Rust::new(profile);
    peer.add_device(&us);
    Some((peer, us))
}

fn we_initiate(profile: Profile, xml: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((mut peer, mut us)) = peer_for(profile, &dir, xml) else {
        return;
    };
    let bundle = peer.bundle(profile);
    us.session = Some(us.keys.initiate(&bundle).unwrap());
    // Two key exchanges in a row before any answer: python-omemo takes both.
    for text in ["hello from rust", "still waiting"] {
        let (m, kex) = us.encrypt(peer.device_id, text);
        assert!(kex);
        assert_eq!(peer.decrypt(profile, &m).unwrap().as_deref(), Some(text));
    }
    drain_outbox(&mut peer, &mut us);
    let reply = peer.encrypt(profile, "hello from python");
    assert_eq!(us.decrypt(&reply).as_deref(), Some("hello from python"));
    assert!(us.session.as_ref().unwrap().is_confirmed());
    let (m, kex) = us.encrypt(peer.device_id, "no more key exchange");
    assert!(!kex);
    assert_eq!(
        peer.decrypt(profile, &m).unwrap().as_deref(),
        Some("no more key exchange")
    );
    converse(&mut peer, &mut us, 50);
}

fn they_initiate(profile: Profile, xml: bool) {
    let dir = tempfile::tempdir().unwrap();
    let Some((mut peer, mut us)) = peer_for(profile, &dir, xml) else {
        return;
    };
    let first = peer.encrypt(profile, "hello from python");
    assert!(first.keys[0].key_exchange, "{first:?}");
    assert_eq!(us.decrypt(&first).as_deref(), Some("hello from python"));
    assert_eq!(us.keys.prekey_count(), 9);
    let second = peer.encrypt(profile, "python again");
    assert_eq!(us.decrypt(&second).as_deref(), Some("python again"));
    let (m, kex) = us.encrypt(peer.device_id, "hello from rust");
    assert!(!kex);
    assert_eq!(
        peer.decrypt(profile, &m).unwrap().as_deref(),
        Some("hello from rust")
    );
    converse(&mut peer, &mut us, 50);
}

#[test]
fn omemo2_we_initiate() {
    we_initiate(Profile::Omemo2, false);
}

#[test]
fn omemo2_python_initiates() {
    they_initiate(Profile::Omemo2, false);
}

#[test]
fn legacy_we_initiate() {
    we_initiate(Profile::Legacy, false);
}

#[test]
fn legacy_python_initiates() {
    they_initiate(Profile::Legacy, false);
}

#[test]
fn omemo2_we_initiate_xml() {
    we_initiate(Profile::Omemo2, true);
}

#[test]
fn omemo2_python_initiates_xml() {
    they_initiate(Profile::Omemo2, true);
}

#[test]
fn legacy_we_initiate_xml() {
    we_initiate(Profile::Legacy, true);
}

#[test]
fn legacy_python_initiates_xml() {
    they_initiate(Profile::Legacy, true);
}

/// A second device of our account: python-omemo encrypts each message for both, each answers.
fn second_device(profile: Profile) {
    let dir = tempfile::tempdir().unwrap();
    let Some((mut peer, mut first)) = peer_for(profile, &dir, true) else {
        return;
    };
    let mut second = Rust::with_id(profile, RUST_DEVICE + 1);
    peer.add_device(&second);
    for round in 0..3 {
        let text = format!("to both devices {round}");
        let m = peer.encrypt(profile, &text);
        assert_eq!(m.keys.len(), 2, "{m:?}");
        assert_eq!(first.decrypt(&m).as_deref(), Some(text.as_str()));
        assert_eq!(second.decrypt(&m).as_deref(), Some(text.as_str()));
        for us in [&mut first, &mut second] {
            let text = format!("from device {} round {round}", us.device_id);
            let (m, _) = us.encrypt(peer.device_id, &text);
            assert_eq!(peer.decrypt(profile, &m).unwrap(), Some(text));
        }
        drain_outbox(&mut peer, &mut first);
    }
}

#[test]
fn omemo2_second_device() {
    second_device(Profile::Omemo2);
}

#[test]
fn legacy_second_device() {
    second_device(Profile::Legacy);
}
