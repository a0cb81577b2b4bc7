//! A small proto2 encoder/decoder for the handful of OMEMO structures.
//!
//! Required fields are always written, zero values included (python-omemo and libsignal reject
//! proto3-style omission). Decoding is bounded by the input, skips unknown fields and fails with
//! [`OmemoError::MalformedProtobuf`] on truncation, overlong varints, wrong wire types and missing
//! required fields.

use super::error::OmemoError;
use super::profile::Profile;
use super::Result;

const WT_VARINT: u8 = 0;
const WT_I64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_I32: u8 = 5;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(crate) fn put_u32(out: &mut Vec<u8>, field: u32, v: u32) {
    put_varint(out, (u64::from(field) << 3) | u64::from(WT_VARINT));
    put_varint(out, u64::from(v));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
    put_varint(out, (u64::from(field) << 3) | u64::from(WT_LEN));
    put_varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The last occurrence of each field number 1..=15 (higher numbers are skipped as unknown).
pub(crate) struct Fields<'a> {
    values: [Option<Value<'a>>; 16],
}

fn get_varint(data: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let byte = *data
            .get(*pos)
            .ok_or(OmemoError::MalformedProtobuf("truncated varint"))?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return Err(OmemoError::MalformedProtobuf("varint overflow"));
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(OmemoError::MalformedProtobuf("varint too long"))
}

fn take<'a>(data: &'a [u8], pos: &mut usize, len: u64) -> Result<&'a [u8]> {
    let len = usize::try_from(len).map_err(|_| OmemoError::MalformedProtobuf("length overflow"))?;
    let end = pos
        .checked_add(len)
        .filter(|end| *end <= data.len())
        .ok_or(OmemoError::MalformedProtobuf("truncated field"))?;
    let out = &data[*pos..end];
    *pos = end;
    Ok(out)
}

impl<'a> Fields<'a> {
    pub(crate) fn parse(data: &'a [u8]) -> Result<Self> {
        let mut values = [None; 16];
        let mut pos = 0;
        while pos < data.len() {
            let key = get_varint(data, &mut pos)?;
            let field = key >> 3;
            let wire = (key & 7) as u8;
            if field == 0 {
                return Err(OmemoError::MalformedProtobuf("field number 0"));
            }
            let value = match wire {
                WT_VARINT => Value::Varint(get_varint(data, &mut pos)?),
                WT_LEN => {
                    let len = get_varint(data, &mut pos)?;
                    Value::Bytes(take(data, &mut pos, len)?)
                }
                WT_I64 => {
                    take(data, &mut pos, 8)?;
                    continue;
                }
                WT_I32 => {
                    take(data, &mut pos, 4)?;
                    continue;
                }
                _ => return Err(OmemoError::MalformedProtobuf("unsupported wire type")),
            };
            if let Some(slot) = usize::try_from(field).ok().and_then(|f| values.get_mut(f)) {
                *slot = Some(value);
            }
        }
        Ok(Fields { values })
    }

    pub(crate) fn u32(&self, field: usize, name: &'static str) -> Result<u32> {
        match self.values[field] {
            Some(Value::Varint(v)) => {
                u32::try_from(v).map_err(|_| OmemoError::MalformedProtobuf("uint32 out of range"))
            }
            Some(Value::Bytes(_)) => Err(OmemoError::MalformedProtobuf("wrong wire type")),
            None => Err(OmemoError::MalformedProtobuf(name)),
        }
    }

    pub(crate) fn bytes(&self, field: usize, name: &'static str) -> Result<&'a [u8]> {
        self.opt_bytes(field)?
            .ok_or(OmemoError::MalformedProtobuf(name))
    }

    pub(crate) fn opt_bytes(&self, field: usize) -> Result<Option<&'a [u8]>> {
        match self.values[field] {
            Some(Value::Bytes(b)) => Ok(Some(b)),
            Some(Value::Varint(_)) => Err(OmemoError::MalformedProtobuf("wrong wire type")),
            None => Ok(None),
        }
    }
}

/// The ratchet message (`OMEMOMessage`): header and ciphertext of the transported key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RatchetMessage {
    pub n: u32,
    pub pn: u32,
    /// The sender's ratchet public key as on the wire (32 bytes, legacy: `0x05` + 32 bytes).
    pub dh_pub: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl RatchetMessage {
    pub fn encode(&self, profile: Profile) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ciphertext.len() + self.dh_pub.len() + 16);
        match profile {
            Profile::Omemo2 => {
                put_u32(&mut out, 1, self.n);
                put_u32(&mut out, 2, self.pn);
                put_bytes(&mut out, 3, &self.dh_pub);
                put_bytes(&mut out, 4, &self.ciphertext);
            }
            Profile::Legacy => {
                put_bytes(&mut out, 1, &self.dh_pub);
                put_u32(&mut out, 2, self.n);
                put_u32(&mut out, 3, self.pn);
                put_bytes(&mut out, 4, &self.ciphertext);
            }
        }
        out
    }

    pub fn decode(profile: Profile, data: &[u8]) -> Result<Self> {
        let f = Fields::parse(data)?;
        let (n, pn, dh) = match profile {
            Profile::Omemo2 => (1, 2, 3),
            Profile::Legacy => (2, 3, 1),
        };
        Ok(RatchetMessage {
            n: f.u32(n, "OMEMOMessage.n missing")?,
            pn: f.u32(pn, "OMEMOMessage.pn missing")?,
            dh_pub: f.bytes(dh, "OMEMOMessage.dh_pub missing")?.to_vec(),
            ciphertext: f.bytes(4, "OMEMOMessage.ciphertext missing")?.to_vec(),
        })
    }
}

