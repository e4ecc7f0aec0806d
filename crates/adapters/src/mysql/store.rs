//! The production store: one connection pool for the whole server, every table named
//! with its database (`` `big_market_01`.raffle_activity_order_001 ``).
//!
//! Why one pool and qualified names: sqlx caches prepared statements per connection and
//! MySQL binds table names when a statement is prepared, so a `USE db` per transaction
//! would silently run a cached statement against the previous database. Qualified names
//! make every statement say where it runs, and one pool serves every shard of a server (a
//! pool per database would multiply idle connections by `db_count + 1` for no gain).
//!
//! With `shard_urls` the user databases live on several servers: one pool per distinct
//! server, and every [`Shard`] and [`UserDb`] carries the pool of its server, so a
//! statement on user rows runs where its database is. The config database stays on `url`.
//!
//! Every user-scoped unit of work is one transaction ([`MysqlTx`]) on the user's shard
//! (`router.route(user_id)`); configuration is read from the config database.
//!
//! Award and SKU stock: with Redis ([`MysqlStore::with_redis_stock`], see `stock.rs`) a
//! unit is reserved in Redis under the order's id and the reservation is confirmed after
//! the commit or cancelled after a rollback; the SQL surplus columns are written back in
//! batches. Without Redis, stock is a guarded decrement of the config database's row
//! inside the user's transaction: a cross-database update that is atomic only while all
//! databases are on one server, and a hot row every draw waits for.

use super::group::Groups;
use super::stock::{HolderKind, RebuildRequests, StockHold, settle};
use super::{MysqlError, MysqlOptions};
use crate::redis_store::{RedisStock, StockKey};
use crate::router::{Route, Router};
use crate::states::{TASK_CREATE, TASK_FAIL};
use async_trait::async_trait;
use big_market_domain::activity::PeriodAccount;
use big_market_domain::health::{OutboxStats, StoreLoad, StoreProbe};
use big_market_domain::id::Inserted;
use big_market_domain::{Error, ResponseCode, Result};
use jiff::civil::DateTime;
use rand::SeedableRng;
use rand::rngs::StdRng;
use sqlx::mysql::{
    MySqlArguments, MySqlConnectOptions, MySqlDatabaseError, MySqlPoolOptions, MySqlRow,
};
use sqlx::query::{Query, QueryAs};
use sqlx::{Executor, FromRow, MySql, MySqlPool, Transaction};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Where one user's rows live: the user database (quoted) and the table suffix, plus
/// the config database for the stock rows its transactions update, and the pool of the
/// server holding the user database.
#[derive(Debug)]
pub struct Shard {
    /// `` `big_market_01` ``.
    pub db: String,
    /// `_001`.
    pub sfx: String,
    /// `` `big_market` ``.
    pub cfg: String,
    /// The pool of the server holding `db`.
    pub pool: MySqlPool,
}

/// One user database (quoted name) and the pool of its server; prints as its name, so
/// `format!("{db}.task")` names its table.
#[derive(Debug, Clone)]
pub struct UserDb {
    pub name: String,
    pub pool: MySqlPool,
}

impl std::fmt::Display for UserDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Handle to the production store; cheap to clone.
#[derive(Clone)]
pub struct MysqlStore {
    pub(super) inner: Arc<Inner>,
    /// Award and SKU stock in Redis; `None`: guarded SQL updates.
    pub(super) stock: Option<RedisStock>,
    /// Draws, points prizes and task completions run in groups
    /// ([`MysqlStore::with_grouped_writes`]); `None`: one by one.
    pub(super) groups: Option<Arc<Groups>>,
}

pub(super) struct Inner {
    pub(super) pool: MySqlPool,
    pub(super) router: Router,
    /// `` `big_market` ``.
    pub(super) cfg: String,
    /// Every shard, indexed by [`MysqlStore::shard_index`].
    pub(super) shards: Vec<Arc<Shard>>,
    /// The user databases with their servers' pools (tasks live per database, not
    /// per table), index `db - 1`.
    pub(super) user_dbs: Vec<UserDb>,
    /// Transactions run again after losing a deadlock (a metric; tests expect none).
    pub(super) deadlocks: AtomicU64,
    /// Units committed in groups, and units run alone after their group failed.
    pub(super) grouped: AtomicU64,
    pub(super) regrouped: AtomicU64,
    /// Groups committed (several units in one transaction).
    pub(super) group_commits: AtomicU64,
    /// Stock counters draws found missing in Redis, for the rebuild job.
    pub(super) rebuild: Arc<RebuildRequests>,
}

pub(super) fn quote(name: &str) -> String {
    format!("`{name}`")
}

