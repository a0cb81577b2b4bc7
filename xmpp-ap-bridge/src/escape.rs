//! XEP-0106 (JID Escaping, version 1.1) for remote actors shown as local parts of the gateway's JID.
//!
//! A fediverse actor `alice@mastodon.example` appears on XMPP as `alice\40mastodon.example@ap.example.org`.
//! Both functions are total on any `&str` (no panic; the `jid` crate's unescape panics on a trailing `\`),
//! and follow the XEP's business rules: only the ten sequences `\20 \22 \26 \27 \2f \3a \3c \3e \40 \5c`
//! (lowercase: case is significant) are transformed; a `\` is escaped to `\5c` only when it starts one of
//! those sequences; a space may not start or end a local part.

use crate::error::EscapeError;

/// RFC 7622: a local part is at most 1023 bytes.
pub const MAX_LOCALPART_LEN: usize = 1023;

/// The characters XEP-0106 escapes, with their two lowercase hex digits.
const TABLE: [(char, &str); 10] = [
    (' ', "20"),
    ('"', "22"),
    ('&', "26"),
    ('\'', "27"),
    ('/', "2f"),
    (':', "3a"),
    ('<', "3c"),
    ('>', "3e"),
    ('@', "40"),
    ('\\', "5c"),
];

fn escape_of(c: char) -> Option<&'static str> {
    TABLE.iter().find(|(t, _)| *t == c).map(|(_, h)| *h)
}

fn char_of(hex: &str) -> Option<char> {
    TABLE.iter().find(|(_, h)| *h == hex).map(|(c, _)| *c)
}

/// True when `rest` (the text after a `\`) starts with one of the ten escape sequences.
fn starts_sequence(rest: &str) -> bool {
    rest.get(..2).and_then(char_of).is_some()
}

/// Escapes a foreign address (e.g. an AP handle `alice@mastodon.example`) into a JID local part.
///
/// Errors: empty input, a leading or trailing space, control or non-ASCII whitespace characters (which
/// cannot be made valid in a local part), or a result longer than [`MAX_LOCALPART_LEN`].
pub fn escape_localpart(source: &str) -> Result<String, EscapeError> {
    if source.is_empty() {
        return Err(EscapeError::Empty);
    }
    if source.starts_with(' ') || source.ends_with(' ') {
        return Err(EscapeError::EdgeSpace);
    }
    let mut out = String::with_capacity(source.len() + 8);
    for (i, c) in source.char_indices() {
        if c.is_control() || (c.is_whitespace() && c != ' ') {
            return Err(EscapeError::ForbiddenChar(c));
        }
        match c {
            '\\' => {
                let rest = source.get(i + 1..).unwrap_or_default();
                if starts_sequence(rest) {
                    out.push_str("\\5c");
                } else {
                    out.push('\\');
                }
            }
            c => match escape_of(c) {
                Some(hex) => {
                    out.push('\\');
                    out.push_str(hex);
                }
                None => out.push(c),
            },
        }
        if out.len() > MAX_LOCALPART_LEN {
            return Err(EscapeError::TooLong {
                max: MAX_LOCALPART_LEN,
            });
        }
    }
    Ok(out)
}

