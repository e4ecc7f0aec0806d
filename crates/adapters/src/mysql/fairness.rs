//! Fairness storage of the production store: fair activities and epoch seeds in the
//! config database (every node sees the same epoch and seed), proofs in
//! `user_award_record.fair_proof` on the user's shard.

use super::store::datetime;
use super::store::{MysqlStore, duplicate_key};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::strategy::fair::{FairSeed, Seed};
use big_market_domain::strategy::fairness::{FairnessRepository, StoredProof};
use big_market_domain::time::format_datetime;
use jiff::civil::DateTime;

const SEED_COLUMNS: &str = "activity_id, epoch, seed, DATE_FORMAT(begin_time, '%Y-%m-%d %H:%i:%s'),
     DATE_FORMAT(end_time, '%Y-%m-%d %H:%i:%s')";

type SeedRow = (i64, i64, String, String, String);

fn fair_seed(row: SeedRow) -> Result<FairSeed> {
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
impl FairnessRepository for MysqlStore {
    async fn fair_activities(&self) -> Result<Vec<i64>> {
        let sql = format!(
            "SELECT activity_id FROM {cfg}.raffle_activity_fairness ORDER BY activity_id",
            cfg = self.cfg()
        );
        let rows: Vec<(i64,)> = self.all(sqlx::query_as(&sql)).await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    async fn enable_fairness(&self, activity_id: i64) -> Result<()> {
        let sql = format!(
            "INSERT IGNORE INTO {cfg}.raffle_activity_fairness (activity_id) VALUES (?)",
            cfg = self.cfg()
        );
        self.run(sqlx::query(&sql).bind(activity_id)).await?;
        Ok(())
    }

    async fn latest_epoch(&self, activity_id: i64) -> Result<Option<FairSeed>> {
        let sql = format!(
            "SELECT {SEED_COLUMNS} FROM {cfg}.raffle_fairness_seed WHERE activity_id = ?
             ORDER BY epoch DESC LIMIT 1",
            cfg = self.cfg()
        );
        let row: Option<SeedRow> = self.one(sqlx::query_as(&sql).bind(activity_id)).await?;
        row.map(fair_seed).transpose()
    }

    async fn epoch(&self, activity_id: i64, epoch: i64) -> Result<Option<FairSeed>> {
        let sql = format!(
            "SELECT {SEED_COLUMNS} FROM {cfg}.raffle_fairness_seed WHERE activity_id = ? AND epoch = ?",
            cfg = self.cfg()
        );
        let row: Option<SeedRow> = self
            .one(sqlx::query_as(&sql).bind(activity_id).bind(epoch))
            .await?;
        row.map(fair_seed).transpose()
    }

    async fn ended_epochs(
        &self,
        activity_id: i64,
        now: DateTime,
        limit: usize,
    ) -> Result<Vec<FairSeed>> {
        let sql = format!(
            "SELECT {SEED_COLUMNS} FROM {cfg}.raffle_fairness_seed
             WHERE activity_id = ? AND end_time <= ? ORDER BY epoch DESC LIMIT ?",
            cfg = self.cfg()
        );
        let rows: Vec<SeedRow> = self
            .all(
                sqlx::query_as(&sql)
                    .bind(activity_id)
                    .bind(format_datetime(&now))
                    .bind(u64::try_from(limit).unwrap_or(u64::MAX)),
            )
            .await?;
        rows.into_iter().map(fair_seed).collect()
    }

    async fn insert_epoch(&self, seed: &FairSeed) -> Result<bool> {
        let statement = format!(
            "INSERT INTO {cfg}.raffle_fairness_seed (activity_id, epoch, seed, begin_time, end_time)
             VALUES (?, ?, ?, ?, ?)",
            cfg = self.cfg()
        );
        let result = sqlx::query(&statement)
            .bind(seed.activity_id)
            .bind(seed.epoch)
            .bind(seed.seed.to_hex())
            .bind(format_datetime(&seed.begin_time))
            .bind(format_datetime(&seed.end_time))
            .execute(self.pool())
            .await;
        match result {
            Ok(_) => Ok(true),
            // Another node wrote this epoch first: the caller reads it.
            Err(e) if duplicate_key(&e).is_some() => Ok(false),
            Err(e) => Err(super::store::sql(e)),
        }
    }

    async fn end_epoch(&self, activity_id: i64, epoch: i64, at: DateTime) -> Result<bool> {
        let sql = format!(
            "UPDATE {cfg}.raffle_fairness_seed SET end_time = ?
             WHERE activity_id = ? AND epoch = ? AND end_time > ?",
            cfg = self.cfg()
        );
        let at = format_datetime(&at);
        let changed = self
            .run(
                sqlx::query(&sql)
                    .bind(&at)
                    .bind(activity_id)
                    .bind(epoch)
                    .bind(&at),
            )
            .await?;
        Ok(changed == 1)
    }

    async fn stored_proof(&self, user_id: &str, order_id: &str) -> Result<Option<StoredProof>> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT activity_id, fair_proof FROM {db}.user_award_record{sfx}
             WHERE user_id = ? AND order_id = ?",
            db = shard.db,
            sfx = shard.sfx
        );
        let row: Option<(i64, Option<String>)> = self
            .one_on(
                &shard.pool,
                sqlx::query_as(&sql).bind(user_id).bind(order_id),
            )
            .await?;
        Ok(row.map(|(activity_id, proof)| StoredProof { activity_id, proof }))
    }
}
