//! Award and SKU stock in Redis for the MariaDB/MySQL store (DESIGN §7).
//!
//! A transaction reserves a unit in Redis under the id of the order that holds it (the
//! raffle order for award stock, the activity order for SKU stock), so the hot rows of
//! `strategy_award` and `raffle_activity_sku` are never updated per draw. After the
//! commit the reservation is confirmed, after a rollback it is cancelled (the unit goes
//! back). A crash between the two leaves the reservation: [`MysqlStore::sweep_stock`]
//! looks its order up in SQL and settles it. [`MysqlStore::write_back_stock`] copies the
//! counters to the SQL surplus columns in one transaction per batch.
//!
//! When Redis loses a counter (a restart without persistence, a flush, an eviction), the
//! store rebuilds it from SQL exactly: the total (`award_count`, `stock_count`) minus the
//! units SQL records as taken (award records' `stock_units`, activity orders), never
//! the write-back's surplus column, which lags. See [`MysqlStore::rebuild_stock`].
//!
//! Reservation ids name the order and its user, `{kind}:{order_id}:{user_id}`, so the
//! sweeper knows which shard to ask: `r` for a raffle order (its award record commits
//! with the stock), `a` for an activity order, `x` for a strategy-level raffle that has
//! no order (it never commits a row, so a crash returns its unit).

use super::store::{MysqlStore, MysqlTx, Shard};
use crate::redis_store::{RedisStock, Reservation, StockKey, SweepReport};
use big_market_domain::strategy::StockStore;
use big_market_domain::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a rebuild waits, once its counters are missing and their ledgers dropped,
/// before it counts SQL: a transaction that passed its check before commit
/// ([`RedisStock::held`]) just before Redis lost the ledger has committed by then, so
/// the count includes its unit. Draws of a missing counter answer the not-assembled code
/// meanwhile; together with the lease and the count it keeps the outage near a second.
pub const REBUILD_SETTLE: Duration = Duration::from_millis(1000);

/// The lease of one rebuild across nodes (`SET NX PX`): longer than the settle wait and
/// the SQL count, so two nodes never count and set the same counter at once.
const REBUILD_LEASE: Duration = Duration::from_secs(15);

/// Counters that draws found missing, for the rebuild job ([`MysqlStore::rebuild_requested`]).
#[derive(Default)]
pub(crate) struct RebuildRequests {
    keys: Mutex<BTreeSet<StockKey>>,
    notify: tokio::sync::Notify,
}

impl RebuildRequests {
    fn request(&self, key: StockKey) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(key);
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Vec<StockKey> {
        self.keys
            .lock()
            .map(|mut k| std::mem::take(&mut *k).into_iter().collect())
            .unwrap_or_default()
    }
}

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Counters set from SQL, with the value set.
    pub rebuilt: Vec<(StockKey, i64)>,
    /// Another node held the rebuild's lease: nothing was done here.
    pub busy: bool,
}

/// What kind of order holds a reservation: the first part of its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HolderKind {
    /// A draw's raffle order: its award record commits with the award stock (`r`).
    Raffle,
    /// A recharge's activity order: it commits with the SKU stock (`a`).
    Recharge,
    /// A strategy-level raffle, with no order: nothing commits, a crash returns the unit (`x`).
    Strategy,
}

impl HolderKind {
    /// The letter in reservation ids (ids outlive a node: the letters never change).
    fn code(self) -> char {
        match self {
            HolderKind::Raffle => 'r',
            HolderKind::Recharge => 'a',
            HolderKind::Strategy => 'x',
        }
    }

    fn from_code(code: char) -> Option<Self> {
        match code {
            'r' => Some(HolderKind::Raffle),
            'a' => Some(HolderKind::Recharge),
            'x' => Some(HolderKind::Strategy),
            _ => None,
        }
    }
}

