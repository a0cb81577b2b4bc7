//! Friendly pubsub item ids for blog posts.
//!
//! Libervia derives a post's item id from its title so that links stay readable
//! (`xmpp:romeo@montague.lit?;node=urn%3Axmpp%3Amicroblog%3A0;item=hanging-out-at-the-cafe-x3f9`).
//! Its scheme drops every non-ASCII character, so titles in Cyrillic, Greek, Arabic or CJK scripts
//! produce an empty slug. This module transliterates those scripts instead (with [`deunicode`]) and
//! falls back to a random id when nothing readable is left (an emoji-only or empty title).
//!
//! Every id produced here is a valid pubsub item id: non-empty, ASCII, without whitespace.

use rand::distr::Alphanumeric;
use rand::Rng;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The longest slug [`slugify`] produces, in bytes (the random suffix comes on top).
pub const MAX_SLUG_BYTES: usize = 60;

/// Length of the random suffix [`friendly_id`] appends to a slug.
pub const SUFFIX_LEN: usize = 6;

/// Length of the random id used when a title gives no slug.
pub const RANDOM_ID_LEN: usize = 12;

/// Turns a title into a lowercase ASCII slug: words of `[a-z0-9]` joined by single `-`.
///
/// Accents are removed (NFD, then combining marks dropped), other scripts are transliterated
/// (`"Привет мир"` -> `"privet-mir"`), punctuation, symbols and emoji separate words, and the result
/// is cut at a word boundary to at most [`MAX_SLUG_BYTES`] bytes. The slug may be empty (emoji-only
/// or empty title); [`friendly_id`] handles that case.
pub fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len().min(4 * MAX_SLUG_BYTES));
    // Whether a separator is pending before the next alphanumeric character.
    let mut pending_sep = false;
    let push_ascii = |slug: &mut String, pending_sep: &mut bool, b: char| {
        if *pending_sep && !slug.is_empty() {
            slug.push('-');
        }
        *pending_sep = false;
        slug.push(b.to_ascii_lowercase());
    };
    for c in title.nfd() {
        // Stop early once the slug is long enough: the cut below only needs one extra word.
        if slug.len() > 2 * MAX_SLUG_BYTES {
            break;
        }
        if c.is_ascii_alphanumeric() {
            push_ascii(&mut slug, &mut pending_sep, c);
        } else if c.is_ascii() {
            pending_sep = true;
        } else if is_combining_mark(c) {
            // Accents of a decomposed letter: drop them, the base letter is already there.
        } else if c.is_alphanumeric() {
            match deunicode::deunicode_char(c) {
                Some(ascii) => {
                    for t in ascii.chars() {
                        if t.is_ascii_alphanumeric() {
                            push_ascii(&mut slug, &mut pending_sep, t);
                        } else {
                            pending_sep = true;
                        }
                    }
                }
                None => pending_sep = true,
            }
        } else {
            // Punctuation, symbols, emoji, non-ASCII spaces.
            pending_sep = true;
        }
    }
    truncate_at_word(&mut slug, MAX_SLUG_BYTES);
    slug
}

/// Cuts an ASCII slug to at most `max` bytes, at the last `-` if there is one in range.
fn truncate_at_word(slug: &mut String, max: usize) {
    if slug.len() <= max {
        return;
    }
    // The slug is ASCII, so every byte index is a char boundary.
    let cut = if slug.as_bytes()[max] == b'-' {
        max
    } else {
        match slug.as_bytes()[..max].iter().rposition(|&b| b == b'-') {
            Some(pos) if pos > 0 => pos,
            _ => max,
        }
    };
    slug.truncate(cut);
    while slug.ends_with('-') {
        slug.pop();
    }
}

