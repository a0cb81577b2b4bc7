//! Search across two services and three nodes by words, tags (overlap), date ranges and authors,
//! ordered by published date, compared with a brute-force evaluation of the same query over the same
//! items. Also: out-of-order delivery through the analysers, and typed errors for bad queries.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use jid::Jid;
use minidom::Element;
use serde_json::json;
use xmpp_pubsub_cache::sqlite::SqliteOptions;
use xmpp_pubsub_cache::{Cache, CacheError, NodeKey, Query, QueryError, SqliteStore};
use xmpp_social::microblog::{Entry, Person, Text};
use xmpp_social::pubsub::Item;

const WORDS: &[&str] = &[
    "apple", "banana", "cherry", "delta", "echo", "falcon", "garden", "harbor", "island", "jungle",
    "kettle", "lemon", "meadow", "nectar", "orbit", "pepper",
];
const TAGS: &[&str] = &["xmpp", "rust", "music", "travel", "food", "Sport"];
const AUTHORS: &[&str] = &[
    "alice@a.example",
    "bob@b.example",
    "carol@a.example",
    "dave@c.example",
];

struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

#[derive(Debug, Clone)]
struct Post {
    key: NodeKey,
    id: String,
    words: Vec<String>,
    tags: Vec<String>,
    author: String,
    published: DateTime<FixedOffset>,
}

fn nodes() -> Vec<NodeKey> {
    vec![
        NodeKey::new("me@example", "pubsub.a.example", "urn:xmpp:microblog:0"),
        NodeKey::new("me@example", "pubsub.a.example", "news"),
        NodeKey::new("me@example", "pubsub.b.example", "urn:xmpp:microblog:0"),
    ]
}

