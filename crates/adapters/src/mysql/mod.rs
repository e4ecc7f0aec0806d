//! The production store on MariaDB/MySQL, in upstream's layout: a config database
//! (`big_market`) and `db_count` user databases (`big_market_01`, …), each holding
//! `tb_count` copies of the sharded tables (`_000`, …). A user's rows live where
//! upstream's router puts them ([`crate::router`]), so Java and Rust nodes share data.
//!
//! # Layout
//! - `store`: the pool, shards, the unit of work ([`MysqlTx`]) and its helpers, the
//!   store probe; `migrate` and `seed`: schema and sample data.
//! - By domain, each with its unit-of-work ports and repository: `activity` (draw and
//!   recharge), `award`, `credit`, `rebate`, `task` (the outbox), `strategy`, `erp`;
//!   `config` reads the config database, `campaign` writes it.
//! - `stock`: award and SKU stock in Redis for this store; `group`: group commit of
//!   draws, points prizes and task completions.

mod activity;
mod award;
mod campaign;
mod config;
mod credit;
mod erp;
mod fairness;
mod group;
pub mod migrate;
mod rebate;
pub mod reshard;
mod seed;
mod stock;
pub mod store;
mod strategy;
mod task;

use crate::router::{Route, Router};
use std::time::Duration;

pub use group::MAX_GROUP;
pub use migrate::{MigrateReport, migrate};
pub use store::{MysqlStore, MysqlTx, UserDb};

/// Where the databases are and how users are spread over them. `Debug` leaves the URL's
/// credentials out.
#[derive(Clone)]
pub struct MysqlOptions {
    /// The server, without a database: `mysql://user:password@host:3306`. It holds the
    /// config database, and the user databases unless `shard_urls` is set.
    pub url: String,
    /// One server per user database (entry *i* holds user database *i + 1*), as
    /// upstream's router gives each database its own data source; empty: all on `url`.
    pub shard_urls: Vec<String>,
    /// The config database; user databases are named after it with `_01`, `_02`, ….
    pub database: String,
    pub db_count: u32,
    pub tb_count: u32,
    /// How long to wait for the server before giving up with an error naming it.
    pub connect_timeout: Duration,
    /// Most connections the store's pool opens (one transaction holds one).
    pub pool_size: u32,
}

impl std::fmt::Debug for MysqlOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlOptions")
            .field("server", &self.server())
            .field(
                "shard_servers",
                &self
                    .shard_urls
                    .iter()
                    .map(|u| server_of(u))
                    .collect::<Vec<_>>(),
            )
            .field("database", &self.database)
            .field("db_count", &self.db_count)
            .field("tb_count", &self.tb_count)
            .finish_non_exhaustive()
    }
}

impl Default for MysqlOptions {
    fn default() -> Self {
        Self {
            url: "mysql://root@127.0.0.1:3306".into(),
            shard_urls: Vec::new(),
            database: "big_market".into(),
            db_count: 2,
            tb_count: 4,
            connect_timeout: Duration::from_secs(5),
            pool_size: 16,
        }
    }
}

/// Failures of the MySQL store.
#[derive(Debug, thiserror::Error)]
pub enum MysqlError {
    #[error("MySQL server {server} cannot be reached: {source}")]
    Unreachable { server: String, source: sqlx::Error },
    #[error("mysql: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("mysql configuration: {0}")]
    Config(String),
    #[error("upstream dump: {0}")]
    Dump(String),
    #[error("migration {migration} on {database} failed at `{statement}`: {source}")]
    Migration {
        database: String,
        migration: String,
        statement: String,
        source: sqlx::Error,
    },
}

impl From<MysqlError> for big_market_domain::Error {
    fn from(e: MysqlError) -> Self {
        big_market_domain::Error::internal(e)
    }
}

impl MysqlOptions {
    /// Checks names (they are spliced into SQL as identifiers) and the router's sizes.
    pub fn validate(&self) -> Result<Router, MysqlError> {
        let ok = !self.database.is_empty()
            && self.database.len() <= 48
            && self
                .database
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(MysqlError::Config(format!(
                "database name {:?} must be 1 to 48 letters, digits or underscores",
                self.database
            )));
        }
        let router = Router::new(self.db_count, self.tb_count).map_err(MysqlError::Config)?;
        if !self.shard_urls.is_empty() && self.shard_urls.len() != self.db_count as usize {
            return Err(MysqlError::Config(format!(
                "shard_urls lists {} servers but db_count is {}: give one server per user \
                 database (entry i holds user database i + 1), or leave shard_urls unset",
                self.shard_urls.len(),
                self.db_count
            )));
        }
        Ok(router)
    }

    /// The server of user database `db` (`1..=db_count`): its `shard_urls` entry, or `url`.
    pub fn url_of(&self, db: u32) -> &str {
        self.shard_urls
            .get(db.saturating_sub(1) as usize)
            .map_or(self.url.as_str(), String::as_str)
    }

    /// The distinct servers and the user databases each holds, the config server first
    /// (with none when every user database is elsewhere).
    pub fn servers(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = vec![(self.url.clone(), Vec::new())];
        for (db, name) in (1..=self.db_count).zip(self.user_databases()) {
            let url = self.url_of(db);
            match out.iter_mut().find(|(u, _)| u == url) {
                Some((_, dbs)) => dbs.push(name),
                None => out.push((url.to_owned(), vec![name])),
            }
        }
        out
    }

    /// `big_market_01`, `big_market_02`, … (upstream's names for `database = big_market`).
    pub fn user_databases(&self) -> Vec<String> {
        (1..=self.db_count)
            .map(|db| Route { db, table: 0 }.database(&self.database))
            .collect()
    }

    /// `_000`, `_001`, ….
    pub fn table_suffixes(&self) -> Vec<String> {
        (0..self.tb_count)
            .map(|table| Route { db: 1, table }.suffix())
            .collect()
    }

    /// The config server's address for messages, without credentials.
    pub fn server(&self) -> String {
        server_of(&self.url)
    }
}

/// A server's address for messages: the URL without scheme and credentials.
pub fn server_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.rsplit('@').next().unwrap_or(rest).to_owned()
}