impl MysqlStore {
    /// Opens a pool to the config server and one to each other server of `shard_urls`,
    /// and checks that each answers, failing fast with the server's address when one
    /// cannot be reached. The databases must exist (`migrate`).
    pub async fn connect(options: &MysqlOptions) -> Result<Self, MysqlError> {
        let router = options.validate()?;
        let pool = open_pool(&options.url, options).await?;
        // One pool per distinct server; user databases on `url` share the config pool.
        let mut servers: Vec<(String, MySqlPool)> = vec![(options.url.clone(), pool.clone())];
        let mut db_pools = Vec::new();
        for db in 1..=router.db_count() {
            let url = options.url_of(db);
            let found = servers
                .iter()
                .find(|(u, _)| u == url)
                .map(|(_, p)| p.clone());
            let db_pool = match found {
                Some(p) => p,
                None => {
                    let p = open_pool(url, options).await?;
                    servers.push((url.to_owned(), p.clone()));
                    p
                }
            };
            db_pools.push(db_pool);
        }
        let cfg = quote(&options.database);
        let mut shards = Vec::new();
        for db in 1..=router.db_count() {
            for table in 0..router.tb_count() {
                let route = Route { db, table };
                shards.push(Arc::new(Shard {
                    db: quote(&route.database(&options.database)),
                    sfx: route.suffix(),
                    cfg: cfg.clone(),
                    pool: pool_of(&db_pools, db),
                }));
            }
        }
        let user_dbs = options
            .user_databases()
            .iter()
            .zip(1..)
            .map(|(d, db)| UserDb {
                name: quote(d),
                pool: pool_of(&db_pools, db),
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                router,
                cfg,
                shards,
                user_dbs,
                deadlocks: AtomicU64::new(0),
                grouped: AtomicU64::new(0),
                regrouped: AtomicU64::new(0),
                group_commits: AtomicU64::new(0),
                rebuild: Arc::default(),
            }),
            stock: None,
            groups: None,
        })
    }

    /// The config database's pool (tests and tools).
    pub fn pool(&self) -> &MySqlPool {
        &self.inner.pool
    }

    /// The shard holding `user_id`'s rows.
    pub fn shard(&self, user_id: &str) -> Arc<Shard> {
        let route = self.inner.router.route(user_id);
        self.shard_at(route)
    }

    fn shard_at(&self, route: Route) -> Arc<Shard> {
        let tb = self.inner.router.tb_count();
        let i = (route.db.saturating_sub(1) * tb + route.table) as usize;
        self.inner.shards.get(i).cloned().unwrap_or_else(|| {
            // The router only yields routes inside its own sizes.
            unreachable!("route {route:?} outside {} shards", self.inner.shards.len())
        })
    }

    /// Every shard (for queries that span users).
    pub(super) fn shards(&self) -> &[Arc<Shard>] {
        &self.inner.shards
    }

    /// `` `big_market` ``.
    pub(super) fn cfg(&self) -> &str {
        &self.inner.cfg
    }

    /// Transactions that lost a deadlock since the store was opened.
    pub fn deadlocks(&self) -> u64 {
        self.inner.deadlocks.load(Ordering::Relaxed)
    }

    /// Units of work that ran in a group of several, and units that ran alone because
    /// their group was rolled back (a metric; tests check both paths run).
    pub fn group_stats(&self) -> (u64, u64) {
        (
            self.inner.grouped.load(Ordering::Relaxed),
            self.inner.regrouped.load(Ordering::Relaxed),
        )
    }

    pub(crate) fn note_deadlock(&self) {
        self.inner.deadlocks.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts a transaction on `user_id`'s shard.
    pub async fn begin(&self, user_id: &str) -> Result<MysqlTx> {
        let shard = self.shard(user_id);
        let tx = shard.pool.begin().await.map_err(sql)?;
        Ok(MysqlTx {
            tx,
            shard,
            retry: false,
            stock: self.hold(user_id),
            award_units: Vec::new(),
        })
    }
}

/// Opens the pool of one server and checks it answers.
async fn open_pool(url: &str, options: &MysqlOptions) -> Result<MySqlPool, MysqlError> {
    let unreachable = |source| MysqlError::Unreachable {
        server: super::server_of(url),
        source,
    };
    let connect: MySqlConnectOptions = url.parse().map_err(unreachable)?;
    // Grouped draws vary their statements with the group's size: room for all of them
    // (16 connections × 512 stays under the server's default 16,382 statements).
    let connect = connect.statement_cache_capacity(512);
    let pool = MySqlPoolOptions::new()
        .max_connections(options.pool_size.max(1))
        .acquire_timeout(options.connect_timeout)
        // A broken connection fails its statement and is dropped; a ping before every
        // use would cost a round trip per transaction.
        .test_before_acquire(false)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(READ_COMMITTED).await?;
                Ok(())
            })
        })
        .connect_lazy_with(connect);
    // One round trip now, so a wrong address is an error at start-up, not a hang later.
    tokio::time::timeout(
        options.connect_timeout,
        sqlx::query("SELECT 1").execute(&pool),
    )
    .await
    .map_err(|_| unreachable(sqlx::Error::PoolTimedOut))?
    .map_err(unreachable)?;
    Ok(pool)
}

