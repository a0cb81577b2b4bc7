//! The Double Ratchet state machine, shared by both profiles (only the KDF labels differ).

use std::collections::VecDeque;

use x25519_dalek::{PublicKey, StaticSecret};

use super::crypto::{hkdf, hmac, random};
use super::error::OmemoError;
use super::keys::dh;
use super::profile::Profile;
use super::proto::{put_bytes, put_u32, Fields};
use super::Result;

/// The most message keys a session keeps for skipped (late or lost) messages, and the most one
/// message may make it derive. The oldest are dropped first.
pub const MAX_SKIPPED_KEYS: usize = 1000;

/// Header of an outgoing ratchet message.
pub(crate) struct Header {
    pub dh_pub: [u8; 32],
    pub n: u32,
    pub pn: u32,
}

#[derive(Clone)]
pub(crate) struct Ratchet {
    profile: Profile,
    root: [u8; 32],
    dhs: StaticSecret,
    dhr: Option<[u8; 32]>,
    cks: Option<[u8; 32]>,
    ns: u32,
    pns: u32,
    ckr: Option<[u8; 32]>,
    nr: u32,
    /// (ratchet key, index, message key), oldest first.
    skipped: VecDeque<([u8; 32], u32, [u8; 32])>,
}

fn kdf_rk(profile: Profile, root: &[u8; 32], dh_out: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let out: [u8; 64] = hkdf(root, dh_out, profile.root_info());
    let mut rk = [0u8; 32];
    let mut ck = [0u8; 32];
    rk.copy_from_slice(&out[..32]);
    ck.copy_from_slice(&out[32..]);
    (rk, ck)
}

/// Chain step: (next chain key, message key).
fn kdf_ck(ck: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (hmac(ck, &[&[0x02]]), hmac(ck, &[&[0x01]]))
}

impl Ratchet {
    /// The initiator's ratchet after X3DH: it can send at once, to the responder's signed prekey.
    pub fn init_active(profile: Profile, sk: [u8; 32], their_spk: [u8; 32]) -> Result<Self> {
        let dhs = StaticSecret::from(random::<32>());
        let (root, cks) = kdf_rk(profile, &sk, &dh(&dhs, &their_spk)?);
        Ok(Ratchet {
            profile,
            root,
            dhs,
            dhr: Some(their_spk),
            cks: Some(cks),
            ns: 0,
            pns: 0,
            ckr: None,
            nr: 0,
            skipped: VecDeque::new(),
        })
    }

    /// The responder's ratchet after X3DH: its ratchet key is the signed prekey until the first message
    /// arrives.
    pub fn init_passive(profile: Profile, sk: [u8; 32], spk: StaticSecret) -> Self {
        Ratchet {
            profile,
            root: sk,
            dhs: spk,
            dhr: None,
            cks: None,
            ns: 0,
            pns: 0,
            ckr: None,
            nr: 0,
            skipped: VecDeque::new(),
        }
    }

    pub fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// The next sending message key and the header to send with it.
    pub fn next_send(&mut self) -> Result<(Header, [u8; 32])> {
        let ck = self.cks.ok_or(OmemoError::NoSendingChain)?;
        let (next, mk) = kdf_ck(&ck);
        let header = Header {
            dh_pub: PublicKey::from(&self.dhs).to_bytes(),
            n: self.ns,
            pn: self.pns,
        };
        self.cks = Some(next);
        self.ns = self.ns.checked_add(1).ok_or(OmemoError::NoSendingChain)?;
        Ok((header, mk))
    }

    fn skip_until(&mut self, until: u32) -> Result<()> {
        let Some(mut ck) = self.ckr else {
            return Ok(());
        };
        if until <= self.nr {
            return Ok(());
        }
        let count = u64::from(until - self.nr);
        if count > MAX_SKIPPED_KEYS as u64 {
            return Err(OmemoError::TooManySkipped(count));
        }
        let dhr = self.dhr.unwrap_or_default();
        while self.nr < until {
            let (next, mk) = kdf_ck(&ck);
            self.skipped.push_back((dhr, self.nr, mk));
            if self.skipped.len() > MAX_SKIPPED_KEYS {
                self.skipped.pop_front();
            }
            ck = next;
            self.nr += 1;
        }
        self.ckr = Some(ck);
        Ok(())
    }

    fn dh_step(&mut self, their: [u8; 32]) -> Result<()> {
        self.pns = self.ns;
        self.ns = 0;
        self.nr = 0;
        self.dhr = Some(their);
        let (root, ckr) = kdf_rk(self.profile, &self.root, &dh(&self.dhs, &their)?);
        self.dhs = StaticSecret::from(random::<32>());
        let (root, cks) = kdf_rk(self.profile, &root, &dh(&self.dhs, &their)?);
        self.root = root;
        self.ckr = Some(ckr);
        self.cks = Some(cks);
        Ok(())
    }

