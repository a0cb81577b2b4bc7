//! X3DH session setup and the per-profile framing of ratchet messages.

use std::fmt;

use x25519_dalek::{PublicKey, StaticSecret};

use super::crypto::{aes256_cbc_decrypt, aes256_cbc_encrypt, ct_eq, hkdf, hmac, random};
use super::error::OmemoError;
use super::keys::{decode_curve, dh, djb_encode, identity_to_curve, Bundle, DeviceKeys};
use super::profile::{Profile, LEGACY_VERSION};
use super::proto::{put_bytes, put_u32, AuthenticatedMessage, Fields, KeyExchange, RatchetMessage};
use super::ratchet::Ratchet;
use super::Result;

/// One encrypted `<key>` for one recipient device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedKey {
    /// The bytes to base64-encode into the `<key>` element.
    pub data: Vec<u8>,
    /// Whether `data` is a key exchange (OMEMO:2 `kex="true"`, legacy `prekey="true"`).
    pub key_exchange: bool,
}

#[derive(Clone)]
struct PendingKeyExchange {
    pk_id: u32,
    spk_id: u32,
    ek: [u8; 32],
}

/// A Double Ratchet session with one remote device.
#[derive(Clone)]
pub struct Session {
    profile: Profile,
    /// Encoded identity keys, initiator first.
    ad: Vec<u8>,
    initiator: bool,
    remote_identity: Vec<u8>,
    /// Set while we initiated and have not heard back: every message carries the key exchange.
    pending: Option<PendingKeyExchange>,
    /// The key exchange we answered, to recognise its repetitions.
    accepted_ek: Option<[u8; 32]>,
    ratchet: Ratchet,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("profile", &self.profile)
            .field("initiator", &self.initiator)
            .field("confirmed", &self.pending.is_none())
            .finish_non_exhaustive()
    }
}

fn x3dh(profile: Profile, dhs: [[u8; 32]; 4]) -> [u8; 32] {
    let mut ikm = Vec::with_capacity(32 * 5);
    ikm.extend_from_slice(&[0xff; 32]);
    for d in &dhs {
        ikm.extend_from_slice(d);
    }
    hkdf(&[0u8; 32], &ikm, profile.x3dh_info())
}

fn curve_wire(profile: Profile, key: &[u8; 32]) -> Vec<u8> {
    match profile {
        Profile::Omemo2 => key.to_vec(),
        Profile::Legacy => djb_encode(key),
    }
}

fn message_keys(profile: Profile, mk: &[u8; 32]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let out: [u8; 80] = hkdf(&[0u8; 32], mk, profile.message_info());
    let mut enc = [0u8; 32];
    let mut auth = [0u8; 32];
    let mut iv = [0u8; 16];
    enc.copy_from_slice(&out[..32]);
    auth.copy_from_slice(&out[32..64]);
    iv.copy_from_slice(&out[64..]);
    (enc, auth, iv)
}

impl DeviceKeys {
    /// Starts a session with a remote device from its bundle (X3DH, active side). The bundle's
    /// signature is verified and one of its one-time prekeys is picked at random. Until the peer
    /// answers, every [`Session::encrypt`] output is a key exchange.
    pub fn initiate(&self, bundle: &Bundle) -> Result<Session> {
        let profile = bundle.profile;
        bundle.verify()?;
        if bundle.prekeys.is_empty() {
            return Err(OmemoError::NoPreKey);
        }
        let pick = (u32::from_le_bytes(random()) as usize) % bundle.prekeys.len();
        let prekey = &bundle.prekeys[pick];
        let their_ik = identity_to_curve(profile, &bundle.identity_key)?;
        let spk = decode_curve(profile, &bundle.signed_prekey)?;
        let opk = decode_curve(profile, &prekey.key)?;
        let ek = StaticSecret::from(random::<32>());
        let sk = x3dh(
            profile,
            [
                self.identity.dh(&spk)?,
                dh(&ek, &their_ik)?,
                dh(&ek, &spk)?,
                dh(&ek, &opk)?,
            ],
        );
        let mut ad = self.identity.wire_public(profile);
        ad.extend_from_slice(&bundle.identity_key);
        Ok(Session {
            profile,
            ad,
            initiator: true,
            remote_identity: bundle.identity_key.clone(),
            pending: Some(PendingKeyExchange {
                pk_id: prekey.id,
                spk_id: bundle.signed_prekey_id,
                ek: PublicKey::from(&ek).to_bytes(),
            }),
            accepted_ek: None,
            ratchet: Ratchet::init_active(profile, sk, spk)?,
        })
    }