/// Unescapes a JID local part (e.g. `alice\40mastodon.example`) back to the foreign address.
///
/// Sequences other than the ten of XEP-0106 are left as they are (`\41`, `\5C`, a lone `\`). Errors: empty
/// input, longer than [`MAX_LOCALPART_LEN`], or `\20` at the start or the end (forbidden by the XEP).
pub fn unescape_localpart(localpart: &str) -> Result<String, EscapeError> {
    if localpart.is_empty() {
        return Err(EscapeError::Empty);
    }
    if localpart.len() > MAX_LOCALPART_LEN {
        return Err(EscapeError::TooLong {
            max: MAX_LOCALPART_LEN,
        });
    }
    if localpart.starts_with("\\20") || localpart.ends_with("\\20") {
        return Err(EscapeError::EdgeSpace);
    }
    let mut out = String::with_capacity(localpart.len());
    let mut rest = localpart;
    while let Some(pos) = rest.find('\\') {
        out.push_str(rest.get(..pos).unwrap_or_default());
        let after = rest.get(pos + 1..).unwrap_or_default();
        match after.get(..2).and_then(char_of) {
            Some(c) => {
                out.push(c);
                rest = after.get(2..).unwrap_or_default();
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// XEP-0106 §5 table (examples 1-12): user input, escaped local part.
    const XEP_EXAMPLES: &[(&str, &str)] = &[
        ("space cadet", "space\\20cadet"),
        ("call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22"),
        ("at&t guy", "at\\26t\\20guy"),
        ("d'artagnan", "d\\27artagnan"),
        ("/.fanboy", "\\2f.fanboy"),
        ("::foo::", "\\3a\\3afoo\\3a\\3a"),
        ("<foo>", "\\3cfoo\\3e"),
        ("user@host", "user\\40host"),
        ("c:\\net", "c\\3a\\net"),
        ("c:\\\\net", "c\\3a\\\\net"),
        ("c:\\cool stuff", "c\\3a\\cool\\20stuff"),
        ("c:\\5commas", "c\\3a\\5c5commas"),
        // §5.1 (email addresses) and the Wireless Village example of §3.
        (
            "here's_a_wild_&_/cr%zy/_address",
            "here\\27s_a_wild_\\26_\\2fcr%zy\\2f_address",
        ),
        ("\\3and\\2is\\5cool", "\\5c3and\\2is\\5c5cool"),
        ("alice@mastodon.example", "alice\\40mastodon.example"),
    ];

    #[test]
    fn xep_examples() {
        for (input, escaped) in XEP_EXAMPLES {
            assert_eq!(escape_localpart(input).unwrap(), *escaped, "escape {input}");
            assert_eq!(
                unescape_localpart(escaped).unwrap(),
                *input,
                "unescape {escaped}"
            );
        }
    }

    #[test]
    fn not_modified() {
        // XEP-0106 §3: partial sequences and other hex values are left alone both ways.
        for s in [
            "\\2plus\\2is\\4",
            "foo\\bar",
            "foob\\41r",
            "\\5C",
            "a\\",
            "\\",
            "\\2",
            "é\\",
        ] {
            assert_eq!(escape_localpart(s).unwrap(), s);
            assert_eq!(unescape_localpart(s).unwrap(), s);
        }
    }

    #[test]
    fn errors() {
        assert_eq!(escape_localpart(""), Err(EscapeError::Empty));
        assert_eq!(escape_localpart(" a"), Err(EscapeError::EdgeSpace));
        assert_eq!(escape_localpart("a "), Err(EscapeError::EdgeSpace));
        assert_eq!(
            escape_localpart("a\nb"),
            Err(EscapeError::ForbiddenChar('\n'))
        );
        assert_eq!(
            escape_localpart("a\u{a0}b"),
            Err(EscapeError::ForbiddenChar('\u{a0}'))
        );
        assert_eq!(
            escape_localpart(&"@".repeat(400)),
            Err(EscapeError::TooLong { max: 1023 })
        );
        assert_eq!(unescape_localpart(""), Err(EscapeError::Empty));
        assert_eq!(unescape_localpart("\\20a"), Err(EscapeError::EdgeSpace));
        assert_eq!(unescape_localpart("a\\20"), Err(EscapeError::EdgeSpace));
        assert!(matches!(
            unescape_localpart(&"a".repeat(1024)),
            Err(EscapeError::TooLong { .. })
        ));
    }

    #[test]
    fn round_trip_generated() {
        const PIECES: &[&str] = &[
            "a",
            "Z",
            " ",
            "\"",
            "&",
            "'",
            "/",
            ":",
            "<",
            ">",
            "@",
            "\\",
            "\\20",
            "\\5c",
            "\\5C",
            "\\4",
            "20",
            "5c",
            "é",
            "🦀",
            ".",
            "%",
            "mastodon.example",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut n = 0;
        for _ in 0..20_000 {
            let len = 1 + (next() % 10) as usize;
            let s: String = (0..len)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            match escape_localpart(&s) {
                Ok(e) => {
                    for c in ['"', '&', '\'', '/', ':', '<', '>', '@', ' '] {
                        assert!(!e.contains(c), "{s:?} -> {e:?}");
                    }
                    assert_eq!(unescape_localpart(&e).unwrap(), s, "{e:?}");
                    // The result is a valid JID local part (the jid crate's stringprep tables are
                    // Unicode 3.2: characters assigned later, like the crab, are refused by it).
                    if !s.contains('🦀') {
                        assert!(
                            jid::BareJid::new(&format!("{e}@ap.example.org")).is_ok(),
                            "{e:?}"
                        );
                    }
                    n += 1;
                }
                Err(EscapeError::EdgeSpace) => assert!(s.starts_with(' ') || s.ends_with(' ')),
                Err(e) => panic!("{s:?}: {e}"),
            }
        }
        assert!(n > 10_000);
    }

    #[test]
    fn unescape_is_total() {
        // Byte-level edge cases around multi-byte characters after a backslash.
        for s in [
            "\\é", "\\é5c", "\\5é", "\\\\", "\\\\5c", "x\\40", "\\40\\40",
        ] {
            let _ = unescape_localpart(s);
            let _ = escape_localpart(s);
        }
        assert_eq!(unescape_localpart("x\\40").unwrap(), "x@");
    }
}
