#![doc = include_str!("../README.md")]

mod ejabberd;
mod error;
mod ibr;
mod install;
mod prosody;
mod server;
mod util;

use std::fmt;

pub use error::TestkitError;
pub use install::{ensure_installed, is_installed};
pub use server::{Account, ProsodyNetwork, Server, StartOptions, HTTP_UPLOAD_MAX_FILE_SIZE};

/// Which XMPP server implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    /// Prosody 0.12 (Debian package `prosody`), with SQLite storage.
    Prosody,
    /// ejabberd 23.01 (Debian package `ejabberd`), with Mnesia storage.
    Ejabberd,
}

impl ServerKind {
    /// Both kinds, for tests that run against every server.
    pub const ALL: [ServerKind; 2] = [ServerKind::Prosody, ServerKind::Ejabberd];

    /// A short lower-case name (`prosody`, `ejabberd`), usable in file names.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Prosody => "prosody",
            ServerKind::Ejabberd => "ejabberd",
        }
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerKind::Prosody => "Prosody",
            ServerKind::Ejabberd => "ejabberd",
        })
    }
}
