#![doc = include_str!("../README.md")]

pub mod error;
pub mod xml;

pub use error::{Error, ParseError, Result};
