//! Pubsub targeted encryption (XEP-0477).
//!
//! Work in progress.
