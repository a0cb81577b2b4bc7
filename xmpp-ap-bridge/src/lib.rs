#![doc = include_str!("../README.md")]

pub mod convert;
pub mod error;
pub mod escape;
pub mod fetch;
pub mod gateway;
pub mod handles;
pub mod http;
pub mod queue;
pub mod signature;
pub mod store;
pub mod virtual_node;
pub mod vocab;

pub use error::{Error, EscapeError, FetchError, HandleError, SignatureError};
