//! big-market's domain: entities, rules and services, with no I/O.
//!
//! # Layout
//! - [`strategy`]: probability tables (armory), the pre-draw rule chain, rule trees, the raffle.
//! - [`activity`], [`award`], [`rebate`]: the other domains' entities.
//! - [`error`]: the one error type, carrying upstream's response codes.
//! - [`time`]: the injected clock and upstream's day/month keys.
//! - [`dcc`], [`guard`]: run-time switches and the draw's guards (degrade, rate limit,
//!   circuit breaker); [`erp`]: the operator's back office; [`health`]: store probes.
//! - [`id`]: random-digit ids, redrawn from the caller's generator when taken.
//! - [`sample`]: upstream's final sample configuration, loaded into fresh stores.
//!
//! Adapters implement the ports declared here (e.g. [`strategy::StockStore`]); this crate
//! never depends on them.
//!
//! Outside tests, nothing here may panic on data: no `unwrap`, no indexing (a bad index
//! is a configuration to refuse, not a crash), and no silent `as` where odds (alias
//! tables, award prizes) or money (credits) are computed.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod activity;
pub mod award;
pub mod campaign;
pub mod cluster;
pub mod credit;
pub mod dcc;
pub mod erp;
pub mod error;
pub mod guard;
pub mod health;
pub mod id;
pub mod rebate;
pub mod sample;
pub mod strategy;
pub mod task;
pub mod time;

pub use error::{Error, ResponseCode, Result};
