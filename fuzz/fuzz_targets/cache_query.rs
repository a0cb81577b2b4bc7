//! Arbitrary search queries (JSON-decoded `Query`) against a small cache: every input must give
//! results or a typed error, never a panic or a raw SQL error for a query mistake.

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use xmpp_pubsub_cache::{Cache, CacheError, NodeKey, Query, SqliteStore};
use xmpp_social::pubsub::Item;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| {
        let store = SqliteStore::open_in_memory().expect("in-memory store");
        let cache = Cache::new(Arc::new(store));
        let key = NodeKey::new("me@example.org", "pubsub.example.org", "urn:xmpp:microblog:0");
        let items: Vec<Item> = (0..20)
            .map(|i| Item {
                id: format!("i{i}"),
                publisher: None,
                payload: format!(
                    "<entry xmlns='http://www.w3.org/2005/Atom'><title>post {i} hello</title>\
                     <category term='t{}'/><published>2024-01-{:02}T00:00:00Z</published></entry>",
                    i % 3,
                    i + 1
                )
                .parse()
                .ok(),
            })
            .collect();
        cache.put_items(&key, &items, 1).expect("seed items");
        cache
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = serde_json::from_slice::<Query>(data) else {
        return;
    };
    match cache().search(&query) {
        Ok(_) | Err(CacheError::Query(_)) => {}
        Err(e) => panic!("query {query:?} gave a non-query error: {e}"),
    }
});