fn make_posts(n: usize) -> Vec<Post> {
    let mut rng = Lcg(42);
    let base = Utc
        .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let nodes = nodes();
    (0..n)
        .map(|i| {
            let words = (0..3 + rng.next(5))
                .map(|_| WORDS[rng.next(WORDS.len())].to_owned())
                .collect();
            let mut tags: Vec<String> = Vec::new();
            for _ in 0..rng.next(4) {
                let t = TAGS[rng.next(TAGS.len())].to_owned();
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            // Distinct dates (ties would make the order ambiguous), some with a non-UTC offset.
            let secs = i64::try_from(i).expect("small") * 3_607 + rng.next(3_000) as i64;
            let offset = FixedOffset::east_opt(3600 * (rng.next(5) as i32 - 2)).expect("offset");
            Post {
                key: nodes[rng.next(nodes.len())].clone(),
                id: format!("post-{i}"),
                words,
                tags,
                author: AUTHORS[rng.next(AUTHORS.len())].to_owned(),
                published: (base + chrono::Duration::seconds(secs)).with_timezone(&offset),
            }
        })
        .collect()
}

fn to_item(p: &Post) -> Item {
    let mut e = Entry {
        title: Some(Text::plain(p.words[0].clone())),
        ..Entry::default()
    };
    e.content.push(Text::plain(p.words[1..].join(" ")));
    e.authors
        .push(Person::from_jid(&Jid::new(&p.author).expect("jid"), None));
    for t in &p.tags {
        e = e.with_tag(t.clone());
    }
    e = e.with_published(p.published);
    Item {
        id: p.id.clone(),
        publisher: None,
        payload: Some(Element::from(&e)),
    }
}

fn load(posts: &[Post]) -> Cache {
    load_with(posts, SqliteOptions::default())
}

fn load_with(posts: &[Post], options: SqliteOptions) -> Cache {
    let cache = Cache::new(Arc::new(
        SqliteStore::open_in_memory_with(options).expect("store"),
    ));
    for k in nodes() {
        let items: Vec<Item> = posts.iter().filter(|p| p.key == k).map(to_item).collect();
        let r = cache.put_items(&k, &items, 1_000).expect("put");
        assert_eq!(r.inserted as usize, items.len());
    }
    cache
}

/// The brute-force form of a query.
#[derive(Debug, Clone, Default)]
struct Spec {
    all_words: Vec<&'static str>,
    any_words: Vec<&'static str>,
    tags_any: Vec<&'static str>,
    tags_ci: bool,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    authors: Vec<&'static str>,
    services: Vec<&'static str>,
    nodes: Vec<&'static str>,
    desc: bool,
}

impl Spec {
    fn query(&self) -> Query {
        let mut q = Query::new();
        let mut fts = Vec::new();
        if !self.all_words.is_empty() {
            fts.push(self.all_words.join(" AND "));
        }
        if !self.any_words.is_empty() {
            fts.push(format!("({})", self.any_words.join(" OR ")));
        }
        if !fts.is_empty() {
            q = q.fts(fts.join(" AND "));
        }
        if !self.tags_any.is_empty() {
            let op = if self.tags_ci { "ioverlap" } else { "overlap" };
            q = q.filter("tags", op, json!(self.tags_any));
        }
        match (self.after, self.before) {
            (Some(a), Some(b)) => {
                q = q.filter(
                    "published",
                    "between",
                    json!([a.to_rfc3339(), b.to_rfc3339()]),
                )
            }
            (Some(a), None) => q = q.filter("published", ">=", json!(a.to_rfc3339())),
            (None, Some(b)) => q = q.filter("published", "<", json!(b.to_rfc3339())),
            (None, None) => {}
        }
        match self.authors.len() {
            0 => {}
            1 => q = q.filter("author_jid", "==", json!(self.authors[0])),
            _ => q = q.filter("author_jid", "in", json!(self.authors)),
        }
        q.services = self.services.iter().map(|s| (*s).to_owned()).collect();
        q.nodes = self.nodes.iter().map(|s| (*s).to_owned()).collect();
        q.order_by("published", self.desc).limit(10_000)
    }

    fn matches(&self, p: &Post) -> bool {
        let text: Vec<String> = p
            .words
            .iter()
            .cloned()
            .chain(p.tags.iter().map(|t| t.to_lowercase()))
            .collect();
        let has = |w: &str| text.iter().any(|t| t == w);
        let published = p.published.with_timezone(&Utc);
        let tag_hit = |t: &str| {
            p.tags.iter().any(|x| {
                if self.tags_ci {
                    x.eq_ignore_ascii_case(t)
                } else {
                    x == t
                }
            })
        };
        let between = self.after.is_some() && self.before.is_some();
        self.all_words.iter().all(|w| has(w))
            && (self.any_words.is_empty() || self.any_words.iter().any(|w| has(w)))
            && (self.tags_any.is_empty() || self.tags_any.iter().any(|t| tag_hit(t)))
            && self.after.is_none_or(|a| published >= a)
            && self.before.is_none_or(|b| {
                if between {
                    published <= b
                } else {
                    published < b
                }
            })
            && (self.authors.is_empty() || self.authors.contains(&p.author.as_str()))
            && (self.services.is_empty() || self.services.contains(&p.key.service.as_str()))
            && (self.nodes.is_empty() || self.nodes.contains(&p.key.node.as_str()))
    }

    fn expected(&self, posts: &[Post]) -> Vec<(String, String)> {
        let mut hits: Vec<&Post> = posts.iter().filter(|p| self.matches(p)).collect();
        hits.sort_by_key(|p| p.published.with_timezone(&Utc));
        if self.desc {
            hits.reverse();
        }
        hits.iter()
            .map(|p| (p.key.service.clone(), p.id.clone()))
            .collect()
    }
}

fn run(cache: &Cache, q: &Query) -> Vec<(String, String)> {
    cache
        .search(q)
        .expect("search")
        .items
        .into_iter()
        .map(|i| (i.node.service, i.item_id))
        .collect()
}

#[test]
fn search_matches_brute_force() {
    let posts = make_posts(1_500);
    let cache = load(&posts);
    // The same store with the other full-text plan (walk the date index) for every term.
    let walk = load_with(
        &posts,
        SqliteOptions {
            frequent_term: 1,
            very_frequent_term: u32::MAX,
            ..SqliteOptions::default()
        },
    );
    let check_each = load_with(
        &posts,
        SqliteOptions {
            frequent_term: 1,
            very_frequent_term: 1,
            ..SqliteOptions::default()
        },
    );
    let date = |d: u32| {
        Utc.with_ymd_and_hms(2024, 1, d, 0, 0, 0)
            .single()
            .expect("date")
    };
    let mut rng = Lcg(7);
    let mut specs = vec![
        Spec {
            all_words: vec!["apple"],
            desc: true,
            ..Spec::default()
        },
        Spec {
            all_words: vec!["apple", "banana"],
            tags_any: vec!["rust", "xmpp"],
            ..Spec::default()
        },
        Spec {
            any_words: vec!["cherry", "orbit"],
            after: Some(date(10)),
            before: Some(date(30)),
            authors: vec!["alice@a.example"],
            desc: true,
            ..Spec::default()
        },
        Spec {
            tags_any: vec!["sport"],
            tags_ci: true,
            services: vec!["pubsub.b.example"],
            ..Spec::default()
        },
        Spec {
            tags_any: vec!["sport"],
            ..Spec::default()
        },
        Spec {
            before: Some(date(5)),
            nodes: vec!["news"],
            authors: vec!["bob@b.example", "dave@c.example"],
            desc: true,
            ..Spec::default()
        },
    ];
    // And random combinations.
    for _ in 0..60 {
        let pick = |rng: &mut Lcg, from: &'static [&'static str], max: usize| {
            let n = rng.next(max + 1);
            (0..n)
                .map(|_| from[rng.next(from.len())])
                .collect::<Vec<_>>()
        };
        let d1 = 1 + rng.next(40) as u32;
        let d2 = d1 + rng.next(30) as u32;
        let day = |d: u32| date(1) + chrono::Duration::days(i64::from(d));
        specs.push(Spec {
            all_words: pick(&mut rng, WORDS, 2),
            any_words: pick(&mut rng, WORDS, 3),
            tags_any: pick(&mut rng, TAGS, 2),
            tags_ci: rng.next(2) == 0,
            after: (rng.next(2) == 0).then(|| day(d1)),
            before: (rng.next(2) == 0).then(|| day(d2)),
            authors: pick(&mut rng, AUTHORS, 2),
            services: pick(&mut rng, &["pubsub.a.example", "pubsub.b.example"], 1),
            nodes: pick(&mut rng, &["urn:xmpp:microblog:0", "news"], 1),
            desc: rng.next(2) == 0,
        });
    }
    let mut non_empty = 0;
    for s in &specs {
        let expected = s.expected(&posts);
        non_empty += usize::from(!expected.is_empty());
        assert_eq!(run(&cache, &s.query()), expected, "{s:?}");
        assert_eq!(run(&walk, &s.query()), expected, "date-index plan: {s:?}");
        assert_eq!(
            run(&check_each, &s.query()),
            expected,
            "check-each plan: {s:?}"
        );
    }
    assert!(
        non_empty > specs.len() / 3,
        "queries too selective: {non_empty}"
    );

    // Paging with cursors gives the same rows.
    let s = &specs[0];
    let all = s.expected(&posts);
    let mut q = s.query().limit(7);
    let mut paged = Vec::new();
    loop {
        let page = cache.search(&q).expect("page");
        paged.extend(page.items.into_iter().map(|i| (i.node.service, i.item_id)));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(paged, all);
}

#[test]
fn bad_queries_give_typed_errors() {
    let cache = load(&make_posts(20));
    let err = |q: Query| match cache.search(&q) {
        Err(CacheError::Query(e)) => e,
        other => panic!("expected a query error, got {other:?}"),
    };
    assert!(matches!(
        err(Query::new().filter("no_such_field", "==", json!(1))),
        QueryError::UnknownField { .. }
    ));
    assert!(matches!(
        err(Query::new().filter("published", ">", json!(true))),
        QueryError::WrongValueType { .. }
    ));
    assert!(matches!(
        err(Query::new().filter("title", "==", json!(3))),
        QueryError::WrongValueType { .. }
    ));
    assert!(matches!(
        err(Query::new().filter("title'); DROP TABLE items; --", "==", json!("x"))),
        QueryError::InvalidPath { .. }
    ));
    assert!(matches!(
        err(Query::new().fts("\"unbalanced")),
        QueryError::FtsSyntax { .. }
    ));
    assert!(matches!(
        err(Query::new().fts("apple AND")),
        QueryError::FtsSyntax { .. }
    ));
    assert!(matches!(
        err(Query::new().order_by("nope", false)),
        QueryError::UnknownField { .. }
    ));
    // Values are bound, never spliced: this finds nothing and breaks nothing.
    let r = cache
        .search(&Query::new().filter("title", "==", json!("x' OR 1=1 --")))
        .expect("search");
    assert!(r.items.is_empty());
    assert_eq!(cache.stats().expect("stats").items, 20);
}

#[test]
fn out_of_order_delivery() {
    let cache = Cache::new(Arc::new(SqliteStore::open_in_memory().expect("store")));
    let k = nodes()[0].clone();
    let post = |id: &str, title: &str, updated: i64| {
        let mut e = Entry {
            title: Some(Text::plain(title)),
            ..Entry::default()
        };
        e = e.with_updated(
            Utc.timestamp_opt(updated, 0)
                .single()
                .expect("date")
                .fixed_offset(),
        );
        Item {
            id: id.into(),
            publisher: None,
            payload: Some(Element::from(&e)),
        }
    };
    // The update arrives before its create.
    cache
        .put_items(&k, &[post("a", "second version", 200)], 20)
        .expect("put");
    let r = cache
        .put_items(&k, &[post("a", "first version", 100)], 10)
        .expect("put");
    assert_eq!(r.stale, 1);
    // Same, but the old version is even observed later: the payload date decides.
    cache
        .put_items(&k, &[post("b", "new", 200)], 30)
        .expect("put");
    assert_eq!(
        cache
            .put_items(&k, &[post("b", "old", 100)], 40)
            .expect("put")
            .stale,
        1
    );
    // A retraction of an unknown item, then the (older) publish of it.
    cache
        .store()
        .retract_items(&k, &["c".into()], 50)
        .expect("retract");
    assert_eq!(
        cache
            .put_items(&k, &[post("c", "ghost", 1)], 45)
            .expect("put")
            .stale,
        1
    );
    let items = cache.items(&k).expect("items");
    let titles: Vec<_> = items
        .iter()
        .map(|i| {
            (
                i.item_id.as_str(),
                i.parsed.as_ref().expect("parsed")["title"].clone(),
            )
        })
        .collect();
    assert_eq!(
        titles,
        [("a", json!("second version")), ("b", json!("new"))]
    );
    let hits = cache
        .search(&Query::new().fts("ghost OR first"))
        .expect("search");
    assert!(hits.items.is_empty());
}
