//! Benchmarks of the xmpp-social SDK crates (criterion). Run them with
//! `cargo bench -p xmpp-social-benches`; each bench prints its own comparison figures at the end.
//!
//! - `entry_parsing`: a realistic ~1.7 KB XEP-0277 item (Libervia-style) parsed into a minidom
//!   `Element`, converted from that `Element` into the typed `Entry`, and text to `Entry` end to end.
//!   The project's acceptance criterion is that the typed conversion costs no more than the DOM
//!   parse it starts from.
//! - `cache`, `omemo_ratchet`, `file_encryption`: the pubsub cache's queries; the OMEMO Double Ratchet
//!   against vodozemac's Olm session and python-omemo; streaming AES-GCM against the aes-gcm crate's
//!   one-shot encryption (`-- --ratio-only` skips criterion and prints CPU-time and wall-time ratios).
//! - `ap_inbox`: signed inbound Create(Note) activities accepted per second by the ActivityPub gateway's
//!   HTTP inbox against Fedify's inbox (`interop/fedify/bench-inbox.mjs`), same client, same concurrency,
//!   pre-signed requests, counts checked on both sides.