/// The stock side of one transaction.
pub(crate) struct StockHold {
    pub(crate) store: RedisStock,
    pub(crate) user_id: String,
    /// Kind and `{orderId}.{nonce}` of the order this transaction writes, once known.
    pub(crate) holder: Option<(HolderKind, String)>,
    pub(crate) reserved: Vec<Reservation>,
    /// Where a missing counter is reported, so the rebuild job sets it from SQL.
    pub(crate) rebuild: Arc<RebuildRequests>,
}

impl StockHold {
    /// The order the next reservations belong to. A nonce per call keeps the ids of two
    /// transactions apart even when both hold the same order (a reused `create` raffle
    /// order, a transaction run again), so one never settles the other's unit.
    pub(crate) fn hold_for(&mut self, kind: HolderKind, order_id: &str) {
        let nonce = big_market_domain::activity::random_digits(&mut rand::rng(), 8);
        self.holder = Some((kind, format!("{order_id}.{nonce}")));
    }

    /// Reserves one unit of `key` for this transaction's order.
    pub(crate) async fn reserve(&mut self, key: StockKey) -> Result<bool> {
        self.reserve_above(key, 0).await
    }

    /// As [`Self::reserve`], taking a unit only while more than `held_back` are left
    /// (units a release plan has not released yet).
    pub(crate) async fn reserve_above(&mut self, key: StockKey, held_back: i64) -> Result<bool> {
        let (kind, order) = match &self.holder {
            Some((kind, order)) => (*kind, order.clone()),
            None => (
                HolderKind::Strategy,
                big_market_domain::activity::random_digits(&mut rand::rng(), 12),
            ),
        };
        // A second unit of the same stock for the same order (a rule tree with two stock
        // nodes) is a second reservation, as the SQL path takes a second unit.
        let again = match self.reserved.iter().filter(|r| r.key == key).count() {
            0 => String::new(),
            n => format!("-{n}"),
        };
        let id = format!("{}:{order}{again}:{}", kind.code(), self.user_id);
        // Stamped with Redis's clock, which the sweeper reads too: nodes' clocks may differ.
        let taken = match self
            .store
            .reserve_above(key, &id, SERVER_TIME, held_back)
            .await
        {
            Ok(taken) => taken,
            Err(e) => {
                if matches!(e, crate::redis_store::RedisError::NotAssembled(_)) {
                    self.rebuild.request(key);
                }
                return Err(e.into());
            }
        };
        if taken {
            self.reserved.push(Reservation { key, id });
        }
        Ok(taken)
    }
}

