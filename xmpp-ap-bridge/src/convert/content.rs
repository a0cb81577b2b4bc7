//! Content: XHTML (XEP-0277, XEP-0071 style `<div/>`) <-> HTML (ActivityPub `content`), with the
//! incoming HTML sanitised, plain-text fallbacks, and language maps <-> `xml:lang`.
//!
//! Incoming HTML goes through [`ammonia`] with an allow-list close to Mastodon's: `p br a span strong em b
//! i u s del code pre blockquote ul ol li h1-h6`; `a[href rel class]` (rel values and classes from a
//! short list), `span[class]`, `ol[start reversed]`; URLs only `http`, `https`, `xmpp`, `mailto`,
//! `gemini`, `magnet`, never relative. Scripts and styles are dropped with their content, every other
//! element is unwrapped (its text kept), comments and event-handler attributes are dropped. Outgoing
//! XHTML written by XMPP clients is sanitised the same way before it leaves.

use std::collections::{BTreeMap, HashMap, HashSet};

use minidom::{Element, Node};
use xmpp_social::microblog::{Text, Xhtml, NS_XHTML};

use super::ConvertError;

/// The largest HTML (or XHTML) body converted (256 KiB, the XMPP entry text limit).
pub const MAX_HTML_BYTES: usize = 256 * 1024;
/// The deepest XHTML nesting written out as HTML; deeper content is kept as text.
pub const MAX_XHTML_DEPTH: usize = 48;

const TAGS: &[&str] = &[
    "p",
    "br",
    "a",
    "span",
    "strong",
    "em",
    "b",
    "i",
    "u",
    "s",
    "del",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];
const URL_SCHEMES: &[&str] = &["http", "https", "xmpp", "mailto", "gemini", "magnet"];
const REL_VALUES: &[&str] = &[
    "tag",
    "me",
    "nofollow",
    "noopener",
    "noreferrer",
    "ugc",
    "mention",
];

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static SANITIZER: std::sync::LazyLock<ammonia::Builder<'static>> =
        std::sync::LazyLock::new(build_sanitizer);
    &SANITIZER
}

fn build_sanitizer() -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::empty();
    let tag_attributes: HashMap<&str, HashSet<&str>> = HashMap::from([
        ("a", HashSet::from(["href", "rel"])),
        ("ol", HashSet::from(["start", "reversed"])),
    ]);
    let classes: HashMap<&str, HashSet<&str>> = HashMap::from([
        (
            "a",
            HashSet::from([
                "h-card",
                "u-url",
                "mention",
                "hashtag",
                "invisible",
                "ellipsis",
            ]),
        ),
        ("span", HashSet::from(["h-card", "invisible", "ellipsis"])),
    ]);
    b.tags(TAGS.iter().copied().collect())
        .clean_content_tags(HashSet::from(["script", "style"]))
        .tag_attributes(tag_attributes)
        .allowed_classes(classes)
        .url_schemes(URL_SCHEMES.iter().copied().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .link_rel(None)
        .strip_comments(true)
        .attribute_filter(|element, attribute, value| match (element, attribute) {
            ("a", "rel") => {
                let kept: Vec<&str> = value
                    .split_ascii_whitespace()
                    .filter(|v| REL_VALUES.contains(&v.to_ascii_lowercase().as_str()))
                    .collect();
                if kept.is_empty() {
                    None
                } else {
                    Some(kept.join(" ").into())
                }
            }
            ("ol", "start") => value
                .trim()
                .parse::<u32>()
                .ok()
                .map(|n| n.to_string().into()),
            _ => Some(value.into()),
        });
    b
}

fn check_size(what: &'static str, s: &str) -> Result<(), ConvertError> {
    if s.len() > MAX_HTML_BYTES {
        return Err(ConvertError::TooLarge {
            what,
            size: s.len(),
            limit: MAX_HTML_BYTES,
        });
    }
    Ok(())
}

/// Sanitises HTML received from the fediverse (see the module documentation for the allow-list).
pub fn sanitize_html(html: &str) -> Result<String, ConvertError> {
    check_size("HTML content", html)?;
    let clean = sanitizer().clean(html).to_string();
    // ammonia leaves `class=""` where no allowed class remained. In serialised HTML a `<` is always
    // a tag (text has it as `&lt;`), so these replacements only touch tags.
    Ok(clean
        .replace("<span class=\"\">", "<span>")
        .replace("<a class=\"\">", "<a>")
        .replace("<a class=\"\" ", "<a "))
}

