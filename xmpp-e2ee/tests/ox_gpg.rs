//! OX OpenPGP messages checked against GnuPG (the independent implementation, `gpg` 2.2 from Debian,
//! installed by `.ci/setup-gpg.sh`), in both directions: gpg decrypts and verifies what we seal
//! (`<signcrypt/>`, `<sign/>`, `<crypt/>`, password-encrypted backups and pubsub items), and we open
//! what gpg produces (compressed, as gpg does by default). gpg runs with a temporary GNUPGHOME only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use chrono::Utc;
use jid::BareJid;
use minidom::Element;
use xmpp_e2ee::ox::backup::{decrypt_backup, encrypt_backup};
use xmpp_e2ee::ox::core::{open_element, seal, Checks};
use xmpp_e2ee::ox::pgp::{decrypt_with_password, encrypt_with_password};
use xmpp_e2ee::ox::xml::{Content, ContentKind, OpenPgp};
use xmpp_e2ee::ox::{BackupCode, OxError, PublicKey, SecretKey};

struct Gpg {
    home: tempfile::TempDir,
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

impl Gpg {
    fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("oxgpg")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let gpg = Gpg { home };
        let out = Command::new("gpg").arg("--version").output().unwrap_or_else(|e| {
            panic!("gpg is not installed ({e}): run `bash .ci/setup-gpg.sh` (Debian package gnupg)")
        });
        assert!(out.status.success(), "gpg --version failed");
        gpg
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// Runs gpg with the temporary home, in batch mode with an empty passphrase.
    fn run(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home())
            .args([
                "--batch",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--trust-model",
                "always",
                "--status-fd",
                "2",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gpg runs");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: &[u8]) -> Output {
        let out = self.run(args, stdin);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Generates an ed25519/cv25519 key with the user id `xmpp:<jid>` and returns its fingerprint.
    fn generate(&self, jid: &str) -> String {
        let uid = format!("xmpp:{jid}");
        self.ok(
            &[
                "--passphrase",
                "",
                "--quick-gen-key",
                &uid,
                "future-default",
                "default",
                "never",
            ],
            b"",
        );
        let out = self.ok(&["--with-colons", "--list-secret-keys", &uid], b"");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint")
            .to_owned()
    }

    fn import(&self, data: &[u8]) {
        self.ok(&["--import"], data);
    }

    fn export(&self, fpr: &str) -> Vec<u8> {
        self.ok(&["--export", fpr], b"").stdout
    }
}

fn jid(s: &str) -> BareJid {
    BareJid::new(s).unwrap()
}

fn body(text: &str) -> Element {
    Element::builder("body", "jabber:client")
        .append(text)
        .build()
}

fn status(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn gpg_reads_what_we_seal() {
    let gpg = Gpg::new();
    let bob_fpr = gpg.generate("bob@localhost");
    let bob = PublicKey::from_bytes(&gpg.export(&bob_fpr)).unwrap();
    assert_eq!(bob.fingerprint(), bob_fpr);
    assert!(bob.has_jid("bob@localhost"));

    let alice = SecretKey::generate("alice@localhost").unwrap();
    assert!(alice.has_jid("alice@localhost"));
    gpg.import(&alice.public().to_bytes().unwrap());

    for kind in [
        ContentKind::Signcrypt,
        ContentKind::Sign,
        ContentKind::Crypt,
    ] {
        let content = Content::new(
            kind,
            vec![jid("bob@localhost")],
            vec![body(&format!("hello from sequoia, {kind:?} <&>"))],
        );
        let sealed = seal(&content, &alice, &[&bob]).unwrap();
        // Through the XML element and back, as it travels.
        let sealed = OpenPgp::from_element(&sealed.to_element()).unwrap();
        let out = gpg.ok(&["--decrypt"], &sealed.message);
        let st = status(&out);
        assert_eq!(
            st.contains("DECRYPTION_OKAY"),
            kind.encrypted(),
            "{kind:?}: {st}"
        );
        if kind.signed() {
            assert!(
                st.contains(&format!("VALIDSIG {}", alice.fingerprint()))
                    || st.contains("VALIDSIG"),
                "{kind:?}: {st}"
            );
            assert!(st.contains("GOODSIG"), "{kind:?}: {st}");
        } else {
            assert!(!st.contains("GOODSIG"), "{kind:?}: {st}");
        }
        // SEIPD v1 with MDC: gpg 2.2 says so, and would refuse v2.
        if kind.encrypted() {
            assert!(st.contains("GOODMDC"), "{kind:?}: {st}");
        }
        let back = Content::from_bytes(&out.stdout).unwrap();
        assert_eq!(back, content, "{kind:?}");
    }
}

#[test]
fn we_open_what_gpg_produces() {
    let gpg = Gpg::new();
    let bob_fpr = gpg.generate("bob@localhost");
    let bob = PublicKey::from_bytes(&gpg.export(&bob_fpr)).unwrap();
    let alice = SecretKey::generate("alice@localhost").unwrap();
    let alice_fpr = alice.fingerprint();
    gpg.import(&alice.public().to_bytes().unwrap());
    let (a, b) = (jid("alice@localhost"), jid("bob@localhost"));
    let now = Utc::now();

    for (kind, args) in [
        (
            ContentKind::Signcrypt,
            vec!["--encrypt", "--sign", "-r", &alice_fpr, "-u", &bob_fpr],
        ),
        (ContentKind::Sign, vec!["--sign", "-u", &bob_fpr]),
        (ContentKind::Crypt, vec!["--encrypt", "-r", &alice_fpr]),
    ] {
        let content = Content::new(kind, vec![a.clone()], vec![body("from gnupg")]);
        // gpg compresses by default (ZLIB/ZIP): keep it so.
        let out = gpg.ok(&args, &content.to_bytes().unwrap());
        let el = OpenPgp {
            message: out.stdout,
        };
        let v = open_element(&el, &alice, &b, &[&bob], &a, &Checks::default(), now)
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(v.content, content, "{kind:?}");
        assert_eq!(
            v.signer.as_deref(),
            kind.signed().then_some(bob_fpr.as_str())
        );

        // The same message presented as coming from someone else: its signature is by a key that
        // is not theirs.
        if kind.signed() {
            let carol = SecretKey::generate("carol@localhost").unwrap().public();
            let err = open_element(
                &el,
                &alice,
                &jid("carol@localhost"),
                &[&carol],
                &a,
                &Checks::default(),
                now,
            )
            .unwrap_err();
            assert!(matches!(err, OxError::UnknownSigner { .. }), "{err:?}");
        }
        // Not addressed to us.
        if kind.signed() {
            let err = open_element(
                &el,
                &alice,
                &b,
                &[&bob],
                &jid("mallory@localhost"),
                &Checks::default(),
                now,
            )
            .unwrap_err();
            assert!(matches!(err, OxError::NotForUs { .. }), "{err:?}");
        }
    }

    // A <signcrypt/> that gpg only signed: the protection does not match the element.
    let content = Content::new(ContentKind::Signcrypt, vec![a.clone()], vec![body("x")]);
    let out = gpg.ok(&["--sign", "-u", &bob_fpr], &content.to_bytes().unwrap());
    let err = open_element(
        &OpenPgp {
            message: out.stdout,
        },
        &alice,
        &b,
        &[&bob],
        &a,
        &Checks::default(),
        now,
    )
    .unwrap_err();
    assert!(matches!(err, OxError::WrongProtection { .. }), "{err:?}");

    // A message in the future.
    let mut content = Content::new(ContentKind::Signcrypt, vec![a.clone()], vec![body("x")]);
    content.time = (now + chrono::TimeDelta::hours(2)).fixed_offset();
    let out = gpg.ok(
        &["--encrypt", "--sign", "-r", &alice_fpr, "-u", &bob_fpr],
        &content.to_bytes().unwrap(),
    );
    let el = OpenPgp {
        message: out.stdout,
    };
    let err = open_element(&el, &alice, &b, &[&bob], &a, &Checks::default(), now).unwrap_err();
    assert!(matches!(err, OxError::BadTime(_)), "{err:?}");

    // Tampered ciphertext: an error, never a panic.
    let mut bytes = el.message.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    let err = open_element(
        &OpenPgp { message: bytes },
        &alice,
        &b,
        &[&bob],
        &a,
        &Checks::default(),
        now,
    )
    .unwrap_err();
    assert!(
        matches!(err, OxError::OpenPgp(_) | OxError::NoDecryptionKey),
        "{err:?}"
    );
}

#[test]
fn secret_keys_and_passwords_interoperate() {
    let gpg = Gpg::new();
    // gpg's transferable secret key (no passphrase) is a usable own key for us.
    let bob_fpr = gpg.generate("bob@localhost");
    let tsk = gpg.ok(&["--passphrase", "", "--export-secret-keys", &bob_fpr], b"");
    let bob = SecretKey::from_bytes(&tsk.stdout).unwrap();
    assert_eq!(bob.fingerprint(), bob_fpr);

    // Our backup, opened by gpg with the backup code, holds our transferable secret key.
    let alice = SecretKey::generate("alice@localhost").unwrap();
    let code = BackupCode::generate();
    let backup = encrypt_backup(&[&alice], &code).unwrap();
    let out = gpg.ok(
        &["--passphrase", code.as_str(), "--decrypt"],
        &backup.message,
    );
    let restored = SecretKey::from_bytes(&out.stdout).unwrap();
    assert_eq!(restored.fingerprint(), alice.fingerprint());
    let back = decrypt_backup(&backup, &code).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].fingerprint(), alice.fingerprint());
    let wrong = BackupCode::generate();
    assert!(matches!(
        decrypt_backup(&backup, &wrong),
        Err(OxError::WrongPassword)
    ));

    // A backup gpg made (symmetric, compressed) of its own key restores here.
    let out = gpg.ok(&["--passphrase", code.as_str(), "--symmetric"], &tsk.stdout);
    let from_gpg = decrypt_backup(
        &xmpp_e2ee::ox::xml::SecretKeyBackup {
            message: out.stdout,
        },
        &code,
    )
    .unwrap();
    assert_eq!(from_gpg[0].fingerprint(), bob_fpr);

    // Password-encrypted pubsub payloads (XEP-0473) both ways.
    let secret = "ZSRD5lK9mz-5VHNyu2N1XLiJZ8I87jkv85ceZkVrOGA";
    let ours =
        encrypt_with_password(b"<entry xmlns='http://www.w3.org/2005/Atom'/>", secret).unwrap();
    let out = gpg.ok(&["--passphrase", secret, "--decrypt"], &ours);
    assert_eq!(out.stdout, b"<entry xmlns='http://www.w3.org/2005/Atom'/>");
    let theirs = gpg
        .ok(&["--passphrase", secret, "--symmetric"], b"from gpg")
        .stdout;
    assert_eq!(decrypt_with_password(&theirs, secret).unwrap(), b"from gpg");
    assert!(matches!(
        decrypt_with_password(&theirs, "not the secret"),
        Err(OxError::WrongPassword)
    ));
}
