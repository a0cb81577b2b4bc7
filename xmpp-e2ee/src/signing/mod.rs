//! Pubsub item signing (XEP-0475/0476): C14N 2.0 canonicalisation and the `<sign-data>` wrapper.
//!
//! Work in progress.
