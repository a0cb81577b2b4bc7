//! XEP-0277 entry parsing: (a) XML text -> minidom `Element`, (b) `Element` -> typed `Entry`,
//! (c) text -> `Entry` end to end, on a realistic ~1.7 KB Libervia-style blog item.
//!
//! Acceptance criterion: (b) costs no more than (a). Besides criterion's report, `main` times both
//! with a plain loop and prints `entry-conversion / minidom-parse ratio: X`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use minidom::Element;
use xmpp_social::microblog::Entry;

/// A blog post as Libervia writes it: title, XHTML and text content, author with an `xmpp:` URI,
/// published/updated, three tags, the bare item id, a comments link and an attached picture.
const LIBERVIA_ITEM: &str = r#"<entry xmlns="http://www.w3.org/2005/Atom" xml:lang="en"><title type="text">Libervia progress note 2022-W45</title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello, it's time for a long overdue <strong>progress note</strong>.</p><p>I'll talk here about the work made on the <a href="https://www.w3.org/TR/activitypub/">ActivityPub</a> gateway and on end-to-end encryption around pubsub.</p><p>If everything goes well, this blog post should be accessible from XMPP and ActivityPub (and HTTP and Atom feed), using the same identifier.</p><p>The work made on the <em>AP gateway</em> has been possible thanks to a NLnet/NGI0 grant.</p></div></content><content type="text">Hello, it's time for a long overdue progress note.

I'll talk here about the work made on the ActivityPub gateway and on end-to-end encryption around pubsub.

If everything goes well, this blog post should be accessible from XMPP and ActivityPub (and HTTP and Atom feed), using the same identifier.

The work made on the AP gateway has been possible thanks to a NLnet/NGI0 grant.</content><author><name>goffi</name><uri>xmpp:goffi@goffi.org</uri></author><updated>2022-11-08T09:30:12Z</updated><published>2022-11-08T09:30:12Z</published><category term="libervia"/><category term="XMPP"/><category term="progress"/><id>libervia-progress-note-2022-w45-hR4t</id><link href="xmpp:pubsub.goffi.org?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2Flibervia-progress-note-2022-w45-hR4t" rel="replies" title="comments"/><link rel="enclosure" href="https://goffi.org/upload/libervia-ap-gateway-screenshot.png" type="image/png" length="48213" title="The gateway in action"/></entry>"#;

fn minidom_parse(xml: &str) -> Element {
    xml.parse::<Element>().expect("benchmark input parses")
}

fn benches(c: &mut Criterion) {
    let element = minidom_parse(LIBERVIA_ITEM);
    // Sanity: the input is what the benchmark claims.
    let entry = Entry::try_from(&element).expect("benchmark input is an entry");
    assert_eq!(entry.content.len(), 2);
    assert_eq!(entry.categories.len(), 3);
    assert_eq!(entry.comments().len(), 1);
    assert_eq!(entry.enclosures().count(), 1);

    let mut group = c.benchmark_group("xep0277_entry");
    group.throughput(Throughput::Bytes(LIBERVIA_ITEM.len() as u64));
    group.bench_function("a_minidom_parse", |b| {
        b.iter(|| minidom_parse(black_box(LIBERVIA_ITEM)))
    });
    group.bench_function("b_element_to_entry", |b| {
        b.iter(|| Entry::try_from(black_box(&element)).expect("entry"))
    });
    group.bench_function("c_text_to_entry", |b| {
        b.iter(|| Entry::from_xml_str(black_box(LIBERVIA_ITEM)).expect("entry"))
    });
    group.bench_function("d_entry_to_element", |b| {
        b.iter(|| Element::from(black_box(&entry)))
    });
    group.finish();
}

/// Mean time per call of `f` over `iters` calls.
fn time_per_call<T>(iters: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        black_box(f());
    }
    start.elapsed() / iters
}

/// Times (a), (b) and (c) with plain loops, interleaved round by round so that load from other
/// processes hits all three alike, keeps each one's best round, and prints the ratio b/a.
fn print_ratio(full: bool) {
    let (rounds, iters) = if full { (15, 10_000) } else { (1, 200) };
    let element = minidom_parse(LIBERVIA_ITEM);
    // Warm up caches and the allocator.
    time_per_call(iters / 10 + 1, || minidom_parse(black_box(LIBERVIA_ITEM)));
    let (mut parse, mut convert, mut end_to_end) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        parse = parse.min(time_per_call(iters, || {
            minidom_parse(black_box(LIBERVIA_ITEM))
        }));
        convert = convert.min(time_per_call(iters, || {
            Entry::try_from(black_box(&element)).expect("entry")
        }));
        end_to_end = end_to_end.min(time_per_call(iters, || {
            Entry::from_xml_str(black_box(LIBERVIA_ITEM)).expect("entry")
        }));
    }
    let per_sec = |d: Duration| 1.0 / d.as_secs_f64();
    println!(
        "\nXEP-0277 item of {} bytes (best of {rounds} rounds x {iters} calls):",
        LIBERVIA_ITEM.len()
    );
    for (label, d) in [
        ("(a) text -> minidom Element", parse),
        ("(b) Element -> Entry       ", convert),
        ("(c) text -> Entry          ", end_to_end),
    ] {
        println!(
            "  {label}: {:>8.2} us  ({:>9.0} items/s)",
            d.as_secs_f64() * 1e6,
            per_sec(d)
        );
    }
    println!(
        "entry-conversion / minidom-parse ratio: {:.3}",
        convert.as_secs_f64() / parse.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (quick smoke run then).
    let full = std::env::args().any(|a| a == "--bench");
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
    print_ratio(full);
}
