//! The embedded store's answers to the operator: the back office ([`ErpRepository`]),
//! dynamic configuration ([`DccRepository`]) and readiness and load ([`StoreProbe`]).

use super::activity::stage_row;
use super::{SqliteStore, StoreError, datetime, decimal};
use crate::states::{TASK_CREATE, TASK_FAIL};
use async_trait::async_trait;
use big_market_domain::activity::{RaffleActivityStage, UserRaffleOrder};
use big_market_domain::dcc::DccRepository;
use big_market_domain::erp::{CreditLedgerLine, ErpRepository};
use big_market_domain::health::{OutboxStats, StoreLoad, StoreProbe};
use big_market_domain::{Error, Result};
use rusqlite::{OptionalExtension, params};
use std::sync::atomic::Ordering;

#[async_trait]
impl ErpRepository for SqliteStore {
    async fn latest_raffle_orders(&self, limit: usize) -> Result<Vec<UserRaffleOrder>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state
                         FROM user_raffle_order ORDER BY id DESC LIMIT ?1",
                    )?
                    .query_map([limit], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, String>(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter()
                    .map(|(user_id, activity_id, activity_name, strategy_id, order_id, time, order_state)| {
                        Ok(UserRaffleOrder {
                            user_id,
                            activity_id,
                            activity_name,
                            strategy_id,
                            order_id,
                            order_time: datetime(&time)?,
                            order_state,
                        })
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?)
    }

    async fn stages_newest_first(&self) -> Result<Vec<RaffleActivityStage>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT id, channel, source, activity_id, state FROM raffle_activity_stage ORDER BY id DESC",
                    )?
                    .query_map([], stage_row)?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn stage(&self, id: i64) -> Result<Option<RaffleActivityStage>> {
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT id, channel, source, activity_id, state FROM raffle_activity_stage WHERE id = ?1",
                    )?
                    .query_row([id], stage_row)
                    .optional()?)
            })
            .await?)
    }

    async fn activate_stage(&self, id: i64) -> Result<bool> {
        Ok(self
            .write(move |conn| {
                Ok(conn.execute(
                    "UPDATE raffle_activity_stage SET state = 'active', update_time = CURRENT_TIMESTAMP WHERE id = ?1",
                    [id],
                )? == 1)
            })
            .await?)
    }

    async fn user_raffle_orders(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<UserRaffleOrder>> {
        let user_id = user_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state
                         FROM user_raffle_order WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )?
                    .query_map(params![user_id, limit], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, String>(6)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter()
                    .map(|(user_id, activity_id, activity_name, strategy_id, order_id, time, order_state)| {
                        Ok(UserRaffleOrder {
                            user_id,
                            activity_id,
                            activity_name,
                            strategy_id,
                            order_id,
                            order_time: datetime(&time)?,
                            order_state,
                        })
                    })
                    .collect()
            })
            .await?)
    }

    async fn user_credit_orders(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<CreditLedgerLine>> {
        let user_id = user_id.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT order_id, trade_name, trade_type, trade_amount, out_business_no, create_time
                         FROM user_credit_order WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
                    )?
                    .query_map(params![user_id, limit], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter()
                    .map(|(order_id, trade_name, trade_type, amount, out_business_no, time)| {
                        Ok(CreditLedgerLine {
                            order_id,
                            trade_name,
                            trade_type,
                            trade_amount: decimal(&amount)?,
                            out_business_no,
                            create_time: datetime(&time)?,
                        })
                    })
                    .collect()
            })
            .await?)
    }
}

#[async_trait]
impl DccRepository for SqliteStore {
    async fn load_dcc(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare("SELECT config_key, config_value FROM dcc_config ORDER BY config_key")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }

    async fn save_dcc(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        Ok(self
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO dcc_config (config_key, config_value) VALUES (?1, ?2)
                     ON CONFLICT (config_key) DO UPDATE SET config_value = excluded.config_value, update_time = CURRENT_TIMESTAMP",
                    params![key, value],
                )?;
                Ok(())
            })
            .await?)
    }
}

