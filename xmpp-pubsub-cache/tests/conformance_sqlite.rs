//! The store conformance suite on SQLite, in a file (WAL) and in memory.

mod file {
    xmpp_pubsub_cache::store_conformance_tests!({
        let dir = tempfile::tempdir().expect("tempdir");
        let store =
            xmpp_pubsub_cache::SqliteStore::open(dir.path().join("cache.db")).expect("open");
        // Keep the directory alive as long as the store.
        std::mem::forget(dir);
        std::sync::Arc::new(store)
    });
}

mod memory {
    xmpp_pubsub_cache::store_conformance_tests!(std::sync::Arc::new(
        xmpp_pubsub_cache::SqliteStore::open_in_memory().expect("open")
    ));
}