    /// Answers a key exchange (X3DH, passive side): builds the session and decrypts the message it
    /// carries. On success the used one-time prekey is deleted (refill with
    /// [`DeviceKeys::refill_prekeys`] and republish the bundle); on failure nothing changes.
    pub fn accept(&mut self, profile: Profile, data: &[u8]) -> Result<(Session, Vec<u8>)> {
        let kex = parse_key_exchange(profile, data)?;
        let spk = self.signed_prekey_by_id(kex.spk_id)?.clone();
        let pk = self
            .prekeys
            .get(&kex.pk_id)
            .ok_or(OmemoError::UnknownPreKey(kex.pk_id))?
            .clone();
        let their_ik = identity_to_curve(profile, &kex.ik)?;
        let ek = decode_curve(profile, &kex.ek)?;
        let spk_secret = StaticSecret::from(spk.secret());
        let sk = x3dh(
            profile,
            [
                dh(&spk_secret, &their_ik)?,
                self.identity.dh(&ek)?,
                dh(&spk_secret, &ek)?,
                dh(&pk, &ek)?,
            ],
        );
        let mut ad = kex.ik.clone();
        ad.extend_from_slice(&self.identity.wire_public(profile));
        let mut session = Session {
            profile,
            ad,
            initiator: false,
            remote_identity: kex.ik.clone(),
            pending: None,
            accepted_ek: Some(ek),
            ratchet: Ratchet::init_passive(profile, sk, spk_secret),
        };
        let plaintext = session.decrypt_message(&kex.message)?;
        self.prekeys.remove(&kex.pk_id);
        Ok((session, plaintext))
    }
}

fn parse_key_exchange(profile: Profile, data: &[u8]) -> Result<KeyExchange> {
    let raw = match profile {
        Profile::Omemo2 => data,
        Profile::Legacy => match data.split_first() {
            Some((&LEGACY_VERSION, rest)) => rest,
            _ => return Err(OmemoError::MalformedProtobuf("missing version byte")),
        },
    };
    KeyExchange::decode(profile, raw)
}

/// The sender's ratchet key and the message counter of a received `<key>` (read without any state, so
/// without authentication: use it only for bookkeeping such as heartbeats).
pub(crate) fn ratchet_header(
    profile: Profile,
    data: &[u8],
    key_exchange: bool,
) -> Result<(Vec<u8>, u32)> {
    let kex;
    let data = if key_exchange {
        kex = parse_key_exchange(profile, data)?;
        kex.message.as_slice()
    } else {
        data
    };
    let proto = match profile {
        Profile::Omemo2 => AuthenticatedMessage::decode(data)?.message,
        Profile::Legacy => {
            let end = data
                .len()
                .checked_sub(profile.mac_len())
                .ok_or(OmemoError::MalformedProtobuf("message too short"))?;
            match data[..end].split_first() {
                Some((&LEGACY_VERSION, proto)) => proto,
                _ => return Err(OmemoError::MalformedProtobuf("missing version byte")),
            }
        }
    };
    let message = RatchetMessage::decode(profile, proto)?;
    Ok((message.dh_pub, message.n))
}

impl Session {
    /// The profile of the session.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The remote device's identity key in the profile's wire form.
    pub fn remote_identity_key(&self) -> &[u8] {
        &self.remote_identity
    }