/// The pool of user database `db` (`1..=db_count`, which `db_pools` covers).
fn pool_of(db_pools: &[MySqlPool], db: u32) -> MySqlPool {
    db_pools
        .get(db.saturating_sub(1) as usize)
        .cloned()
        .unwrap_or_else(|| unreachable!("user database {db} outside {}", db_pools.len()))
}

impl MysqlStore {
    /// The stock side of a transaction of `user_id` (Redis stock only).
    pub(super) fn hold(&self, user_id: &str) -> Option<StockHold> {
        self.stock.clone().map(|store| StockHold {
            store,
            user_id: user_id.to_owned(),
            holder: None,
            reserved: Vec::new(),
            rebuild: self.inner.rebuild.clone(),
        })
    }
}

/// Every connection's transactions run `READ COMMITTED`. Under MySQL's default
/// `REPEATABLE READ`, reading a row that does not exist yet (a new user's account, month
/// or day row) locks the gap around it, and gaps are shared by neighbouring users: two
/// first draws or recharges side by side then deadlock on each other's insert. Read
/// committed takes no such gap locks, and each read sees what committed before it, which
/// is what the guarded updates and the account row lock (`FOR UPDATE`) rely on.
/// (With binary logging this needs `binlog_format` `ROW` or `MIXED`, the defaults.)
const READ_COMMITTED: &str = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

/// How often a transaction that lost a deadlock is run again before giving up.
const DEADLOCK_RETRIES: usize = 3;

impl MysqlStore {
    /// Runs `body` in a transaction on `user_id`'s shard: committed when it is `Ok`,
    /// rolled back otherwise, and run again from the start when the server chose it as a
    /// deadlock victim (at most [`DEADLOCK_RETRIES`] times). `body` gets the transaction
    /// and hands it back with its result (so its future owns what it borrows).
    pub(crate) async fn in_user_tx<T, Fut>(
        &self,
        user_id: &str,
        mut body: impl FnMut(MysqlTx) -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = (MysqlTx, Result<T>)>,
    {
        let mut attempt = 0;
        loop {
            let tx = self.begin(user_id).await?;
            let (tx, result) = body(tx).await;
            match tx.finish(result).await {
                Finished::Done(r) => return r,
                Finished::Retry => {
                    self.note_deadlock();
                    if attempt == DEADLOCK_RETRIES {
                        return Err(Error::internal("the transaction lost a deadlock too often"));
                    }
                    attempt += 1;
                    tracing::debug!(attempt, "deadlock: running the transaction again");
                }
            }
        }
    }
}

/// The end of a transaction: its result, or a request to run it again.
pub(crate) enum Finished<T> {
    Done(Result<T>),
    Retry,
}

/// One unit of work on one user's shard.
pub struct MysqlTx {
    pub(super) tx: Transaction<'static, MySql>,
    pub(super) shard: Arc<Shard>,
    /// Set when a statement failed as a deadlock victim: the whole transaction is rolled
    /// back by the server and may be run again.
    retry: bool,
    /// With Redis stock: the units this transaction reserved, settled in [`Self::finish`].
    pub(super) stock: Option<StockHold>,
    /// Award stock taken by guarded SQL updates (no Redis), for the award record.
    pub(super) award_units: Vec<StockKey>,
}

impl MysqlTx {
    /// Units of the award's stock this transaction took (`user_award_record.stock_units`):
    /// what a rebuild of a lost Redis counter subtracts from the total.
    pub(super) fn award_units(&self, strategy_id: i64, award_id: i32) -> i64 {
        let key = StockKey::Award {
            strategy_id,
            award_id,
        };
        let sql = self.award_units.iter().filter(|k| **k == key).count();
        let redis = self.stock.as_ref().map_or(0, |h| h.units_of(key));
        i64::try_from(sql).unwrap_or(i64::MAX) + redis
    }
}

impl MysqlTx {
    /// The shard this transaction runs on.
    pub fn shard(&self) -> &Shard {
        &self.shard
    }

