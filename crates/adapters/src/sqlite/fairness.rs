//! Fairness storage of the embedded store: fair activities, epoch seeds, and the proofs
//! kept in `user_award_record.fair_proof`.

use super::{SqliteStore, StoreError, datetime};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::strategy::fair::{FairSeed, Seed};
use big_market_domain::strategy::fairness::{FairnessRepository, StoredProof};
use big_market_domain::time::format_datetime;
use jiff::civil::DateTime;
use rusqlite::{OptionalExtension, Row, params};

const SEED_COLUMNS: &str = "activity_id, epoch, seed, begin_time, end_time";

fn seed_row(r: &Row<'_>) -> rusqlite::Result<(i64, i64, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn fair_seed(row: (i64, i64, String, String, String)) -> Result<FairSeed, StoreError> {
    let (activity_id, epoch, seed, begin, end) = row;
    Ok(FairSeed {
        activity_id,
        epoch,
        seed: Seed::from_hex(&seed)?,
        begin_time: datetime(&begin)?,
        end_time: datetime(&end)?,
    })
}

#[async_trait]
impl FairnessRepository for SqliteStore {
    async fn fair_activities(&self) -> Result<Vec<i64>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare(
                        "SELECT activity_id FROM raffle_activity_fairness ORDER BY activity_id",
                    )?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?)
            })
            .await?)
    }

    async fn enable_fairness(&self, activity_id: i64) -> Result<()> {
        Ok(self
            .write(move |conn| {
                conn.execute(
                    "INSERT OR IGNORE INTO raffle_activity_fairness (activity_id) VALUES (?1)",
                    params![activity_id],
                )?;
                Ok(())
            })
            .await?)
    }

    async fn latest_epoch(&self, activity_id: i64) -> Result<Option<FairSeed>> {
        Ok(self
            .read(move |conn| {
                conn.query_row(
                    &format!(
                        "SELECT {SEED_COLUMNS} FROM raffle_fairness_seed WHERE activity_id = ?1
                         ORDER BY epoch DESC LIMIT 1"
                    ),
                    params![activity_id],
                    seed_row,
                )
                .optional()?
                .map(fair_seed)
                .transpose()
            })
            .await?)
    }

    async fn epoch(&self, activity_id: i64, epoch: i64) -> Result<Option<FairSeed>> {
        Ok(self
            .read(move |conn| {
                conn.query_row(
                    &format!(
                        "SELECT {SEED_COLUMNS} FROM raffle_fairness_seed
                         WHERE activity_id = ?1 AND epoch = ?2"
                    ),
                    params![activity_id, epoch],
                    seed_row,
                )
                .optional()?
                .map(fair_seed)
                .transpose()
            })
            .await?)
    }

    async fn ended_epochs(
        &self,
        activity_id: i64,
        now: DateTime,
        limit: usize,
    ) -> Result<Vec<FairSeed>> {
        let now = format_datetime(&now);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        Ok(self
            .read(move |conn| {
                conn.prepare(&format!(
                    "SELECT {SEED_COLUMNS} FROM raffle_fairness_seed
                     WHERE activity_id = ?1 AND end_time <= ?2 ORDER BY epoch DESC LIMIT ?3"
                ))?
                .query_map(params![activity_id, now, limit], seed_row)?
                .map(|r| fair_seed(r?))
                .collect()
            })
            .await?)
    }

    async fn insert_epoch(&self, seed: &FairSeed) -> Result<bool> {
        let (activity_id, epoch, hex) = (seed.activity_id, seed.epoch, seed.seed.to_hex());
        let (begin, end) = (
            format_datetime(&seed.begin_time),
            format_datetime(&seed.end_time),
        );
        Ok(self
            .write(move |conn| {
                let n = conn.execute(
                    "INSERT OR IGNORE INTO raffle_fairness_seed (activity_id, epoch, seed, begin_time, end_time)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![activity_id, epoch, hex, begin, end],
                )?;
                Ok(n == 1)
            })
            .await?)
    }

    async fn end_epoch(&self, activity_id: i64, epoch: i64, at: DateTime) -> Result<bool> {
        let at = format_datetime(&at);
        Ok(self
            .write(move |conn| {
                let n = conn.execute(
                    "UPDATE raffle_fairness_seed SET end_time = ?3
                     WHERE activity_id = ?1 AND epoch = ?2 AND end_time > ?3",
                    params![activity_id, epoch, at],
                )?;
                Ok(n == 1)
            })
            .await?)
    }

    async fn stored_proof(&self, user_id: &str, order_id: &str) -> Result<Option<StoredProof>> {
        let (user_id, order_id) = (user_id.to_owned(), order_id.to_owned());
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT activity_id, fair_proof FROM user_award_record
                         WHERE user_id = ?1 AND order_id = ?2",
                        params![user_id, order_id],
                        |r| {
                            Ok(StoredProof {
                                activity_id: r.get(0)?,
                                proof: r.get(1)?,
                            })
                        },
                    )
                    .optional()?)
            })
            .await?)
    }
}