#[async_trait]
impl StoreProbe for SqliteStore {
    async fn ready(&self) -> Result<()> {
        if !self.inner.writer.alive() {
            return Err(Error::internal("the embedded store's writer has stopped"));
        }
        self.read(|conn| {
            Ok(
                conn.query_row("SELECT COUNT(*) FROM big_market_meta", [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })
        .await?;
        Ok(())
    }

    async fn outbox(&self) -> Result<OutboxStats> {
        Ok(self
            .read(|conn| {
                let by_state = conn
                    .prepare_cached("SELECT state, COUNT(*) FROM task GROUP BY state ORDER BY state")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                // `create_time` is SQLite's CURRENT_TIMESTAMP (UTC), so the age is too.
                // Waiting for delivery: `create` and `fail` (parked ones wait for an operator).
                let oldest: Option<f64> = conn
                    .prepare_cached(
                        &format!("SELECT (julianday('now') - julianday(MIN(create_time))) * 86400.0 FROM task WHERE state IN ('{TASK_CREATE}', '{TASK_FAIL}')"),
                    )?
                    .query_row([], |r| r.get(0))?;
                Ok(OutboxStats {
                    by_state,
                    oldest_pending_secs: oldest.unwrap_or(0.0).max(0.0),
                })
            })
            .await?)
    }

    fn load(&self) -> StoreLoad {
        let stats = self.inner.writer.stats();
        StoreLoad {
            writer_queue: self.inner.writer.queued(),
            idle_readers: self
                .inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
            groups: stats.groups.load(Ordering::Relaxed),
            grouped: stats.jobs.load(Ordering::Relaxed),
            regrouped: 0,
            slow_groups: stats.slow_groups.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteOptions;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn late_jobs_are_refused_lag_counts_undelivered_tasks_and_a_closed_store_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db"), SqliteOptions::default()).unwrap();
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        let past = Instant::now().checked_sub(Duration::from_millis(1));
        let late = store
            .write_by(past, move |_| {
                flag.store(true, Ordering::SeqCst);
                Ok(())
            })
            .await;
        assert!(matches!(late, Err(StoreError::Expired)), "{late:?}");
        assert!(!ran.load(Ordering::SeqCst), "a refused job never runs");
        let e = Error::from(late.unwrap_err());
        assert_eq!(e.code(), big_market_domain::ResponseCode::Hystrix);
        let future = Some(Instant::now() + Duration::from_secs(60));
        assert_eq!(store.write_by(future, |_| Ok(7)).await.unwrap(), 7);

        store.ready().await.unwrap();
        store
            .write(|c| {
                Ok(c.execute_batch(
                    "INSERT INTO task (user_id, topic, message_id, message, state, create_time)
                       VALUES ('u', 'send_award', 'm1', '{}', 'completed', datetime('now', '-1 hour'))",
                )?)
            })
            .await
            .unwrap();
        let stats = store.outbox().await.unwrap();
        assert_eq!(stats.by_state, vec![("completed".to_owned(), 1)]);
        assert_eq!(
            stats.oldest_pending_secs, 0.0,
            "delivered tasks are not lag"
        );
        store
            .write(|c| {
                Ok(c.execute_batch(
                    "INSERT INTO task (user_id, topic, message_id, message, state, create_time)
                       VALUES ('u', 'send_award', 'm2', '{}', 'fail', datetime('now', '-60 seconds'))",
                )?)
            })
            .await
            .unwrap();
        let lag = store.outbox().await.unwrap().oldest_pending_secs;
        assert!((59.0..3600.0).contains(&lag), "{lag}");
        store.save_dcc("degradeSwitch", "open").await.unwrap();
        store.save_dcc("degradeSwitch", "close").await.unwrap();
        assert_eq!(
            store.load_dcc().await.unwrap(),
            vec![("degradeSwitch".to_owned(), "close".to_owned())]
        );
        store.close();
        let mut closed = false;
        for _ in 0..200 {
            if store.ready().await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(closed, "ready fails once the writer stopped");
        assert!(matches!(
            store.write(|_| Ok(())).await,
            Err(StoreError::Closed)
        ));
    }

    /// With `synchronous=FULL` the WAL is synced off the writer: concurrent writers are
    /// all answered, every answered row is there after a reopen, and a WAL that cannot be
    /// synced stops the store instead of answering as if the commit were safe.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn commits_synced_off_the_writer_are_answered_kept_and_a_failed_sync_stops_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let writers = (0..200).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |c| {
                        Ok(c.execute(
                            "INSERT INTO big_market_meta (meta_key, meta_value) VALUES (?1, 'v')",
                            [format!("k{i}")],
                        )?)
                    })
                    .await
            })
        });
        let answered = futures_util::future::join_all(writers).await;
        assert!(
            answered.iter().all(|r| matches!(r, Ok(Ok(1)))),
            "{answered:?}"
        );
        let groups = store.load().groups;
        assert!((1..=200).contains(&groups), "{groups} groups");
        store.close();
        drop(store);

        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let kept: i64 = store
            .read(|c| {
                Ok(c.query_row(
                    "SELECT COUNT(*) FROM big_market_meta WHERE meta_key LIKE 'k%'",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .unwrap();
        assert_eq!(kept, 200);

        // The WAL gone from under the store: the sync cannot be done, so the write is not
        // reported as kept, and the store takes no more.
        std::fs::remove_file(dir.path().join("t.db-wal")).unwrap();
        let lost = store
            .write(|c| {
                Ok(c.execute(
                    "INSERT INTO big_market_meta (meta_key, meta_value) VALUES ('late', 'v')",
                    [],
                )?)
            })
            .await;
        let Err(StoreError::Io(message)) = lost else {
            panic!("expected an unknown outcome, got {lost:?}");
        };
        assert!(message.contains("could not be made durable"), "{message}");
        let after = store.write(|_| Ok(())).await;
        assert!(
            matches!(&after, Err(StoreError::Closed))
                || matches!(&after, Err(StoreError::Io(m)) if m.contains("stopped after a failed sync")),
            "{after:?}"
        );
    }
}
