//! Emoji helpers: splitting a run of emojis into single emojis (XEP-0470 0.1.0 put several emojis in the
//! text of one element), and checking that a reaction a user sends is one emoji (XEP-0444 business rule
//! that XEP-0470 adopts).
//!
//! The splitter is not a full Unicode text segmentation (UAX #29): it knows what glues emoji sequences
//! together (zero width joiner sequences, variation selectors, skin-tone modifiers, keycaps, tag
//! sequences of subdivision flags, regional indicator pairs, combining marks). That is what emoji need.

/// The longest reaction (in bytes of UTF-8) this crate sends. The longest standard emoji sequences
/// (families with skin tones, subdivision flags) are under 40 bytes.
pub const MAX_REACTION_BYTES: usize = 64;

/// The longest reaction text this crate accepts when reading (in bytes); longer is a parse error.
pub const MAX_REACTION_READ_BYTES: usize = 256;

const ZWJ: char = '\u{200D}';

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Characters that extend the preceding character rather than start a new emoji.
fn is_extender(c: char) -> bool {
    matches!(c,
        '\u{200D}'                      // zero width joiner
        | '\u{FE00}'..='\u{FE0F}'       // variation selectors
        | '\u{1F3FB}'..='\u{1F3FF}'     // skin-tone modifiers
        | '\u{20D0}'..='\u{20FF}'       // combining marks for symbols (incl. the keycap U+20E3)
        | '\u{0300}'..='\u{036F}'       // combining diacritical marks
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{E0020}'..='\u{E007F}'     // tags (subdivision flags)
        | '\u{E0100}'..='\u{E01EF}'     // variation selectors supplement
    )
}

/// Splits text into emojis (see the module documentation); whitespace separates and is dropped.
pub fn split_emojis(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut after_zwj = false;
    let mut lone_regional_indicator = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            after_zwj = false;
            lone_regional_indicator = false;
            continue;
        }
        let glue = !current.is_empty()
            && (is_extender(c)
                || after_zwj
                || (lone_regional_indicator && is_regional_indicator(c)));
        if glue {
            // A pair of regional indicators is complete: a third one starts a new flag.
            lone_regional_indicator = false;
        } else {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            lone_regional_indicator = is_regional_indicator(c);
        }
        current.push(c);
        after_zwj = c == ZWJ;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Checks a reaction before sending it: trimmed, not empty, at most [`MAX_REACTION_BYTES`], no control
/// characters, and a single emoji as far as [`split_emojis`] can tell. Returns the trimmed reaction.
pub fn check_reaction(reaction: &str) -> Result<String, String> {
    let r = reaction.trim();
    if r.is_empty() {
        return Err("empty reaction".into());
    }
    if r.len() > MAX_REACTION_BYTES {
        return Err(format!(
            "reaction of {} bytes (at most {MAX_REACTION_BYTES})",
            r.len()
        ));
    }
    if r.chars().any(char::is_control) {
        return Err("control character in a reaction".into());
    }
    if split_emojis(r).len() != 1 {
        return Err(format!("{r:?} is not a single emoji"));
    }
    Ok(r.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_legacy_runs() {
        assert_eq!(split_emojis("👷🔨"), ["👷", "🔨"]);
        assert_eq!(split_emojis(" 🎉🥳 🎈\n"), ["🎉", "🥳", "🎈"]);
        // ZWJ family, skin tone, keycap, flags, subdivision flag, text-style heart.
        let family = "👨\u{200D}👩\u{200D}👧";
        let thumbs = "👍\u{1F3FD}";
        let keycap = "1\u{FE0F}\u{20E3}";
        let flags = "🇫🇷🇩🇪";
        let scotland = "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}";
        let heart = "❤\u{FE0F}";
        let all = format!("{family}{thumbs}{keycap}{flags}{scotland}{heart}");
        assert_eq!(
            split_emojis(&all),
            [family, thumbs, keycap, "🇫🇷", "🇩🇪", scotland, heart]
        );
        assert!(split_emojis("").is_empty());
        assert!(split_emojis("   ").is_empty());
        // A leading extender is kept as its own piece, never dropped or panicking.
        assert_eq!(split_emojis("\u{200D}a"), ["\u{200D}a"]);
    }

    #[test]
    fn checks_reactions() {
        assert_eq!(check_reaction(" 👍 ").as_deref(), Ok("👍"));
        assert!(check_reaction("👨\u{200D}👩\u{200D}👧").is_ok());
        assert!(check_reaction("").is_err());
        assert!(check_reaction("👍👎").is_err());
        assert!(check_reaction("+1").is_err());
        assert!(check_reaction("a\u{7}").is_err());
        assert!(check_reaction(&"👍\u{FE0F}".repeat(20)).is_err());
    }
}