impl StockHold {
    /// Units of `key` this transaction reserved (the award record's `stock_units`).
    pub(crate) fn units_of(&self, key: StockKey) -> i64 {
        let n = self.reserved.iter().filter(|r| r.key == key).count();
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    /// Before the commit: `Err` when Redis no longer records one of this transaction's
    /// reservations (it lost them: restart, flush), so the transaction rolls back and
    /// takes nothing; a counter rebuilt from SQL could not count a unit committed now.
    /// Also `Err` when Redis cannot answer: the commit would be unaccounted for.
    pub(crate) async fn check_held(&self) -> Result<()> {
        if self.reserved.is_empty() {
            return Ok(());
        }
        if self.store.held(&self.reserved).await? {
            return Ok(());
        }
        let mut lost = None;
        for r in &self.reserved {
            self.rebuild.request(r.key);
            lost = Some(r.key);
        }
        Err(match lost {
            Some(key) => crate::redis_store::RedisError::NotAssembled(key).into(),
            None => Error::internal("stock reservations lost"),
        })
    }
}

/// [`StockHold::check_held`] for every hold of a group, in one round trip to Redis while
/// the group's row locks are held; only when a reservation is missing are the holds
/// asked one by one, to report which counters to rebuild.
pub(crate) async fn check_all_held(holds: &[&StockHold]) -> Result<()> {
    let Some(first) = holds.first() else {
        return Ok(());
    };
    let all: Vec<Reservation> = holds
        .iter()
        .flat_map(|h| h.reserved.iter().cloned())
        .collect();
    if all.is_empty() || first.store.held(&all).await? {
        return Ok(());
    }
    for hold in holds {
        hold.check_held().await?;
    }
    Err(Error::internal(
        "stock reservations were missing, then found again",
    ))
}

/// Confirms (`committed`) or cancels every reservation of a finished transaction.
/// Failures are logged, not raised: the transaction's outcome is already decided, and
/// the sweeper settles what is left from SQL.
pub(crate) async fn settle(hold: Option<StockHold>, committed: bool) {
    let Some(hold) = hold else { return };
    for r in &hold.reserved {
        let done = if committed {
            hold.store.confirm(r).await
        } else {
            hold.store.cancel(r).await
        };
        if let Err(e) = done {
            tracing::warn!(key = %r.key, id = %r.id, committed, error = %e, "stock reservation left for the sweeper");
        }
    }
}

/// `reserve`'s `now_ms` that asks the script to stamp with Redis's own clock.
const SERVER_TIME: i64 = -1;

/// The kind, order id (without the nonce) and user id of a reservation id.
fn parse_id(id: &str) -> Option<(HolderKind, &str, &str)> {
    let mut parts = id.splitn(3, ':');
    let kind = HolderKind::from_code(parts.next()?.chars().next()?)?;
    let order = parts.next()?;
    let order = order.split_once('.').map_or(order, |(o, _)| o);
    Some((kind, order, parts.next()?))
}

impl MysqlStore {
    /// Keeps award and SKU stock in Redis from now on.
    pub fn with_redis_stock(mut self, stock: RedisStock) -> Self {
        self.stock = Some(stock);
        self
    }

    /// The Redis stock, when configured.
    pub fn redis_stock(&self) -> Option<&RedisStock> {
        self.stock.as_ref()
    }

    /// Creates the Redis counters that do not exist yet (the armory, a reload after a
    /// lost subscription), rebuilt from SQL exactly as after a Redis restart: the SQL
    /// surplus column may lag behind draws already committed. Existing counters are the
    /// truth and are left alone.
    pub(super) async fn assemble_stock(&self, keys: &[(StockKey, i64)]) -> Result<()> {
        let Some(stock) = &self.stock else {
            return Ok(());
        };
        let keys: Vec<StockKey> = keys.iter().map(|(k, _)| *k).collect();
        if stock.missing(&keys).await?.is_empty() {
            return Ok(());
        }
        let report = self.rebuild_stock(&keys).await?;
        if report.busy {
            // Another node is rebuilding them; draws answer the not-assembled code until
            // it is done.
            for key in keys {
                self.inner.rebuild.request(key);
            }
        }
        Ok(())
    }

    /// Waits until a draw finds a counter missing (or `tick` passes), then rebuilds the
    /// counters asked for: the rebuild job's loop, on every node (the lease decides).
    pub async fn rebuild_requested(&self, tick: Duration) -> Result<RebuildReport> {
        let requests = &self.inner.rebuild;
        let _ = tokio::time::timeout(tick, requests.notify.notified()).await;
        let keys = requests.take();
        if keys.is_empty() {
            return Ok(RebuildReport::default());
        }
        let report = self.rebuild_stock(&keys).await;
        if !matches!(report, Ok(RebuildReport { busy: false, .. })) {
            // Not done here: ask again next round (the other node may finish first).
            for key in keys {
                requests.keys.lock().map(|mut k| k.insert(key)).ok();
            }
        }
        report
    }