/// Sanitises incoming HTML and turns it into an XHTML `<div/>` for an Atom `type='xhtml'` content.
///
/// Fails with [`ConvertError::TooLarge`] over [`MAX_HTML_BYTES`], and with [`ConvertError::Xmpp`] when
/// the result is nested deeper than XMPP entries accept; callers fall back to plain text
/// ([`html_to_plain`]).
pub fn html_to_xhtml(html: &str) -> Result<Xhtml, ConvertError> {
    let clean = xml_safe(&sanitize_html(html)?);
    // The serialiser of html5ever writes HTML: the only void element the allow-list keeps is <br>
    // (written without attributes), and the only entity that is not XML is &nbsp;. Everything else
    // (escaped text, double-quoted attributes, closed elements) is already well-formed XML.
    let xml = clean.replace("<br>", "<br/>").replace("&nbsp;", "&#160;");
    Ok(Xhtml::parse(&xml)?)
}

/// Writes an XHTML `<div/>` as sanitised HTML for an ActivityPub `content`.
pub fn xhtml_to_html(xhtml: &Xhtml) -> Result<String, ConvertError> {
    let mut out = String::new();
    for node in xhtml.element().nodes() {
        write_node(node, &mut out, 1);
        if out.len() > 2 * MAX_HTML_BYTES {
            return Err(ConvertError::TooLarge {
                what: "XHTML content",
                size: out.len(),
                limit: MAX_HTML_BYTES,
            });
        }
    }
    sanitize_html(&out)
}

fn write_node(node: &Node, out: &mut String, depth: usize) {
    match node {
        Node::Text(t) => escape_into(t, out, false),
        Node::Element(e) => write_element(e, out, depth),
    }
}

fn write_element(el: &Element, out: &mut String, depth: usize) {
    if depth > MAX_XHTML_DEPTH || !el.has_ns(NS_XHTML) {
        // Too deep, or not XHTML: keep the text only.
        escape_into(&el.text(), out, false);
        return;
    }
    let name = el.name();
    out.push('<');
    out.push_str(name);
    for ((ns, attr), value) in el.attrs().iter() {
        // Attribute names are XML names: safe to copy. The sanitiser drops what is not allowed.
        if !ns.is_none() {
            continue;
        }
        out.push(' ');
        out.push_str(attr.as_str());
        out.push_str("=\"");
        escape_into(value, out, true);
        out.push('"');
    }
    out.push('>');
    if name == "br" {
        return;
    }
    for child in el.nodes() {
        write_node(child, out, depth + 1);
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn escape_into(s: &str, out: &mut String, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// `s` without the characters XML 1.0 cannot carry (NUL, most C0 controls, U+FFFE/U+FFFF): every
/// string taken from ActivityPub into an XMPP element goes through it (minidom's writer panics on
/// them).
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|c| xmpp_social::xml::is_xml_char(*c))
        .collect()
}

/// HTML escaping of text.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(s, &mut out, true);
    out
}

/// Plain text as HTML: one `<p>` per paragraph (blank-line separated), `<br>` for line breaks.
pub fn plain_to_html(text: &str) -> String {
    let mut out = String::new();
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        out.push_str("<p>");
        for (i, line) in para.trim_matches('\n').split('\n').enumerate() {
            if i > 0 {
                out.push_str("<br>");
            }
            escape_into(line, &mut out, false);
        }
        out.push_str("</p>");
    }
    out
}

/// A plain-text rendering of (untrusted) HTML: tags removed, paragraphs and line breaks kept as
/// newlines, entities decoded.
pub fn html_to_plain(html: &str) -> Result<String, ConvertError> {
    check_size("HTML content", html)?;
    // Sanitise to the known shape first: no scripts, no comments, no raw-text elements.
    let clean = sanitizer().clean(html).to_string();
    let mut out = String::with_capacity(clean.len());
    let mut rest = clean.as_str();
    while let Some(lt) = rest.find('<') {
        decode_entities_into(&rest[..lt], &mut out);
        let after = &rest[lt + 1..];
        let gt = after.find('>').unwrap_or(after.len());
        let tag = &after[..gt];
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_ascii_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let closing = tag.starts_with('/');
        match name {
            "br" => out.push('\n'),
            "p" | "blockquote" | "pre" | "ul" | "ol" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6"
                if closing =>
            {
                out.push_str("\n\n")
            }
            "li" if closing => out.push('\n'),
            _ => {}
        }
        rest = after.get(gt + 1..).unwrap_or("");
    }
    decode_entities_into(rest, &mut out);
    Ok(xml_safe(out.trim()))
}