    /// Maps a failed statement to the domain error, remembering a deadlock.
    pub(super) fn fail(&mut self, e: sqlx::Error) -> Error {
        if error_number(&e) == Some(ER_LOCK_DEADLOCK) {
            self.retry = true;
        }
        sql(e)
    }

    /// Passes `r` through, mapping its error with [`MysqlTx::fail`].
    pub(super) fn check<T>(&mut self, r: Result<T, sqlx::Error>) -> Result<T> {
        r.map_err(|e| self.fail(e))
    }

    /// Commits on `Ok`, rolls back on `Err`; then settles the Redis reservations: kept
    /// after a commit, given back after a rollback. When the commit's outcome is unknown
    /// (the connection broke during it), they stay for the sweeper, which asks SQL.
    pub(crate) async fn finish<T>(self, result: Result<T>) -> Finished<T> {
        let retry = self.retry;
        let hold = self.stock;
        // Redis must still record this transaction's reservations at the commit (see
        // `StockHold::check_held`); otherwise it rolls back and takes nothing.
        let result = match (result, &hold) {
            (Ok(v), Some(h)) => h.check_held().await.map(|()| v),
            (r, _) => r,
        };
        match result {
            Ok(v) => match self.tx.commit().await {
                Ok(()) => {
                    settle(hold, true).await;
                    Finished::Done(Ok(v))
                }
                Err(e) if error_number(&e) == Some(ER_LOCK_DEADLOCK) => {
                    settle(hold, false).await;
                    Finished::Retry
                }
                Err(e) => {
                    if let Some(h) = &hold
                        && !h.reserved.is_empty()
                    {
                        tracing::warn!(error = %e, reserved = h.reserved.len(), "commit failed; the stock sweeper settles its reservations");
                    }
                    Finished::Done(Err(sql(e)))
                }
            },
            Err(e) => {
                match self.tx.rollback().await {
                    Ok(()) => settle(hold, false).await,
                    // The server rolls back a transaction whose connection goes away, so
                    // the reservations can go back; the sweeper would do the same later.
                    Err(rollback) => {
                        tracing::warn!(error = %rollback, "rollback failed; the connection is discarded");
                        settle(hold, false).await;
                    }
                }
                if retry {
                    Finished::Retry
                } else {
                    Finished::Done(Err(e))
                }
            }
        }
    }
}

/// Refuses a draw whose deadline passed, or whose caller gave up, before its
/// transaction could start (as the embedded store's writer does): nothing was taken.
pub(super) fn check_deadline(
    deadline: Option<Instant>,
    gate: &big_market_domain::activity::StartGate,
) -> Result<()> {
    if deadline.is_some_and(|d| Instant::now() >= d) || !gate.start() {
        return Err(Error::biz(
            ResponseCode::Hystrix,
            "the store did not start the draw before its deadline; nothing was taken",
        ));
    }
    Ok(())
}

/// `ER_DUP_ENTRY`: a unique key (an idempotency key or a random id) is taken.
pub const ER_DUP_ENTRY: u16 = 1062;
/// `ER_LOCK_DEADLOCK`: the server rolled the transaction back to break a deadlock.
pub const ER_LOCK_DEADLOCK: u16 = 1213;

/// The server's error number of `e`, if it is a server error.
pub fn error_number(e: &sqlx::Error) -> Option<u16> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

/// The unique key a duplicate-entry error hit (`uq_order_id`), from the server's message
/// (`Duplicate entry '…' for key 'uq_order_id'`; MySQL 8 writes `'table.uq_order_id'`).
pub fn duplicate_key(e: &sqlx::Error) -> Option<String> {
    if error_number(e) != Some(ER_DUP_ENTRY) {
        return None;
    }
    let message = e.as_database_error()?.message().to_owned();
    let key = message.rsplit_once("for key '")?.1.trim_end_matches('\'');
    Some(key.rsplit('.').next().unwrap_or(key).to_owned())
}

/// A failure of the server as the domain's internal error.
pub(super) fn sql(e: sqlx::Error) -> Error {
    Error::from(MysqlError::Sql(e))
}

/// The duplicate of an idempotency key as the domain's `0003`.
pub(super) fn index_dup(message: String) -> Error {
    Error::biz(ResponseCode::IndexDup, message)
}

/// A generator for one transaction: seeded from the thread's CSPRNG, and `Send`, so it
/// may live across the transaction's awaits.
pub(super) fn rng() -> StdRng {
    StdRng::from_rng(&mut rand::rng())
}

pub(super) fn limit_arg(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

#[async_trait]
impl StoreProbe for MysqlStore {
    async fn ready(&self) -> Result<()> {
        self.run(sqlx::query("SELECT 1")).await?;
        Ok(())
    }

    async fn outbox(&self) -> Result<OutboxStats> {
        let by_state = self.task_states().await?;
        let mut oldest: f64 = 0.0;
        for db in self.user_dbs() {
            // Waiting for delivery: `create` and `fail` (parked ones wait for an operator).
            let sql = format!(
                "SELECT TIMESTAMPDIFF(MICROSECOND, MIN(create_time), NOW()) FROM {db}.task
                 WHERE state IN ('{TASK_CREATE}', '{TASK_FAIL}')"
            );
            let row: Option<(Option<i64>,)> = self.one_on(&db.pool, sqlx::query_as(&sql)).await?;
            if let Some((Some(micros),)) = row {
                oldest = oldest.max(micros as f64 / 1e6);
            }
        }
        Ok(OutboxStats {
            by_state,
            oldest_pending_secs: oldest.max(0.0),
        })
    }

    /// No writer queue here (transactions run side by side); idle pool connections.
    fn load(&self) -> StoreLoad {
        StoreLoad {
            writer_queue: 0,
            idle_readers: self.pool().num_idle(),
            groups: self.inner.group_commits.load(Ordering::Relaxed),
            grouped: self.inner.grouped.load(Ordering::Relaxed),
            regrouped: self.inner.regrouped.load(Ordering::Relaxed),
            slow_groups: 0,
        }
    }
}

/// Reads a `DATE_FORMAT(col, '%Y-%m-%d %H:%i:%s')` value.
pub(super) fn datetime(s: &str) -> Result<DateTime> {
    big_market_domain::time::parse_datetime(s)
        .map_err(|_| Error::internal(format!("{s:?} is not a datetime")))
}

impl MysqlTx {
    /// The order the stock reserved from now on belongs to (Redis stock only).
    pub(super) fn hold_for(&mut self, kind: HolderKind, order_id: &str) {
        if let Some(hold) = &mut self.stock {
            hold.hold_for(kind, order_id);
        }
    }

    /// Runs a statement; the rows it matched.
    pub(super) async fn exec(&mut self, q: Query<'_, MySql, MySqlArguments>) -> Result<u64> {
        let r = q.execute(&mut *self.tx).await;
        Ok(self.check(r)?.rows_affected())
    }

    /// Inserts a `raffle_activity_account_{unit}` row.
    pub(super) async fn insert_period(&mut self, unit: &str, row: &PeriodAccount) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.raffle_activity_account_{unit}
                 (user_id, activity_id, {unit}, {unit}_count, {unit}_count_surplus)
             VALUES (?, ?, ?, ?, ?)",
            db = self.shard.db
        );
        self.exec(
            sqlx::query(&sql)
                .bind(&row.user_id)
                .bind(row.activity_id)
                .bind(&row.period)
                .bind(row.count)
                .bind(row.count_surplus),
        )
        .await?;
        Ok(())
    }