/// `OMEMOAuthenticatedMessage` of OMEMO:2 (legacy uses plain concatenation instead).
pub(crate) struct AuthenticatedMessage<'a> {
    pub mac: &'a [u8],
    pub message: &'a [u8],
}

impl<'a> AuthenticatedMessage<'a> {
    pub fn encode(mac: &[u8], message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(mac.len() + message.len() + 6);
        put_bytes(&mut out, 1, mac);
        put_bytes(&mut out, 2, message);
        out
    }

    pub fn decode(data: &'a [u8]) -> Result<Self> {
        let f = Fields::parse(data)?;
        Ok(AuthenticatedMessage {
            mac: f.bytes(1, "OMEMOAuthenticatedMessage.mac missing")?,
            message: f.bytes(2, "OMEMOAuthenticatedMessage.message missing")?,
        })
    }
}

/// `OMEMOKeyExchange` (legacy: `PreKeyWhisperMessage` without its version byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyExchange {
    pub pk_id: u32,
    pub spk_id: u32,
    /// The initiator's identity key as on the wire.
    pub ik: Vec<u8>,
    /// The initiator's ephemeral key as on the wire.
    pub ek: Vec<u8>,
    /// The serialized authenticated ratchet message.
    pub message: Vec<u8>,
}

impl KeyExchange {
    pub fn encode(&self, profile: Profile) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.message.len() + 90);
        match profile {
            Profile::Omemo2 => {
                put_u32(&mut out, 1, self.pk_id);
                put_u32(&mut out, 2, self.spk_id);
                put_bytes(&mut out, 3, &self.ik);
                put_bytes(&mut out, 4, &self.ek);
                put_bytes(&mut out, 5, &self.message);
            }
            Profile::Legacy => {
                put_u32(&mut out, 1, self.pk_id);
                put_bytes(&mut out, 2, &self.ek);
                put_bytes(&mut out, 3, &self.ik);
                put_bytes(&mut out, 4, &self.message);
                put_u32(&mut out, 6, self.spk_id);
            }
        }
        out
    }

    pub fn decode(profile: Profile, data: &[u8]) -> Result<Self> {
        let f = Fields::parse(data)?;
        let (pk, spk, ik, ek, msg) = match profile {
            Profile::Omemo2 => (1, 2, 3, 4, 5),
            Profile::Legacy => (1, 6, 3, 2, 4),
        };
        Ok(KeyExchange {
            pk_id: f.u32(pk, "OMEMOKeyExchange.pk_id missing")?,
            spk_id: f.u32(spk, "OMEMOKeyExchange.spk_id missing")?,
            ik: f.bytes(ik, "OMEMOKeyExchange.ik missing")?.to_vec(),
            ek: f.bytes(ek, "OMEMOKeyExchange.ek missing")?.to_vec(),
            message: f.bytes(msg, "OMEMOKeyExchange.message missing")?.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_values_are_written() {
        let m = RatchetMessage {
            n: 0,
            pn: 0,
            dh_pub: vec![1; 32],
            ciphertext: vec![],
        };
        let enc = m.encode(Profile::Omemo2);
        assert_eq!(&enc[..4], &[0x08, 0x00, 0x10, 0x00]);
        assert_eq!(RatchetMessage::decode(Profile::Omemo2, &enc), Ok(m));
    }

    #[test]
    fn legacy_field_numbers_round_trip() {
        let m = RatchetMessage {
            n: 300,
            pn: 7,
            dh_pub: vec![5; 33],
            ciphertext: vec![9; 48],
        };
        let enc = m.encode(Profile::Legacy);
        assert_eq!(enc[0], 0x0a);
        assert_eq!(RatchetMessage::decode(Profile::Legacy, &enc), Ok(m.clone()));
        let kex = KeyExchange {
            pk_id: 0,
            spk_id: 1,
            ik: vec![5; 33],
            ek: vec![5; 33],
            message: enc,
        };
        for p in [Profile::Omemo2, Profile::Legacy] {
            assert_eq!(KeyExchange::decode(p, &kex.encode(p)), Ok(kex.clone()));
        }
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let cases: &[&[u8]] = &[
            &[0x08],
            &[0x08, 0x80],
            &[0x1a, 0x05, 0x01],
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            &[0x08, 0x80, 0x80, 0x80, 0x80, 0x10],
            &[0x0b],
            &[0x00, 0x00],
            &[],
        ];
        for c in cases {
            assert!(matches!(
                RatchetMessage::decode(Profile::Omemo2, c),
                Err(OmemoError::MalformedProtobuf(_))
            ));
            assert!(KeyExchange::decode(Profile::Legacy, c).is_err());
            assert!(AuthenticatedMessage::decode(c).is_err());
        }
    }
}
