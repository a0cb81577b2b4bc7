//! OpenPGP for XMPP (XEP-0373/0374) and OpenPGP for pubsub (XEP-0473), with sequoia-openpgp.
//!
//! Work in progress.
