#![doc = include_str!("../README.md")]

pub mod driver;
pub mod error;
pub mod ft;
pub mod hashes;
pub mod ibb;
#[cfg(feature = "jet")]
pub mod jet;
pub mod jingle;
pub mod jingle_ibb;
pub mod jmi;
pub mod session;
pub mod socks5;

pub use error::{Error, Result};

/// A random identifier for sessions and bytestreams: 16 lowercase hex digits.
pub fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}