    /// Runs a query expected to yield at most one row.
    pub(super) async fn optional<O>(
        &mut self,
        q: QueryAs<'_, MySql, O, MySqlArguments>,
    ) -> Result<Option<O>>
    where
        O: Send + Unpin + for<'r> FromRow<'r, MySqlRow>,
    {
        let r = q.fetch_optional(&mut *self.tx).await;
        self.check(r)
    }

    /// Runs the insert of a row with a random id: a duplicate of `id_key` reports the id
    /// taken (the domain draws another; InnoDB undid only the statement). Any other
    /// failure, a duplicate idempotency key included, is returned as is.
    pub(super) async fn insert_random_id(
        &mut self,
        id_key: &str,
        q: Query<'_, MySql, MySqlArguments>,
    ) -> Result<Inserted, sqlx::Error> {
        match q.execute(&mut *self.tx).await {
            Ok(_) => Ok(Inserted::Done),
            Err(e) if duplicate_key(&e).as_deref() == Some(id_key) => Ok(Inserted::IdTaken),
            Err(e) => Err(e),
        }
    }

    /// As [`MysqlTx::insert_random_id`] for an order (`uq_order_id`), mapping a duplicate
    /// of `business_key` to `0003` with `message`.
    pub(super) async fn insert_once(
        &mut self,
        business_key: &str,
        message: impl FnOnce() -> String,
        q: Query<'_, MySql, MySqlArguments>,
    ) -> Result<Inserted> {
        match self.insert_random_id("uq_order_id", q).await {
            Ok(inserted) => Ok(inserted),
            Err(e) if duplicate_key(&e).as_deref() == Some(business_key) => {
                Err(index_dup(message()))
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}
