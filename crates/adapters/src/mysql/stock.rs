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
//! Reservation ids name the order and its user, `{kind}:{order_id}:{user_id}`, so the
//! sweeper knows which shard to ask: `r` for a raffle order (its award record commits
//! with the stock), `a` for an activity order, `x` for a strategy-level raffle that has
//! no order (it never commits a row, so a crash returns its unit).

use super::store::{MysqlStore, MysqlTx, Shard};
use crate::redis_store::{RedisStock, Reservation, StockKey, SweepReport};
use big_market_domain::strategy::StockStore;
use big_market_domain::{Error, Result};
use std::collections::{BTreeMap, HashSet};

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
        let taken = self
            .store
            .reserve_above(key, &id, SERVER_TIME, held_back)
            .await?;
        if taken {
            self.reserved.push(Reservation { key, id });
        }
        Ok(taken)
    }
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

    /// Creates the Redis counters that do not exist yet from the SQL surplus (the
    /// armory); existing counters are the truth and are left alone.
    pub(super) async fn assemble_stock(&self, keys: &[(StockKey, i64)]) -> Result<()> {
        let Some(stock) = &self.stock else {
            return Ok(());
        };
        for (key, surplus) in keys {
            stock.init(*key, *surplus).await?;
        }
        Ok(())
    }

    /// Sets the Redis counter too when an operator sets a stock.
    pub(super) async fn reset_stock(&self, key: StockKey, surplus: i64) -> Result<()> {
        if let Some(stock) = &self.stock {
            stock.reset(key, surplus).await?;
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
        Ok(self
            .exec(
                sqlx::query(&sql)
                    .bind(strategy_id)
                    .bind(award_id)
                    .bind(held_back),
            )
            .await?
            == 1)
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
