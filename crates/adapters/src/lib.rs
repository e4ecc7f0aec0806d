//! Adapters: implementations of the domain's ports.
//!
//! - [`sqlite`]: the embedded backend, one SQLite file (WAL) with a group-commit writer.
//!
//! Adapters depend on `big-market-domain`, never on each other or on HTTP.

pub mod sqlite;
