//! Award and SKU stock with a reservation ledger (DESIGN §7).
//!
//! Keys, under the prefix `P` (hash tag in braces, so the counter and its ledger share a
//! cluster slot):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P strategy_award_count_key_{sid}_{aid}` | string int | units left of an award |
//! | `P activity_sku_stock_count_key_{sku}` | string int | units left of a SKU |
//! | `… _reserved` next to each counter | zset | reservation id → reserved at (ms) |
//! | `P stock_keys` | set | every counter the armory created (for the sweeper) |
//! | `P stock_dirty` | set | counters changed since the last write-back |
//!
//! Life cycle of a unit: [`RedisStock::reserve`] (one script: decrement only when > 0 and
//! record the reservation) → the order's SQL transaction → [`RedisStock::confirm`] after
//! commit (drop the record; the unit stays taken) or [`RedisStock::cancel`] after rollback
//! (drop the record and give the unit back, once). A crash between the two leaves the
//! record; [`RedisStock::sweep`] asks SQL whether those orders exist and confirms or
//! cancels them. So `initial = remaining + reserved + granted` always holds, and
//! `remaining + granted = initial` after the sweep.
//!
//! The sweep's bound must exceed the longest a draw's SQL transaction can stay open:
//! a reservation is cancelled only when its order is absent *and* old.

use super::RedisConn;
use super::{RedisError, Result, check_prefix};
use ::redis::{AsyncCommands, ErrorKind, Pipeline, Script, ServerErrorKind, pipe};
use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::sync::LazyLock;

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("reserve.lua")));
static CANCEL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("cancel.lua")));
static ADJUST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("adjust.lua")));
static TAKE_DIRTY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("take_dirty.lua")));

/// Which stock a counter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StockKey {
    Award { strategy_id: i64, award_id: i32 },
    Sku { sku: i64 },
}

impl StockKey {
    /// The member stored in the registry and dirty sets (also the SQL baseline's key).
    pub fn encode(&self) -> String {
        match self {
            StockKey::Award {
                strategy_id,
                award_id,
            } => format!("award:{strategy_id}:{award_id}"),
            StockKey::Sku { sku } => format!("sku:{sku}"),
        }
    }

    fn decode(s: &str) -> Result<Self> {
        let corrupt = || RedisError::Corrupt(format!("stock key member {s:?}"));
        let mut parts = s.split(':');
        let key = match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("award"), Some(sid), Some(aid), None) => StockKey::Award {
                strategy_id: sid.parse().map_err(|_| corrupt())?,
                award_id: aid.parse().map_err(|_| corrupt())?,
            },
            (Some("sku"), Some(sku), None, None) => StockKey::Sku {
                sku: sku.parse().map_err(|_| corrupt())?,
            },
            _ => return Err(corrupt()),
        };
        Ok(key)
    }
}

impl fmt::Display for StockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StockKey::Award {
                strategy_id,
                award_id,
            } => write!(f, "award {strategy_id}_{award_id}"),
            StockKey::Sku { sku } => write!(f, "sku {sku}"),
        }
    }
}

/// One reserved unit: the stock it came from and the order that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reservation {
    pub key: StockKey,
    /// The order id the SQL side looks up (raffle order id, activity order id).
    pub id: String,
}

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Units given back: their orders never committed.
    pub returned: u64,
    /// Reservations closed because their orders are in SQL.
    pub confirmed: u64,
}

/// Stock counters and reservations in Redis. Cheap to clone (one multiplexed connection).
#[derive(Clone)]
pub struct RedisStock {
    conn: RedisConn,
    prefix: String,
}

impl RedisStock {
    /// Loads the scripts so the hot path runs `EVALSHA` straight away.
    pub async fn new(conn: impl Into<RedisConn>, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        check_prefix(&prefix)?;
        let conn = conn.into();
        let mut c = conn.clone();
        for script in [&*RESERVE, &*CANCEL, &*TAKE_DIRTY, &*ADJUST] {
            script.load_async(&mut c).await?;
        }
        Ok(Self { conn, prefix })
    }