fn decode_entities_into(s: &str, out: &mut String) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// The HTML of an Atom text construct: XHTML written out, HTML sanitised, text escaped.
pub fn text_to_html(text: &Text) -> Result<String, ConvertError> {
    match text {
        Text::Plain(s) => {
            check_size("text content", s)?;
            Ok(plain_to_html(s))
        }
        Text::Html(h) => sanitize_html(h),
        Text::Xhtml(x) => xhtml_to_html(x),
    }
}

/// Picks one language of a language map: `prefer` if present (a primary-subtag match counts), else
/// `und`, else the first. Returns the language (`None` for `und`) and the value.
pub fn pick_language<'a>(
    map: &'a BTreeMap<String, String>,
    prefer: Option<&str>,
) -> Option<(Option<&'a str>, &'a str)> {
    let primary = |l: &str| l.split('-').next().unwrap_or(l).to_ascii_lowercase();
    let found = prefer
        .and_then(|p| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(p))
                .or_else(|| map.iter().find(|(k, _)| primary(k) == primary(p)))
        })
        .or_else(|| map.iter().find(|(k, _)| k.as_str() == "und"))
        .or_else(|| map.iter().next())?;
    let lang = Some(found.0.as_str()).filter(|l| *l != "und");
    Some((lang, found.1.as_str()))
}