    /// Sets every missing counter of `keys` from SQL, exactly, under a lease so that
    /// nodes do not race: drops what is left of their ledgers, waits
    /// [`REBUILD_SETTLE`] (a transaction that passed its check before commit has then
    /// committed), counts in SQL the units taken (award records by `stock_units`, a
    /// record without it, from a Java node or an older version, counting one: never
    /// oversold; activity orders by SKU), and sets `total - taken` unless a counter
    /// appeared meanwhile. `busy` when another node holds the lease.
    pub async fn rebuild_stock(&self, keys: &[StockKey]) -> Result<RebuildReport> {
        let Some(stock) = &self.stock else {
            return Ok(RebuildReport::default());
        };
        // A lost Redis lost every counter of a strategy at once: one rebuild for all of
        // them, not one settle wait per award as draws find each missing.
        let keys = &self.with_sibling_awards(keys).await?;
        let missing = stock.missing(keys).await?;
        if missing.is_empty() {
            return Ok(RebuildReport::default());
        }
        let locks = stock.locks()?;
        let Some(lease) = locks.try_acquire("stock_rebuild", REBUILD_LEASE).await? else {
            return Ok(RebuildReport {
                rebuilt: Vec::new(),
                busy: true,
            });
        };
        let result = self.rebuild_under_lease(stock, keys).await;
        if let Err(e) = lease.release().await {
            tracing::warn!(error = %e, "releasing the stock rebuild lease failed; it expires on its own");
        }
        let rebuilt = result?;
        if !rebuilt.is_empty() {
            tracing::warn!(counters = ?rebuilt, "stock counters missing in redis were rebuilt from SQL");
        }
        Ok(RebuildReport {
            rebuilt,
            busy: false,
        })
    }

    /// `keys` and every other award of their strategies.
    async fn with_sibling_awards(&self, keys: &[StockKey]) -> Result<Vec<StockKey>> {
        let strategies: BTreeSet<i64> = keys
            .iter()
            .filter_map(|k| match k {
                StockKey::Award { strategy_id, .. } => Some(*strategy_id),
                StockKey::Sku { .. } => None,
            })
            .collect();
        let mut all: BTreeSet<StockKey> = keys.iter().copied().collect();
        if !strategies.is_empty() {
            let marks = vec!["?"; strategies.len()].join(",");
            let sql = format!(
                "SELECT strategy_id, award_id FROM {cfg}.strategy_award WHERE strategy_id IN ({marks})",
                cfg = self.cfg()
            );
            let mut q = sqlx::query_as::<_, (i64, i32)>(&sql);
            for s in &strategies {
                q = q.bind(s);
            }
            for (strategy_id, award_id) in self.all(q).await? {
                all.insert(StockKey::Award {
                    strategy_id,
                    award_id,
                });
            }
        }
        Ok(all.into_iter().collect())
    }

    async fn rebuild_under_lease(
        &self,
        stock: &RedisStock,
        keys: &[StockKey],
    ) -> Result<Vec<(StockKey, i64)>> {
        // Checked again under the lease: a node that held it may have just finished.
        let missing = stock.missing(keys).await?;
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        for key in &missing {
            stock.forget_reservations(*key).await?;
        }
        // Only a counter that existed before (it has a baseline) can have had
        // reservations in flight; the first assembly of a new deployment's counters
        // does not wait.
        let baselines = self.baselines(&missing).await?;
        if !baselines.is_empty() {
            tokio::time::sleep(REBUILD_SETTLE).await;
        }
        let left = self.stock_left_in_sql(&missing).await?;
        let mirrors = self.surplus_columns(&missing).await?;
        let mut rebuilt = Vec::new();
        for (key, left) in left {
            let value = match baselines.get(&key) {
                Some(outside) => left - outside,
                // First assembly of this counter: the surplus column is the truth (no
                // counter has ever taken from it); what it lacks against the records
                // was taken outside them, and is remembered for the next rebuild. (A
                // deployment whose counters predate baselines: the column may lag
                // either way, so the lower of the two, never oversold.)
                None => {
                    let Some(&surplus) = mirrors.get(&key) else {
                        continue;
                    };
                    let value = surplus.min(left);
                    self.save_baseline(key, left - value).await?;
                    value
                }
            };
            let value = value.max(0);
            if stock.restore(key, value).await? {
                rebuilt.push((key, value));
            }
        }
        Ok(rebuilt)
    }

