//! SOCKS5 bytestreams (XEP-0065) and the Jingle SOCKS5 transport (XEP-0260).
//!
//! Work in progress.