    /// Whether we started the session.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Whether the peer has answered (our messages no longer carry the key exchange).
    pub fn is_confirmed(&self) -> bool {
        self.pending.is_none()
    }

    /// Number of message keys kept for skipped messages.
    pub fn skipped_keys(&self) -> usize {
        self.ratchet.skipped_len()
    }

    fn ad_for(&self, sending: bool) -> Vec<u8> {
        match self.profile {
            Profile::Omemo2 => self.ad.clone(),
            Profile::Legacy => {
                // libsignal: sender identity || receiver identity, whoever initiated.
                let (first, second) = self
                    .ad
                    .split_at(self.ad.len().min(self.profile.identity_len()));
                if sending == self.initiator {
                    self.ad.clone()
                } else {
                    [second, first].concat()
                }
            }
        }
    }

    /// Encrypts key material (the payload key and tag, see [`super::payload`]) for the remote device.
    pub fn encrypt(&mut self, key_material: &[u8]) -> Result<EncryptedKey> {
        let profile = self.profile;
        let (header, mk) = self.ratchet.next_send()?;
        let (enc, auth, iv) = message_keys(profile, &mk);
        let message = RatchetMessage {
            n: header.n,
            pn: header.pn,
            dh_pub: curve_wire(profile, &header.dh_pub),
            ciphertext: aes256_cbc_encrypt(&enc, &iv, key_material),
        };
        let ad = self.ad_for(true);
        let data = match profile {
            Profile::Omemo2 => {
                let m = message.encode(profile);
                let mac = hmac(&auth, &[&ad, &m]);
                AuthenticatedMessage::encode(&mac[..profile.mac_len()], &m)
            }
            Profile::Legacy => {
                let mut m = vec![LEGACY_VERSION];
                m.extend_from_slice(&message.encode(profile));
                let mac = hmac(&auth, &[&ad, &m]);
                m.extend_from_slice(&mac[..profile.mac_len()]);
                m
            }
        };
        let Some(pending) = &self.pending else {
            return Ok(EncryptedKey {
                data,
                key_exchange: false,
            });
        };
        let kex = KeyExchange {
            pk_id: pending.pk_id,
            spk_id: pending.spk_id,
            ik: self.ad[..profile.identity_len().min(self.ad.len())].to_vec(),
            ek: curve_wire(profile, &pending.ek),
            message: data,
        };
        let mut out = Vec::new();
        if profile == Profile::Legacy {
            out.push(LEGACY_VERSION);
        }
        out.extend_from_slice(&kex.encode(profile));
        Ok(EncryptedKey {
            data: out,
            key_exchange: true,
        })
    }

    /// Decrypts a `<key>` addressed to us. A key exchange (`key_exchange = true`) is accepted if it
    /// is the one this session was built from (the peer repeats it until we answer). On any error the
    /// session is unchanged.
    pub fn decrypt(&mut self, data: &[u8], key_exchange: bool) -> Result<Vec<u8>> {
        if !key_exchange {
            return self.decrypt_message(data);
        }
        let kex = parse_key_exchange(self.profile, data)?;
        let ek = decode_curve(self.profile, &kex.ek)?;
        if self.accepted_ek != Some(ek) || kex.ik != self.remote_identity {
            return Err(OmemoError::KeyExchangeMismatch);
        }
        self.decrypt_message(&kex.message)
    }

