#![doc = include_str!("../README.md")]

pub mod files;
pub mod omemo;
#[cfg(feature = "openpgp")]
pub mod ox;
pub mod pte;
pub mod sce;
#[cfg(feature = "openpgp")]
pub mod secure;
pub mod signing;
#[cfg(feature = "sqlite")]
mod sqlite_util;