    /// Finds the message key for a received header and runs `open` with it. The state only changes if
    /// `open` succeeds (it checks the MAC), so forged or replayed messages leave no trace.
    pub fn receive<T>(
        &mut self,
        their: [u8; 32],
        n: u32,
        pn: u32,
        open: impl FnOnce(&[u8; 32]) -> Result<T>,
    ) -> Result<T> {
        if let Some(i) = self
            .skipped
            .iter()
            .position(|(d, idx, _)| *d == their && *idx == n)
        {
            let out = open(&self.skipped[i].2)?;
            self.skipped.remove(i);
            return Ok(out);
        }
        let mut next = self.clone();
        if next.dhr != Some(their) || next.ckr.is_none() {
            next.skip_until(pn)?;
            next.dh_step(their)?;
        }
        if n < next.nr {
            return Err(OmemoError::Replay(n));
        }
        next.skip_until(n)?;
        let ck = next.ckr.ok_or(OmemoError::NoSendingChain)?;
        // A chain whose counter is exhausted cannot take another message (reachable only by a peer
        // that sent 2^32 messages on one chain, or by corrupt stored state).
        let nr = next
            .nr
            .checked_add(1)
            .ok_or(OmemoError::DecryptionFailed("message counter exhausted"))?;
        let (ck, mk) = kdf_ck(&ck);
        let out = open(&mk)?;
        next.ckr = Some(ck);
        next.nr = nr;
        *self = next;
        Ok(out)
    }
}

fn arr32(b: &[u8]) -> Result<[u8; 32]> {
    b.try_into()
        .map_err(|_| OmemoError::CorruptState("key is not 32 bytes"))
}

fn opt32(f: &Fields<'_>, field: usize) -> Result<Option<[u8; 32]>> {
    f.opt_bytes(field)?.map(arr32).transpose()
}

const SKIPPED_RECORD: usize = 32 + 4 + 32;

impl Ratchet {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(200 + self.skipped.len() * SKIPPED_RECORD);
        put_u32(&mut out, 1, u32::from(self.profile == Profile::Legacy));
        put_bytes(&mut out, 2, &self.root);
        put_bytes(&mut out, 3, &self.dhs.to_bytes());
        for (field, v) in [(4, &self.dhr), (5, &self.cks), (6, &self.ckr)] {
            if let Some(k) = v {
                put_bytes(&mut out, field, k);
            }
        }
        put_u32(&mut out, 7, self.ns);
        put_u32(&mut out, 8, self.pns);
        put_u32(&mut out, 9, self.nr);
        let mut skipped = Vec::with_capacity(self.skipped.len() * SKIPPED_RECORD);
        for (dh, n, mk) in &self.skipped {
            skipped.extend_from_slice(dh);
            skipped.extend_from_slice(&n.to_be_bytes());
            skipped.extend_from_slice(mk);
        }
        put_bytes(&mut out, 10, &skipped);
        out
    }

    pub fn decode(data: &[u8]) -> Result<Self> {
        let corrupt = |_| OmemoError::CorruptState("ratchet");
        let f = Fields::parse(data).map_err(corrupt)?;
        let profile = match f.u32(1, "profile").map_err(corrupt)? {
            0 => Profile::Omemo2,
            1 => Profile::Legacy,
            _ => return Err(OmemoError::CorruptState("unknown profile")),
        };
        let skipped_raw = f.bytes(10, "skipped").map_err(corrupt)?;
        if skipped_raw.len() % SKIPPED_RECORD != 0
            || skipped_raw.len() / SKIPPED_RECORD > MAX_SKIPPED_KEYS
        {
            return Err(OmemoError::CorruptState("skipped keys"));
        }
        let mut skipped = VecDeque::with_capacity(skipped_raw.len() / SKIPPED_RECORD);
        for rec in skipped_raw.chunks_exact(SKIPPED_RECORD) {
            let mut n = [0u8; 4];
            n.copy_from_slice(&rec[32..36]);
            skipped.push_back((
                arr32(&rec[..32])?,
                u32::from_be_bytes(n),
                arr32(&rec[36..])?,
            ));
        }
        Ok(Ratchet {
            profile,
            root: arr32(f.bytes(2, "root").map_err(corrupt)?)?,
            dhs: StaticSecret::from(arr32(f.bytes(3, "dhs").map_err(corrupt)?)?),
            dhr: opt32(&f, 4).map_err(corrupt)?,
            cks: opt32(&f, 5).map_err(corrupt)?,
            ckr: opt32(&f, 6).map_err(corrupt)?,
            ns: f.u32(7, "ns").map_err(corrupt)?,
            pns: f.u32(8, "pns").map_err(corrupt)?,
            nr: f.u32(9, "nr").map_err(corrupt)?,
            skipped,
        })
    }
}