    /// `taken_outside` of each key that has a baseline.
    async fn baselines(&self, keys: &[StockKey]) -> Result<BTreeMap<StockKey, i64>> {
        let cfg = self.cfg();
        let marks = vec!["?"; keys.len()].join(",");
        let sql = format!(
            "SELECT stock_key, taken_outside FROM {cfg}.stock_baseline WHERE stock_key IN ({marks})"
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for key in keys {
            q = q.bind(key.encode());
        }
        let rows = self.all(q).await?;
        Ok(keys
            .iter()
            .filter_map(|k| {
                let member = k.encode();
                rows.iter()
                    .find(|(m, _)| *m == member)
                    .map(|(_, n)| (*k, *n))
            })
            .collect())
    }

    async fn save_baseline(&self, key: StockKey, taken_outside: i64) -> Result<()> {
        let sql = format!(
            "INSERT INTO {cfg}.stock_baseline (stock_key, taken_outside) VALUES (?, ?)
             ON DUPLICATE KEY UPDATE taken_outside = VALUES(taken_outside)",
            cfg = self.cfg()
        );
        self.run(sqlx::query(&sql).bind(key.encode()).bind(taken_outside))
            .await?;
        Ok(())
    }

    /// An operator set what is left of `key` to `left`: the baseline follows, so a
    /// later rebuild gives `left` minus what was taken since.
    pub(super) async fn rebase_stock(&self, key: StockKey, left: i64) -> Result<()> {
        if self.stock.is_none() {
            return Ok(());
        }
        let computed = self.stock_left_in_sql_raw(&[key]).await?;
        if let Some((_, total_minus_taken)) = computed.first() {
            self.save_baseline(key, total_minus_taken - left).await?;
        }
        Ok(())
    }

    /// The SQL surplus columns (the write-back's copy) of `keys`.
    async fn surplus_columns(&self, keys: &[StockKey]) -> Result<BTreeMap<StockKey, i64>> {
        let cfg = self.cfg();
        let mut out = BTreeMap::new();
        for key in keys {
            let value: Option<(i64,)> = match key {
                StockKey::Award {
                    strategy_id,
                    award_id,
                } => {
                    let sql = format!(
                        "SELECT CAST(award_count_surplus AS SIGNED) FROM {cfg}.strategy_award
                         WHERE strategy_id = ? AND award_id = ?"
                    );
                    self.one(sqlx::query_as(&sql).bind(strategy_id).bind(award_id))
                        .await?
                }
                StockKey::Sku { sku } => {
                    let sql = format!(
                        "SELECT CAST(stock_count_surplus AS SIGNED) FROM {cfg}.raffle_activity_sku WHERE sku = ?"
                    );
                    self.one(sqlx::query_as(&sql).bind(sku)).await?
                }
            };
            if let Some((v,)) = value {
                out.insert(*key, v);
            }
        }
        Ok(out)
    }

    /// `total - taken` of each key from SQL alone, `taken` being the units SQL records
    /// (award records' `stock_units`, activity orders); keys that no longer exist in the
    /// configuration are left out. May be below zero (units taken outside the records).
    pub async fn stock_left_in_sql(&self, keys: &[StockKey]) -> Result<Vec<(StockKey, i64)>> {
        self.stock_left_in_sql_raw(keys).await
    }

    async fn stock_left_in_sql_raw(&self, keys: &[StockKey]) -> Result<Vec<(StockKey, i64)>> {
        let cfg = self.cfg();
        let mut totals: BTreeMap<StockKey, i64> = BTreeMap::new();
        let mut taken: BTreeMap<StockKey, i64> = BTreeMap::new();
        let awards: Vec<(i64, i32)> = keys
            .iter()
            .filter_map(|k| match k {
                StockKey::Award {
                    strategy_id,
                    award_id,
                } => Some((*strategy_id, *award_id)),
                StockKey::Sku { .. } => None,
            })
            .collect();
        let skus: Vec<i64> = keys
            .iter()
            .filter_map(|k| match k {
                StockKey::Sku { sku } => Some(*sku),
                StockKey::Award { .. } => None,
            })
            .collect();
        let strategies: BTreeSet<i64> = awards.iter().map(|(s, _)| *s).collect();
        if !strategies.is_empty() {
            let marks = vec!["?"; strategies.len()].join(",");
            let sql = format!(
                "SELECT strategy_id, award_id, CAST(award_count AS SIGNED) FROM {cfg}.strategy_award
                 WHERE strategy_id IN ({marks})"
            );
            let mut q = sqlx::query_as::<_, (i64, i32, i64)>(&sql);
            for s in &strategies {
                q = q.bind(s);
            }
            for (strategy_id, award_id, total) in self.all(q).await? {
                if awards.contains(&(strategy_id, award_id)) {
                    let key = StockKey::Award {
                        strategy_id,
                        award_id,
                    };
                    totals.insert(key, total);
                }
            }
            for shard in self.shards().to_vec() {
                let sql = format!(
                    "SELECT strategy_id, award_id, CAST(SUM(COALESCE(stock_units, 1)) AS SIGNED)
                     FROM {db}.user_award_record{sfx} WHERE strategy_id IN ({marks})
                     GROUP BY strategy_id, award_id",
                    db = shard.db,
                    sfx = shard.sfx
                );
                let mut q = sqlx::query_as::<_, (i64, i32, i64)>(&sql);
                for s in &strategies {
                    q = q.bind(s);
                }
                for (strategy_id, award_id, n) in self.all_on(&shard.pool, q).await? {
                    let key = StockKey::Award {
                        strategy_id,
                        award_id,
                    };
                    *taken.entry(key).or_default() += n;
                }
            }
        }
        if !skus.is_empty() {
            let marks = vec!["?"; skus.len()].join(",");
            let sql = format!(
                "SELECT sku, CAST(stock_count AS SIGNED) FROM {cfg}.raffle_activity_sku WHERE sku IN ({marks})"
            );
            let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
            for s in &skus {
                q = q.bind(s);
            }
            for (sku, total) in self.all(q).await? {
                totals.insert(StockKey::Sku { sku }, total);
            }
            for shard in self.shards().to_vec() {
                let sql = format!(
                    "SELECT sku, COUNT(*) FROM {db}.raffle_activity_order{sfx} WHERE sku IN ({marks}) GROUP BY sku",
                    db = shard.db,
                    sfx = shard.sfx
                );
                let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
                for s in &skus {
                    q = q.bind(s);
                }
                for (sku, n) in self.all_on(&shard.pool, q).await? {
                    *taken.entry(StockKey::Sku { sku }).or_default() += n;
                }
            }
        }
        Ok(totals
            .into_iter()
            .map(|(key, total)| (key, total - taken.get(&key).copied().unwrap_or(0)))
            .collect())
    }

    /// Sets the Redis counter too when an operator sets a stock, and the baseline a
    /// rebuild starts from.
    pub(super) async fn reset_stock(&self, key: StockKey, surplus: i64) -> Result<()> {
        if let Some(stock) = &self.stock {
            stock.reset(key, surplus).await?;
            self.rebase_stock(key, surplus).await?;
        }
        Ok(())
    }

    /// Copies changed counters to the SQL surplus columns, in one transaction; on failure
    /// the counters stay marked for the next round. How many rows were written.
    pub async fn write_back_stock(&self) -> Result<usize> {
        let Some(stock) = &self.stock else {
            return Ok(0);
        };
        let dirty = stock.take_dirty().await?;
        if dirty.is_empty() {
            return Ok(0);
        }
        match self.write_surplus(&dirty).await {
            Ok(()) => Ok(dirty.len()),
            Err(e) => {
                let keys: Vec<StockKey> = dirty.iter().map(|(k, _)| *k).collect();
                stock.mark_dirty(&keys).await?;
                Err(e)
            }
        }
    }

    /// Copies every counter (start-up, and tests that read the SQL columns).
    pub async fn write_back_all_stock(&self) -> Result<usize> {
        let Some(stock) = &self.stock else {
            return Ok(0);
        };
        let all = stock.surplus_all().await?;
        self.write_surplus(&all).await?;
        Ok(all.len())
    }

    async fn write_surplus(&self, values: &[(StockKey, i64)]) -> Result<()> {
        let cfg = self.cfg();
        let award = format!(
            "UPDATE {cfg}.strategy_award SET award_count_surplus = ?
             WHERE strategy_id = ? AND award_id = ?"
        );
        let sku =
            format!("UPDATE {cfg}.raffle_activity_sku SET stock_count_surplus = ? WHERE sku = ?");
        let mut tx = self.pool().begin().await.map_err(super::store::sql)?;
        for (key, value) in values {
            let q = match key {
                StockKey::Award {
                    strategy_id,
                    award_id,
                } => sqlx::query(&award)
                    .bind(value)
                    .bind(strategy_id)
                    .bind(award_id),
                StockKey::Sku { sku: id } => sqlx::query(&sku).bind(value).bind(id),
            };
            q.execute(&mut *tx).await.map_err(super::store::sql)?;
        }
        tx.commit().await.map_err(super::store::sql)
    }

    /// Settles reservations older than `older_than_ms` milliseconds: confirmed when their
    /// order is in SQL, given back otherwise.
    pub async fn sweep_stock(&self, older_than_ms: i64) -> Result<SweepReport> {
        let Some(stock) = &self.stock else {
            return Ok(SweepReport::default());
        };
        let before = stock.server_time_ms().await? - older_than_ms;
        let report = stock
            .sweep(before, 256, |key, ids| self.committed_orders(key, ids))
            .await?;
        if report.returned + report.confirmed > 0 {
            tracing::info!(
                returned = report.returned,
                confirmed = report.confirmed,
                "stock sweeper settled reservations"
            );
        }
        Ok(report)
    }

    /// Which reservation ids of `key` belong to orders that are in SQL with that award
    /// or SKU.
    async fn committed_orders(&self, key: StockKey, ids: Vec<String>) -> Result<HashSet<String>> {
        // (table, shard) → order ids to look up there.
        let mut asks: BTreeMap<(HolderKind, usize), Vec<(String, String)>> = BTreeMap::new();
        let mut shards: Vec<std::sync::Arc<Shard>> = Vec::new();
        for id in ids {
            let Some((kind, order_id, user_id)) = parse_id(&id) else {
                return Err(Error::internal(format!(
                    "malformed stock reservation {id:?}"
                )));
            };
            if kind == HolderKind::Strategy {
                continue; // no order: never committed anything to look for
            }
            let shard = self.shard(user_id);
            let at = match shards
                .iter()
                .position(|s| std::sync::Arc::ptr_eq(s, &shard))
            {
                Some(i) => i,
                None => {
                    shards.push(shard);
                    shards.len() - 1
                }
            };
            asks.entry((kind, at))
                .or_default()
                .push((order_id.to_owned(), id.clone()));
        }
        let mut found = HashSet::new();
        for ((kind, at), orders) in asks {
            let Some(shard) = shards.get(at) else {
                continue;
            };
            let (table, column, value) = match (kind, key) {
                (HolderKind::Raffle, StockKey::Award { award_id, .. }) => {
                    ("user_award_record", "award_id", i64::from(award_id))
                }
                (HolderKind::Recharge, StockKey::Sku { sku }) => {
                    ("raffle_activity_order", "sku", sku)
                }
                (kind, key) => {
                    return Err(Error::internal(format!(
                        "reservation kind {kind:?} does not hold {key}"
                    )));
                }
            };
            let marks = vec!["?"; orders.len()].join(",");
            let sql = format!(
                "SELECT order_id FROM {db}.{table}{sfx} WHERE {column} = ? AND order_id IN ({marks})",
                db = shard.db,
                sfx = shard.sfx
            );
            let mut q = sqlx::query_as::<_, (String,)>(&sql).bind(value);
            for (order_id, _) in &orders {
                q = q.bind(order_id);
            }
            let present: HashSet<String> = self
                .all_on(&shard.pool, q)
                .await?
                .into_iter()
                .map(|r| r.0)
                .collect();
            found.extend(
                orders
                    .into_iter()
                    .filter(|(order_id, _)| present.contains(order_id))
                    .map(|(_, id)| id),
            );
        }
        Ok(found)
    }
}

impl StockStore for MysqlTx {
    async fn take_award_stock(
        &mut self,
        strategy_id: i64,
        award_id: i32,
        held_back: i64,
    ) -> Result<bool> {
        if let Some(hold) = &mut self.stock {
            let key = StockKey::Award {
                strategy_id,
                award_id,
            };
            return hold.reserve_above(key, held_back).await;
        }
        let sql = format!(
            "UPDATE {cfg}.strategy_award SET award_count_surplus = award_count_surplus - 1
             WHERE strategy_id = ? AND award_id = ? AND award_count_surplus > GREATEST(?, 0)",
            cfg = self.shard.cfg
        );
        let taken = self
            .exec(
                sqlx::query(&sql)
                    .bind(strategy_id)
                    .bind(award_id)
                    .bind(held_back),
            )
            .await?
            == 1;
        if taken {
            self.award_units.push(StockKey::Award {
                strategy_id,
                award_id,
            });
        }
        Ok(taken)
    }
}

#[cfg(all(test, feature = "production-tests"))]
mod redis_tests {
    use super::{HolderKind, StockHold, parse_id};
    use crate::redis_store::{RedisStock, StockKey};