/// A language map with one value, unless the language is unknown.
pub fn language_map(lang: Option<&str>, value: &str) -> BTreeMap<String, String> {
    match lang {
        Some(l) if !l.is_empty() => BTreeMap::from([(l.to_owned(), value.to_owned())]),
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keeps_mastodon_markup() {
        let html = r#"<p>Hello <span class="h-card"><a href="https://ap.example.org/_ap/actor/alice@example.org" class="u-url mention" rel="nofollow noopener">@<span>alice</span></a></span> <a href="https://m.example/tags/xmpp" class="mention hashtag" rel="tag">#<span>xmpp</span></a></p><p>line<br>two</p>"#;
        assert_eq!(sanitize_html(html).unwrap(), html);
        let x = html_to_xhtml(html).unwrap();
        let back = xhtml_to_html(&x).unwrap();
        // Everything is kept (attributes come back in XML order).
        assert_eq!(
            back,
            r#"<p>Hello <span class="h-card"><a class="u-url mention" href="https://ap.example.org/_ap/actor/alice@example.org" rel="nofollow noopener">@<span>alice</span></a></span> <a class="mention hashtag" href="https://m.example/tags/xmpp" rel="tag">#<span>xmpp</span></a></p><p>line<br>two</p>"#
        );
        assert_eq!(xhtml_to_html(&html_to_xhtml(&back).unwrap()).unwrap(), back);
    }

    #[test]
    fn strips_hostile_markup() {
        let cases = [
            ("<p>a<script>alert(1)</script>b</p>", "<p>ab</p>"),
            ("<style>p{}</style><p>x</p>", "<p>x</p>"),
            (
                r#"<p onclick="alert(1)" style="color:red">x</p>"#,
                "<p>x</p>",
            ),
            (r#"<a href="javascript:alert(1)">x</a>"#, "<a>x</a>"),
            (r#"<a href="JaVaScRiPt:alert(1)">x</a>"#, "<a>x</a>"),
            (r#"<a href="data:text/html,<script>">x</a>"#, "<a>x</a>"),
            (r#"<a href="/relative">x</a>"#, "<a>x</a>"),
            (r#"<img src=x onerror="alert(1)">y"#, "y"),
            (r#"<iframe src="https://evil.example"></iframe>z"#, "z"),
            (r#"<svg><script>alert(1)</script></svg>w"#, "w"),
            ("<!-- secret --><b>b</b>", "<b>b</b>"),
            (
                r#"<a href="https://x.example" rel="stylesheet noopener" class="evil mention">x</a>"#,
                r#"<a href="https://x.example" rel="noopener" class="mention">x</a>"#,
            ),
            (
                r#"<a class="evil" href="https://x.example">x</a>"#,
                r#"<a href="https://x.example">x</a>"#,
            ),
            (r#"<span class="evil">t</span>"#, "<span>t</span>"),
            ("<div><table><tr><td>cell</td></tr></table></div>", "cell"),
            ("<form><input value=x><button>go</button></form>", "go"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_html(input).unwrap(), expected, "{input}");
            // And the XHTML conversion keeps no trace of it either.
            let x = html_to_xhtml(input).unwrap();
            let mut xml = Vec::new();
            x.element().write_to(&mut xml).unwrap();
            let xml = String::from_utf8(xml).unwrap().to_ascii_lowercase();
            for bad in [
                "script",
                "javascript",
                "onclick",
                "onerror",
                "style",
                "iframe",
                "evil",
            ] {
                assert!(!xml.contains(bad), "{input} -> {xml}");
            }
        }
    }

    #[test]
    fn entities_and_nbsp_become_xml() {
        let x = html_to_xhtml("<p>a&nbsp;b &amp; c &lt;d&gt; &quot;e&quot; &#128512;</p>").unwrap();
        assert_eq!(
            x.element().children().next().unwrap().text(),
            "a\u{a0}b & c <d> \"e\" 😀"
        );
        assert_eq!(
            html_to_plain("<p>a&nbsp;b &amp; c</p><p>x<br>y</p>").unwrap(),
            "a\u{a0}b & c\n\nx\ny"
        );
    }

    #[test]
    fn hostile_xhtml_is_sanitised_on_the_way_out() {
        let x = Xhtml::parse(
            r#"<p onclick="x()">hi <a href="javascript:alert(1)">l</a><script>evil()</script></p>"#,
        )
        .unwrap();
        assert_eq!(xhtml_to_html(&x).unwrap(), "<p>hi <a>l</a></p>");
    }

    #[test]
    fn deep_and_huge_input() {
        // Deep nesting: html5ever and ammonia are iterative; the XML side refuses, plain text works.
        let deep = format!("{}x{}", "<b>".repeat(10_000), "</b>".repeat(10_000));
        assert!(sanitize_html(&deep).is_ok());
        assert!(html_to_xhtml(&deep).is_err());
        assert_eq!(html_to_plain(&deep).unwrap(), "x");
        // Unclosed tags.
        let unclosed = "<p>".repeat(5_000) + "y";
        assert!(html_to_plain(&unclosed).unwrap().contains('y'));
        // Over the size limit.
        let huge = "a".repeat(MAX_HTML_BYTES + 1);
        assert!(matches!(
            sanitize_html(&huge),
            Err(ConvertError::TooLarge { .. })
        ));
        assert!(matches!(
            html_to_xhtml(&huge),
            Err(ConvertError::TooLarge { .. })
        ));
    }

    #[test]
    fn plain_text_round_trip() {
        let text = "first <line>\nsecond & more\n\nnext paragraph";
        let html = plain_to_html(text);
        assert_eq!(
            html,
            "<p>first &lt;line&gt;<br>second &amp; more</p><p>next paragraph</p>"
        );
        assert_eq!(html_to_plain(&html).unwrap(), text);
        let x = html_to_xhtml(&html).unwrap();
        assert_eq!(xhtml_to_html(&x).unwrap(), html);
    }

    #[test]
    fn languages() {
        let map: BTreeMap<String, String> = [("de", "Hallo"), ("en-GB", "Hello"), ("und", "?")]
            .into_iter()
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .collect();
        assert_eq!(
            pick_language(&map, Some("en")),
            Some((Some("en-GB"), "Hello"))
        );
        assert_eq!(pick_language(&map, Some("DE")), Some((Some("de"), "Hallo")));
        assert_eq!(pick_language(&map, Some("fr")), Some((None, "?")));
        assert_eq!(pick_language(&map, None), Some((None, "?")));
        assert_eq!(pick_language(&BTreeMap::new(), None), None);
        assert!(language_map(None, "x").is_empty());
        assert_eq!(language_map(Some("fr"), "x").len(), 1);
    }
}
