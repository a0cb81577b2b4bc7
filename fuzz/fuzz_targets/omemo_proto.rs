//! Mutations of genuine OMEMO messages (both profiles): the fuzz input is a script of edits (bit flips,
//! byte sets, insertions, deletions, truncation, duplication) applied to a genuine key exchange or ratchet
//! message, which is then decrypted. The result must be a typed error (state unchanged, genuine messages
//! still decrypt) or exactly the genuine plaintext: never a panic, never another plaintext.
#![no_main]

#[allow(dead_code)]
#[path = "common/omemo_fixture.rs"]
mod fixture;

use fixture::{fixtures, is_parse_error, Genuine};
use libfuzzer_sys::fuzz_target;

/// Applies the edit script `ops` (pairs of bytes: operation, position; some take a value byte) to
/// `msg`.
fn mutate(msg: &[u8], mut ops: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    let mut edits = 0;
    while let [op, pos, rest @ ..] = ops {
        ops = rest;
        edits += 1;
        if edits > 16 {
            break;
        }
        let at = |len: usize| usize::from(*pos) % len.max(1);
        match op % 8 {
            0 if !m.is_empty() => {
                let i = at(m.len());
                m[i] ^= 1 << (op >> 5);
            }
            1 | 2 => {
                let Some((&v, rest)) = ops.split_first() else {
                    break;
                };
                ops = rest;
                if op % 8 == 1 && !m.is_empty() {
                    let i = at(m.len());
                    m[i] = v;
                } else {
                    let i = at(m.len() + 1);
                    m.insert(i, v);
                }
            }
            3 if !m.is_empty() => {
                let i = at(m.len());
                m.remove(i);
            }
            4 => m.truncate(at(m.len() + 1)),
            5 if !m.is_empty() => {
                // Duplicate a run of up to 8 bytes in place (repeated fields, longer varints).
                let i = at(m.len());
                let run: Vec<u8> = m[i..(i + 8).min(m.len())].to_vec();
                m.splice(i..i, run);
            }
            6 if !m.is_empty() => {
                // Positions past 255 for the longer messages.
                let i = (usize::from(*pos) + 256) % m.len();
                m[i] ^= 1 << (op >> 5);
            }
            _ => {
                let Some((&v, rest)) = ops.split_first() else {
                    break;
                };
                ops = rest;
                m.push(v);
            }
        }
    }
    m
}

fn check_plaintext(pt: &[u8], genuine: &Genuine) {
    assert!(
        pt == genuine.plaintext.as_slice(),
        "a mutation changed the plaintext"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, ops)) = data.split_first() else {
        return;
    };
    let f = &fixtures()[usize::from(sel & 1)];
    let flag = sel & 2 != 0;
    match (sel >> 2) % 4 {
        // A ratchet message of the confirmed session (the next one of the current chain, the skipped
        // one, or the first of a new chain).
        0 | 1 => {
            let g = &f.b_next[usize::from(sel >> 4) % f.b_next.len()];
            let m = mutate(&g.data, ops);
            let mut s = f.b.clone();
            match s.decrypt(&m, flag) {
                Ok(pt) => check_plaintext(&pt, g),
                Err(e) => f.assert_session_unharmed(&f.b, &s, !is_parse_error(&e)),
            }
        }
        // The repeated key exchange, to the session it built.
        2 => {
            let g = &f.b_kex_next;
            let m = mutate(&g.data, ops);
            let mut s = f.b_kex.clone();
            match s.decrypt(&m, flag) {
                Ok(pt) => check_plaintext(&pt, g),
                Err(e) => f.assert_kex_session_unharmed(&f.b_kex, &s, !is_parse_error(&e)),
            }
        }
        // A fresh key exchange, to the device keys.
        _ => {
            let g = &f.carol_kex;
            let m = mutate(&g.data, ops);
            let mut keys = f.bob_keys.clone();
            match keys.accept(f.profile, &m) {
                Ok((_, pt)) => check_plaintext(&pt, g),
                Err(_) => f.assert_keys_unharmed(&keys, flag),
            }
        }
    }
});