    /// Against this machine's Redis (or `TEST_REDIS_URL`), under a fresh prefix.
    #[tokio::test]
    async fn one_order_taking_a_stock_twice_takes_two_units() {
        let url = std::env::var("TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string());
        let (_, mut conn) = crate::redis_store::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("this test needs Redis at {url}: {e}"));
        let prefix = format!("bm-unit-{:016x}:", rand::random::<u64>());
        let store = RedisStock::new(conn.clone(), prefix.clone()).await.unwrap();
        let key = StockKey::Award {
            strategy_id: 1,
            award_id: 2,
        };
        store.init(key, 5).await.unwrap();
        let mut hold = StockHold {
            store: store.clone(),
            user_id: "u:1".into(),
            holder: None,
            reserved: Vec::new(),
            rebuild: Default::default(),
        };
        hold.hold_for(HolderKind::Raffle, "123456789012");
        assert!(hold.reserve(key).await.unwrap());
        assert!(hold.reserve(key).await.unwrap());
        assert_eq!(store.surplus(key).await.unwrap(), Some(3));
        assert_eq!(store.pending(key).await.unwrap(), 2);
        for r in &hold.reserved {
            let (kind, order, user) = parse_id(&r.id).unwrap();
            assert_eq!(
                (kind, order, user),
                (HolderKind::Raffle, "123456789012", "u:1"),
                "{}",
                r.id
            );
        }
        super::settle(Some(hold), false).await;
        assert_eq!(
            store.surplus(key).await.unwrap(),
            Some(5),
            "both given back"
        );
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: i64 = ::redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::{HolderKind, parse_id};

    #[test]
    fn reservation_ids_keep_user_ids_with_colons() {
        assert_eq!(
            parse_id("r:123456789012:a:b"),
            Some((HolderKind::Raffle, "123456789012", "a:b"))
        );
        assert_eq!(
            parse_id("a:123456789012.00012345:u.1"),
            Some((HolderKind::Recharge, "123456789012", "u.1"))
        );
        assert_eq!(parse_id("x"), None);
        assert_eq!(parse_id("q:123456789012:u"), None);
    }
}
