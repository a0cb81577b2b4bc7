//! Example binaries of the xmpp-social SDK: see `src/bin/`.
