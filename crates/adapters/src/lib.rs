//! Adapters: implementations of the domain's ports.
//!
//! - [`sqlite`]: the embedded backend, one SQLite file (WAL) with a group-commit writer.
//! - [`inprocess`]: the embedded message bus (topics to in-process consumers).
//! - [`amqp`]: RabbitMQ: the outbox publisher (confirms) and consumers (manual acks).
//! - [`gateway`]: the external account service for `openai_use_count` prizes.
//! - [`mysql`]: the production store on MariaDB/MySQL in upstream's sharded layout
//!   ([`mysql::MysqlStore`]) and its migrations (`migrate`).
//! - [`router`]: upstream's userId sharding formula (Java `String.hashCode`).
//! - [`redis_store`]: production stock with reservations, locks, cache invalidation.
//!
//! Adapters depend on `big-market-domain`, never on each other or on HTTP. Outside
//! tests nothing here unwraps or indexes: data a store returns never panics the server.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod amqp;
pub mod gateway;
pub mod inprocess;
pub mod mysql;
pub mod redis_store;
pub mod router;
pub mod sqlite;
mod states;
