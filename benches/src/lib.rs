//! Benchmarks of the xmpp-social SDK crates (criterion). Run them with
//! `cargo bench -p xmpp-social-benches`; each bench prints its own comparison figures at the end.
//!
//! - `entry_parsing`: a realistic ~1.7 KB XEP-0277 item (Libervia-style) parsed into a minidom
//!   `Element`, converted from that `Element` into the typed `Entry`, and text to `Entry` end to end.
//!   The project's acceptance criterion is that the typed conversion costs no more than the DOM
//!   parse it starts from.
