#![doc = include_str!("../README.md")]

pub mod attachments;
#[cfg(feature = "tokio-xmpp")]
pub mod client;
#[cfg(feature = "tokio-xmpp")]
pub mod component;
pub mod connection;
#[cfg(feature = "tokio-xmpp")]
mod driver;
pub mod error;
pub mod events;
pub mod forms;
pub mod lists;
pub mod microblog;
pub mod pps;
pub mod pubsub;
pub mod query;
pub mod rsm;
#[cfg(test)]
mod test_util;
mod util;
pub mod xml;

pub use connection::{Connection, ConnectionExt, Incoming, IqRequest, IqType};
pub use error::{Error, ParseError, Result};