/// `len` random ASCII letters and digits.
fn random_alphanumeric(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A random item id of [`RANDOM_ID_LEN`] ASCII letters and digits (about 71 bits of entropy).
pub fn random_id() -> String {
    random_alphanumeric(RANDOM_ID_LEN)
}

/// A readable pubsub item id for a post: `slugify(title)` + `-` + [`SUFFIX_LEN`] random lowercase
/// letters or digits (`"Hanging out at the Café"` -> `"hanging-out-at-the-cafe-k3x9qa"`), or
/// [`random_id`] when the title gives an empty slug.
///
/// The random suffix keeps two posts with the same title apart. To rename a post, publish it under
/// the new id first, then retract the old one.
pub fn friendly_id(title: &str) -> String {
    let slug = slugify(title);
    if slug.is_empty() {
        return random_id();
    }
    let mut id = slug;
    id.push('-');
    id.push_str(&random_alphanumeric(SUFFIX_LEN).to_ascii_lowercase());
    id
}

/// Whether `id` is safe as a pubsub item id in every server and URI seen in practice: non-empty,
/// at most 1024 bytes, printable ASCII without whitespace.
pub fn is_safe_item_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 1024 && id.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_valid(id: &str) {
        assert!(is_safe_item_id(id), "not a safe id: {id:?}");
    }

    #[test]
    fn latin_titles() {
        assert_eq!(
            slugify("Hanging out at the Café Napolitano"),
            "hanging-out-at-the-cafe-napolitano"
        );
        assert_eq!(
            slugify("L'été, à Noël : où êtes-vous ?"),
            "l-ete-a-noel-ou-etes-vous"
        );
        assert_eq!(slugify("Grüße aus Köln, Straße"), "grusse-aus-koln-strasse");
        assert_eq!(slugify("  --Hello,,  World!!--  "), "hello-world");
        assert_eq!(slugify("Ça coûte 15 € – 20 %"), "ca-coute-15-20");
        assert!(!slugify("a,b,c").contains(','));
    }

    #[test]
    fn other_scripts_are_transliterated() {
        assert_eq!(slugify("Привет, мир"), "privet-mir");
        assert_eq!(slugify("Καλημέρα κόσμε"), "kalemera-kosme");
        let ja = slugify("こんにちは世界");
        assert!(!ja.is_empty());
        assert!(ja
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
        assert_eq!(slugify("北京欢迎你"), "bei-jing-huan-ying-ni");
        let ar = slugify("مرحبا بالعالم");
        assert!(!ar.is_empty(), "{ar}");
        assert!(ar.contains('-'));
        assert!(ar
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    }

    #[test]
    fn emoji_and_empty_titles() {
        assert_eq!(slugify("🎉🎉🦄"), "");
        assert_eq!(slugify(""), "");
        assert_eq!(slugify("   \t\n"), "");
        assert_eq!(slugify("Party 🎉 time"), "party-time");
        for t in ["🎉🎉🦄", "", "  ", "…!?"] {
            let id = friendly_id(t);
            assert_eq!(id.len(), RANDOM_ID_LEN);
            assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(friendly_id(""), friendly_id(""));
    }

    #[test]
    fn long_titles_are_cut_at_a_word_boundary() {
        let title = "The quick brown fox jumps over the lazy dog and keeps running far away";
        let slug = slugify(title);
        assert!(slug.len() <= MAX_SLUG_BYTES);
        assert_eq!(
            slug,
            "the-quick-brown-fox-jumps-over-the-lazy-dog-and-keeps"
        );
        // A single huge word is cut hard.
        let slug = slugify(&"a".repeat(500));
        assert_eq!(slug.len(), MAX_SLUG_BYTES);
        // Exactly on a boundary.
        let t = format!("{} {}", "a".repeat(MAX_SLUG_BYTES), "bbb");
        assert_eq!(slugify(&t), "a".repeat(MAX_SLUG_BYTES));
        // Very long non-Latin input stays bounded.
        let slug = slugify(&"Привет мир ".repeat(10_000));
        assert!(slug.len() <= MAX_SLUG_BYTES && !slug.ends_with('-'));
    }

    #[test]
    fn friendly_ids_have_a_random_suffix() {
        let id = friendly_id("Hello World");
        assert!(id.starts_with("hello-world-"), "{id}");
        let suffix = &id["hello-world-".len()..];
        assert_eq!(suffix.len(), SUFFIX_LEN);
        assert!(suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(friendly_id("Hello World"), friendly_id("Hello World"));
        for t in [
            "Café",
            "Grüße",
            "Привет",
            "Καλημέρα",
            "こんにちは",
            "你好",
            "مرحبا",
            "🎉",
            "",
            &"x y ".repeat(100),
        ] {
            assert_valid(&friendly_id(t));
        }
    }
}