    fn decrypt_message(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        let profile = self.profile;
        let (signed, proto, mac): (&[u8], &[u8], &[u8]) = match profile {
            Profile::Omemo2 => {
                let auth = AuthenticatedMessage::decode(data)?;
                (auth.message, auth.message, auth.mac)
            }
            Profile::Legacy => {
                if data.len() < 1 + profile.mac_len() {
                    return Err(OmemoError::MalformedProtobuf("message too short"));
                }
                let (signed, mac) = data.split_at(data.len() - profile.mac_len());
                match signed.split_first() {
                    Some((&LEGACY_VERSION, proto)) => (signed, proto, mac),
                    _ => return Err(OmemoError::MalformedProtobuf("missing version byte")),
                }
            }
        };
        if mac.len() != profile.mac_len() {
            return Err(OmemoError::BadMac);
        }
        let message = RatchetMessage::decode(profile, proto)?;
        let their = decode_curve(profile, &message.dh_pub)?;
        let ad = self.ad_for(false);
        let plaintext = self.ratchet.receive(their, message.n, message.pn, |mk| {
            let (enc, auth, iv) = message_keys(profile, mk);
            let expected = hmac(&auth, &[&ad, signed]);
            if !ct_eq(&expected[..profile.mac_len()], mac) {
                return Err(OmemoError::BadMac);
            }
            aes256_cbc_decrypt(&enc, &iv, &message.ciphertext)
        })?;
        self.pending = None;
        Ok(plaintext)
    }
}

/// Version tag of the stored session format.
const SESSION_FORMAT: u32 = 1;

impl Session {
    /// Serialises the whole session state (secret!) for a key store.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_u32(&mut out, 15, SESSION_FORMAT);
        put_u32(&mut out, 1, u32::from(self.profile == Profile::Legacy));
        put_bytes(&mut out, 2, &self.ad);
        put_u32(&mut out, 3, u32::from(self.initiator));
        put_bytes(&mut out, 4, &self.remote_identity);
        if let Some(p) = &self.pending {
            let mut kex = Vec::new();
            put_u32(&mut kex, 1, p.pk_id);
            put_u32(&mut kex, 2, p.spk_id);
            put_bytes(&mut kex, 3, &p.ek);
            put_bytes(&mut out, 5, &kex);
        }
        if let Some(ek) = &self.accepted_ek {
            put_bytes(&mut out, 6, ek);
        }
        put_bytes(&mut out, 7, &self.ratchet.encode());
        out
    }

    /// Restores a session stored with [`Session::to_bytes`].
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        let corrupt = |_| OmemoError::CorruptState("session");
        let f = Fields::parse(data).map_err(corrupt)?;
        if f.u32(15, "format").map_err(corrupt)? != SESSION_FORMAT {
            return Err(OmemoError::CorruptState("unknown session format"));
        }
        let profile = match f.u32(1, "profile").map_err(corrupt)? {
            0 => Profile::Omemo2,
            1 => Profile::Legacy,
            _ => return Err(OmemoError::CorruptState("unknown profile")),
        };
        let key32 = |b: &[u8]| -> Result<[u8; 32]> {
            b.try_into()
                .map_err(|_| OmemoError::CorruptState("key is not 32 bytes"))
        };
        let pending = match f.opt_bytes(5).map_err(corrupt)? {
            Some(raw) => {
                let k = Fields::parse(raw).map_err(corrupt)?;
                Some(PendingKeyExchange {
                    pk_id: k.u32(1, "pk_id").map_err(corrupt)?,
                    spk_id: k.u32(2, "spk_id").map_err(corrupt)?,
                    ek: key32(k.bytes(3, "ek").map_err(corrupt)?)?,
                })
            }
            None => None,
        };
        let ad = f.bytes(2, "ad").map_err(corrupt)?.to_vec();
        if ad.len() != 2 * profile.identity_len() {
            return Err(OmemoError::CorruptState("associated data length"));
        }
        let ratchet = Ratchet::decode(f.bytes(7, "ratchet").map_err(corrupt)?)?;
        Ok(Session {
            profile,
            ad,
            initiator: f.u32(3, "initiator").map_err(corrupt)? != 0,
            remote_identity: f.bytes(4, "remote identity").map_err(corrupt)?.to_vec(),
            pending,
            accepted_ek: f.opt_bytes(6).map_err(corrupt)?.map(key32).transpose()?,
            ratchet,
        })
    }
}