    /// The counter's key, spec §6 names with a hash tag.
    pub fn counter_key(&self, key: &StockKey) -> String {
        match key {
            StockKey::Award {
                strategy_id,
                award_id,
            } => format!(
                "{}strategy_award_count_key_{{{strategy_id}}}_{award_id}",
                self.prefix
            ),
            StockKey::Sku { sku } => {
                format!("{}activity_sku_stock_count_key_{{{sku}}}", self.prefix)
            }
        }
    }

    fn reservations_key(&self, key: &StockKey) -> String {
        format!("{}_reserved", self.counter_key(key))
    }

    fn registry_key(&self) -> String {
        format!("{}stock_keys", self.prefix)
    }

    fn dirty_key(&self) -> String {
        format!("{}stock_dirty", self.prefix)
    }

    // ---- armory ----

    /// Caches the stock if absent (the armory); returns whether it was set now.
    pub async fn init(&self, key: StockKey, surplus: i64) -> Result<bool> {
        let mut conn = self.conn.clone();
        if conn.is_cluster() {
            // Counter and registry are in different slots: two commands.
            let set: Option<String> = ::redis::cmd("SET")
                .arg(self.counter_key(&key))
                .arg(surplus)
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            let _: i64 = conn.sadd(self.registry_key(), key.encode()).await?;
            return Ok(set.is_some());
        }
        let (set,): (Option<String>,) = pipe()
            .cmd("SET")
            .arg(self.counter_key(&key))
            .arg(surplus)
            .arg("NX")
            .cmd("SADD")
            .arg(self.registry_key())
            .arg(key.encode())
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    pub async fn init_award(&self, strategy_id: i64, award_id: i32, surplus: i64) -> Result<bool> {
        let key = StockKey::Award {
            strategy_id,
            award_id,
        };
        self.init(key, surplus).await
    }

    pub async fn init_sku(&self, sku: i64, surplus: i64) -> Result<bool> {
        self.init(StockKey::Sku { sku }, surplus).await
    }

    /// Operator override: the counter becomes `surplus` and pending reservations are
    /// forgotten (their later confirm or cancel then changes nothing), so the value set
    /// is exactly what is left to sell.
    pub async fn reset(&self, key: StockKey, surplus: i64) -> Result<()> {
        let mut conn = self.conn.clone();
        // Counter and ledger share a slot, so they change together in one MULTI.
        let () = pipe()
            .atomic()
            .cmd("SET")
            .arg(self.counter_key(&key))
            .arg(surplus)
            .ignore()
            .cmd("DEL")
            .arg(self.reservations_key(&key))
            .ignore()
            .query_async(&mut conn)
            .await?;
        if conn.is_cluster() {
            let _: i64 = conn.sadd(self.registry_key(), key.encode()).await?;
            let _: i64 = conn.sadd(self.dirty_key(), key.encode()).await?;
            return Ok(());
        }
        let () = pipe()
            .cmd("SADD")
            .arg(self.registry_key())
            .arg(key.encode())
            .ignore()
            .cmd("SADD")
            .arg(self.dirty_key())
            .arg(key.encode())
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    // ---- the hot path ----

    /// Takes one unit for `reservation_id` and records it, atomically, stamped `now_ms`
    /// (negative: Redis's own clock). `false` when sold out; [`RedisError::NotAssembled`] when the counter is missing. Repeating a
    /// reservation id takes nothing more and answers `true`.
    pub async fn reserve(&self, key: StockKey, reservation_id: &str, now_ms: i64) -> Result<bool> {
        self.reserve_above(key, reservation_id, now_ms, 0).await
    }

    /// As [`Self::reserve`], taking a unit only while more than `held_back` are left, in
    /// the same script (units a release plan has not released yet count as sold out).
    pub async fn reserve_above(
        &self,
        key: StockKey,
        reservation_id: &str,
        now_ms: i64,
        held_back: i64,
    ) -> Result<bool> {
        let outcome = self
            .run_and_mark(
                &RESERVE,
                &key,
                &[
                    reservation_id,
                    &now_ms.to_string(),
                    &held_back.max(0).to_string(),
                ],
            )
            .await?;
        match outcome {
            -1 => Err(RedisError::NotAssembled(key)),
            0 => Ok(false),
            1 | 2 => Ok(true),
            other => Err(RedisError::Corrupt(format!("reserve answered {other}"))),
        }
    }

    pub async fn reserve_award(
        &self,
        strategy_id: i64,
        award_id: i32,
        reservation_id: &str,
        now_ms: i64,
    ) -> Result<Option<Reservation>> {
        let key = StockKey::Award {
            strategy_id,
            award_id,
        };
        self.reserve_for(key, reservation_id, now_ms).await
    }

    pub async fn reserve_sku(
        &self,
        sku: i64,
        reservation_id: &str,
        now_ms: i64,
    ) -> Result<Option<Reservation>> {
        self.reserve_for(StockKey::Sku { sku }, reservation_id, now_ms)
            .await
    }

    async fn reserve_for(
        &self,
        key: StockKey,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<Reservation>> {
        let taken = self.reserve(key, id, now_ms).await?;
        Ok(taken.then(|| Reservation {
            key,
            id: id.to_string(),
        }))
    }

    /// The order committed: drop the record, the unit stays taken. `false` when there
    /// was no record (already confirmed, cancelled by a sweep, or reset).
    pub async fn confirm(&self, reservation: &Reservation) -> Result<bool> {
        let mut conn = self.conn.clone();
        let removed: i64 = conn
            .zrem(self.reservations_key(&reservation.key), &reservation.id)
            .await?;
        Ok(removed == 1)
    }

    /// The order rolled back: give the unit back if the record was still there.
    /// Idempotent: a second cancel, or a cancel after confirm, changes nothing.
    pub async fn cancel(&self, reservation: &Reservation) -> Result<bool> {
        let returned = self
            .run_and_mark(&CANCEL, &reservation.key, &[&reservation.id])
            .await?;
        Ok(returned == 1)
    }

    /// Changes what is left by `delta` (a campaign changed the total by `delta`):
    /// `None` when the counter is not assembled (the SQL surplus is then the truth),
    /// `Some(false)` when fewer than `-delta` units are left (nothing changes).
    pub async fn adjust(&self, key: StockKey, delta: i64) -> Result<Option<bool>> {
        let outcome = self
            .run_and_mark(&ADJUST, &key, &[&delta.to_string()])
            .await?;
        Ok(match outcome {
            -1 => None,
            0 => Some(false),
            _ => Some(true),
        })
    }

    /// Runs a stock script and marks the counter dirty in the same round trip. The mark
    /// comes after the script, so a write-back that misses it reads the counter later.
    /// On a cluster the dirty set lives in another slot than the counter: the mark is a
    /// second command after the script.
    async fn run_and_mark(&self, script: &Script, key: &StockKey, args: &[&str]) -> Result<i64> {
        if self.conn.is_cluster() {
            let mut conn = self.conn.clone();
            let mut invocation = script.prepare_invoke();
            invocation
                .key(self.counter_key(key))
                .key(self.reservations_key(key));
            for arg in args {
                invocation.arg(*arg);
            }
            // Loads the script on the key's node when that node does not know it.
            let outcome: i64 = invocation.invoke_async(&mut conn).await?;
            let _: i64 = conn.sadd(self.dirty_key(), key.encode()).await?;
            return Ok(outcome);
        }
        let build = || -> Pipeline {
            let mut p = pipe();
            p.cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(2)
                .arg(self.counter_key(key))
                .arg(self.reservations_key(key))
                .arg(args)
                .cmd("SADD")
                .arg(self.dirty_key())
                .arg(key.encode())
                .ignore();
            p
        };
        let mut conn = self.conn.clone();
        let first: std::result::Result<(i64,), _> = build().query_async(&mut conn).await;
        let (outcome,) = match first {
            Ok(v) => v,
            // A restarted server forgets scripts: load once more and retry.
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                script.load_async(&mut conn).await?;
                build().query_async(&mut conn).await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(outcome)
    }

    // ---- readers ----

    /// The server answers `PING` (`/ready`).
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: String = ::redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Redis's clock in milliseconds: reservations are stamped with it, so the sweeper's
    /// age check does not depend on the nodes' clocks agreeing.
    pub async fn server_time_ms(&self) -> Result<i64> {
        let mut conn = self.conn.clone();
        let (secs, micros): (i64, i64) = ::redis::cmd("TIME").query_async(&mut conn).await?;
        Ok(secs * 1000 + micros / 1000)
    }

    /// Units left, `None` when not assembled.
    pub async fn surplus(&self, key: StockKey) -> Result<Option<i64>> {
        let mut conn = self.conn.clone();
        Ok(conn.get(self.counter_key(&key)).await?)
    }

    /// Reservations still open on a counter.
    pub async fn pending(&self, key: StockKey) -> Result<u64> {
        let mut conn = self.conn.clone();
        Ok(conn.zcard(self.reservations_key(&key)).await?)
    }

    /// Every assembled counter with its value: the full pass of the write-back job (at
    /// start-up, or after the job lost a batch).
    pub async fn surplus_all(&self) -> Result<Vec<(StockKey, i64)>> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = conn.smembers(self.registry_key()).await?;
        self.read_counters(members).await
    }

    // ---- write-back ----

    /// Counters changed since the last call, with their current values, so a job writes
    /// the SQL surplus columns in batches. If the SQL write fails, hand the keys back
    /// with [`RedisStock::mark_dirty`].
    pub async fn take_dirty(&self) -> Result<Vec<(StockKey, i64)>> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = TAKE_DIRTY
            .key(self.dirty_key())
            .invoke_async(&mut conn)
            .await?;
        self.read_counters(members).await
    }

    pub async fn mark_dirty(&self, keys: &[StockKey]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let members: Vec<String> = keys.iter().map(StockKey::encode).collect();
        let _: i64 = conn.sadd(self.dirty_key(), members).await?;
        Ok(())
    }

    async fn read_counters(&self, members: Vec<String>) -> Result<Vec<(StockKey, i64)>> {
        let keys = members
            .iter()
            .map(|m| StockKey::decode(m))
            .collect::<Result<Vec<_>>>()?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One GET per key in one pipeline (MGET would span slots); on a cluster one by
        // one, as a pipeline must stay in one slot there.
        let mut conn = self.conn.clone();
        let values: Vec<Option<i64>> = if conn.is_cluster() {
            let mut values = Vec::with_capacity(keys.len());
            for key in &keys {
                values.push(conn.get(self.counter_key(key)).await?);
            }
            values
        } else {
            let mut p = pipe();
            for key in &keys {
                p.cmd("GET").arg(self.counter_key(key));
            }
            p.query_async(&mut conn).await?
        };
        let mut out: Vec<(StockKey, i64)> = keys
            .into_iter()
            .zip(values)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        out.sort();
        Ok(out)
    }

    // ---- rebuild (a restarted or flushed Redis) ----

    /// Runs `cmds` in one pipeline on a single server; on a cluster one by one, as a
    /// pipeline must stay in one slot there. The replies in order.
    async fn each<T: ::redis::FromRedisValue>(&self, cmds: Vec<::redis::Cmd>) -> Result<Vec<T>> {
        let mut conn = self.conn.clone();
        if conn.is_cluster() {
            let mut out = Vec::with_capacity(cmds.len());
            for cmd in cmds {
                out.push(cmd.query_async(&mut conn).await?);
            }
            return Ok(out);
        }
        let mut p = pipe();
        for cmd in cmds {
            p.add_command(cmd);
        }
        Ok(p.query_async(&mut conn).await?)
    }

    /// Which of `keys` have no counter: a Redis restarted without persistence, flushed,
    /// or that evicted the key. Their draws cannot take stock until they are rebuilt.
    pub async fn missing(&self, keys: &[StockKey]) -> Result<Vec<StockKey>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cmds = keys
            .iter()
            .map(|key| {
                let mut c = ::redis::cmd("EXISTS");
                c.arg(self.counter_key(key));
                c
            })
            .collect();
        let exists: Vec<i64> = self.each(cmds).await?;
        Ok(keys
            .iter()
            .zip(exists)
            .filter(|(_, e)| *e == 0)
            .map(|(k, _)| *k)
            .collect())
    }

    /// Drops the ledger of a missing counter (after an eviction it may outlive the
    /// counter): the transactions holding those reservations then fail their check
    /// before commit ([`RedisStock::held`]) and take nothing.
    pub async fn forget_reservations(&self, key: StockKey) -> Result<()> {
        let mut conn = self.conn.clone();
        let _: i64 = conn.del(self.reservations_key(&key)).await?;
        Ok(())
    }

    /// Sets a rebuilt counter unless one exists now, registers it for the sweeper and
    /// marks it for the write-back. Whether it was set by this call.
    pub async fn restore(&self, key: StockKey, surplus: i64) -> Result<bool> {
        let mut set = ::redis::cmd("SET");
        set.arg(self.counter_key(&key)).arg(surplus).arg("NX");
        let mut register = ::redis::cmd("SADD");
        register.arg(self.registry_key()).arg(key.encode());
        let mut dirty = ::redis::cmd("SADD");
        dirty.arg(self.dirty_key()).arg(key.encode());
        let replies: Vec<::redis::Value> = self.each(vec![set, register, dirty]).await?;
        Ok(!matches!(replies.first(), Some(::redis::Value::Nil) | None))
    }

    /// Whether every one of `reservations` is still recorded. A transaction asks just
    /// before its commit: a reservation gone without a confirm or cancel means Redis
    /// lost it (restart, flush), and a counter rebuilt from SQL would not count a unit
    /// committed after that.
    pub async fn held(&self, reservations: &[Reservation]) -> Result<bool> {
        if reservations.is_empty() {
            return Ok(true);
        }
        let cmds = reservations
            .iter()
            .map(|r| {
                let mut c = ::redis::cmd("ZSCORE");
                c.arg(self.reservations_key(&r.key)).arg(&r.id);
                c
            })
            .collect();
        let scores: Vec<Option<f64>> = self.each(cmds).await?;
        Ok(scores.iter().all(Option::is_some))
    }

    /// Locks under this store's prefix (the rebuild's lease).
    pub fn locks(&self) -> Result<super::RedisLock> {
        super::RedisLock::new(self.conn.clone(), self.prefix.clone())
    }

    // ---- recovery ----

    /// Closes reservations made before `reserved_before_ms`: for each counter, in batches
    /// of at most `batch` ids, `committed(key, ids)` answers which orders exist in SQL
    /// (e.g. one `SELECT … WHERE order_id IN (…)`); those are confirmed, the rest cancelled.
    pub async fn sweep<F, Fut>(
        &self,
        reserved_before_ms: i64,
        batch: usize,
        mut committed: F,
    ) -> Result<SweepReport>
    where
        F: FnMut(StockKey, Vec<String>) -> Fut,
        Fut: Future<Output = big_market_domain::Result<HashSet<String>>>,
    {
        let batch = batch.max(1);
        let mut report = SweepReport::default();
        let mut conn = self.conn.clone();
        let members: Vec<String> = conn.smembers(self.registry_key()).await?;
        let mut keys = members
            .iter()
            .map(|m| StockKey::decode(m))
            .collect::<Result<Vec<_>>>()?;
        keys.sort();
        for key in keys {
            let ledger = self.reservations_key(&key);
            loop {
                // Every id read below leaves the ledger (confirm or cancel), so reading
                // from the start again makes progress.
                let ids: Vec<String> = ::redis::cmd("ZRANGE")
                    .arg(&ledger)
                    .arg("-inf")
                    .arg(format!("({reserved_before_ms}"))
                    .arg("BYSCORE")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(batch)
                    .query_async(&mut conn)
                    .await?;
                if ids.is_empty() {
                    break;
                }
                let found = committed(key, ids.clone()).await?;
                for id in ids {
                    let reservation = Reservation { key, id };
                    if found.contains(&reservation.id) {
                        if self.confirm(&reservation).await? {
                            report.confirmed += 1;
                        }
                    } else if self.cancel(&reservation).await? {
                        report.returned += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stock_keys_round_trip() {
        for key in [
            StockKey::Award {
                strategy_id: 100006,
                award_id: 101,
            },
            StockKey::Sku { sku: 9011 },
        ] {
            assert_eq!(StockKey::decode(&key.encode()).ok(), Some(key));
        }
        assert!(StockKey::decode("award:1").is_err());
        assert!(StockKey::decode("sku:x").is_err());
    }
}
