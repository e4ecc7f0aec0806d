//! Activities on the user databases: the draw's and the recharge's unit of work
//! (`DrawTx`, `RechargeTx` on a shard's transaction) and the activity repository.
//!
//! The account rows are read `FOR UPDATE`: a user's draws queue on their account row, and
//! the lazily created month and day rows are seen once committed (transactions run side
//! by side here, unlike the embedded store's single writer).

use super::credit::cents;
use super::stock::HolderKind;
use super::store::{MysqlStore, MysqlTx, check_deadline, datetime, rng};
use crate::redis_store::StockKey;
use crate::states::{ORDER_COMPLETED, ORDER_WAIT_PAY, RAFFLE_CREATE, RAFFLE_USED};
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::activity::quota::{self, DrawDeduction, DrawOutcome, QuotaRows};
use big_market_domain::activity::service::{AccountRows, DrawJob, RechargeJob};
use big_market_domain::activity::{
    ActivityAccount, ActivityConfig, ActivityRepository, DrawTx, PeriodAccount,
    RaffleActivityCount, RaffleActivityOrder, RaffleActivitySku, RaffleActivityStage, RechargeTx,
    UserRaffleOrder,
};
use big_market_domain::id::Inserted;
use big_market_domain::task::Task;
use big_market_domain::time::{CalendarKeys, format_datetime};
use jiff::civil::DateTime;
use rust_decimal::Decimal;
use sqlx::MySqlConnection;
use std::collections::HashMap;

impl MysqlStore {
    /// One draw in its own transaction on the user's shard (the deadline already checked).
    pub(super) async fn draw_now(&self, job: &DrawJob) -> Result<DrawOutcome> {
        self.in_user_tx(&job.user_id, |mut tx| async move {
            let r = quota::draw(&mut tx, job.input(), &mut rng()).await;
            (tx, r)
        })
        .await
    }
}

#[async_trait]
impl ActivityRepository for MysqlStore {
    async fn activity_ids(&self) -> Result<Vec<i64>> {
        MysqlStore::activity_ids(self).await
    }

    async fn activity_config(&self, activity_id: i64) -> Result<Option<ActivityConfig>> {
        let config = self.load_activity(activity_id).await?;
        if let Some(c) = &config {
            let stock: Vec<_> = c
                .skus
                .iter()
                .map(|(s, _)| (StockKey::Sku { sku: s.sku }, s.stock_count_surplus))
                .collect();
            self.assemble_stock(&stock).await?;
        }
        Ok(config)
    }

    async fn activity_of_sku(&self, sku: i64) -> Result<Option<i64>> {
        MysqlStore::activity_of_sku(self, sku).await
    }

    async fn recharge(&self, job: RechargeJob) -> Result<RaffleActivityOrder> {
        let job = &job;
        self.in_user_tx(&job.request.user_id, |mut tx| async move {
            let r = match job.input() {
                Ok(input) => quota::recharge(&mut tx, input, &mut rng()).await,
                Err(e) => Err(e),
            };
            (tx, r)
        })
        .await
    }

    async fn exchange(
        &self,
        job: RechargeJob,
        timestamp_ms: i64,
    ) -> Result<(RaffleActivityOrder, Task)> {
        let job = &job;
        self.in_user_tx(&job.request.user_id, |mut tx| async move {
            let r = match job.input() {
                Ok(input) => quota::exchange(&mut tx, input, timestamp_ms, &mut rng()).await,
                Err(e) => Err(e),
            };
            (tx, r)
        })
        .await
    }

    async fn deliver_paid_order(
        &self,
        user_id: &str,
        out_business_no: &str,
        keys: &CalendarKeys,
    ) -> Result<bool> {
        self.in_user_tx(user_id, |mut tx| async move {
            let r = quota::deliver_paid_order(&mut tx, user_id, out_business_no, keys).await;
            (tx, r)
        })
        .await
    }

    async fn draw(&self, job: DrawJob) -> Result<DrawOutcome> {
        if let Some(groups) = &self.groups {
            return groups.draws.submit(self, job).await;
        }
        check_deadline(job.deadline, &job.gate)?;
        self.draw_now(&job).await
    }

    async fn account_rows(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<AccountRows> {
        let shard = self.shard(user_id);
        let (db, pool) = (&shard.db, &shard.pool);
        let sql = format!(
            "SELECT user_id, activity_id, total_count, total_count_surplus, day_count,
                    day_count_surplus, month_count, month_count_surplus
             FROM {db}.raffle_activity_account WHERE user_id = ? AND activity_id = ?"
        );
        type AccountRow = (String, i64, i64, i64, i64, i64, i64, i64);
        let account: Option<AccountRow> = self
            .one_on(pool, sqlx::query_as(&sql).bind(user_id).bind(activity_id))
            .await?;
        let sql = format!(
            "SELECT user_id, activity_id, month, month_count, month_count_surplus
             FROM {db}.raffle_activity_account_month WHERE user_id = ? AND activity_id = ? AND month = ?"
        );
        type PeriodRow = (String, i64, String, i64, i64);
        let month: Option<PeriodRow> = self
            .one_on(
                pool,
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(activity_id)
                    .bind(&keys.month),
            )
            .await?;
        let sql = format!(
            "SELECT user_id, activity_id, day, day_count, day_count_surplus
             FROM {db}.raffle_activity_account_day WHERE user_id = ? AND activity_id = ? AND day = ?"
        );
        let day: Option<PeriodRow> = self
            .one_on(
                pool,
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(activity_id)
                    .bind(&keys.day),
            )
            .await?;
        let period = |r: PeriodRow| PeriodAccount {
            user_id: r.0,
            activity_id: r.1,
            period: r.2,
            count: r.3,
            count_surplus: r.4,
        };
        Ok(AccountRows {
            account: account.map(|r| ActivityAccount {
                user_id: r.0,
                activity_id: r.1,
                total_count: r.2,
                total_count_surplus: r.3,
                day_count: r.4,
                day_count_surplus: r.5,
                month_count: r.6,
                month_count_surplus: r.7,
            }),
            month: month.map(period),
            day: day.map(period),
        })
    }

    async fn sku_products(
        &self,
        activity_id: i64,
    ) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>> {
        let mut rows = self.sku_rows(activity_id).await?;
        // With Redis stock the SQL column trails the counter by a write-back interval.
        if let Some(stock) = &self.stock {
            for (sku, _) in &mut rows {
                if let Some(left) = stock.surplus(StockKey::Sku { sku: sku.sku }).await? {
                    sku.stock_count_surplus = left;
                }
            }
        }
        Ok(rows)
    }

    async fn stages(&self) -> Result<Vec<RaffleActivityStage>> {
        self.load_stages(false).await
    }

    async fn has_order(&self, user_id: &str, sku: i64, out_business_no: &str) -> Result<bool> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT 1 FROM {db}.raffle_activity_order{sfx}
             WHERE user_id = ? AND sku = ? AND out_business_no = ? LIMIT 1",
            db = shard.db,
            sfx = shard.sfx
        );
        let row: Option<(i32,)> = self
            .one_on(
                &shard.pool,
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(sku)
                    .bind(out_business_no),
            )
            .await?;
        Ok(row.is_some())
    }
}

type RaffleOrderRow = (String, i64, String, i64, String, String, String);

type ActivityOrderRow = (
    String,
    i64,
    i64,
    String,
    i64,
    String,
    String,
    i64,
    i64,
    i64,
    Option<Decimal>,
    String,
    String,
);

pub(super) const RAFFLE_ORDER_COLUMNS: &str =
    "user_id, activity_id, activity_name, strategy_id, order_id,
     DATE_FORMAT(order_time, '%Y-%m-%d %H:%i:%s'), order_state";

pub(super) fn raffle_order(r: RaffleOrderRow) -> Result<UserRaffleOrder> {
    Ok(UserRaffleOrder {
        user_id: r.0,
        activity_id: r.1,
        activity_name: r.2,
        strategy_id: r.3,
        order_id: r.4,
        order_time: datetime(&r.5)?,
        order_state: r.6,
    })
}

const ACTIVITY_ORDER_COLUMNS: &str =
    "user_id, sku, activity_id, activity_name, strategy_id, order_id,
     DATE_FORMAT(order_time, '%Y-%m-%d %H:%i:%s'), total_count, day_count, month_count, pay_amount,
     state, out_business_no";

fn activity_order(r: ActivityOrderRow) -> Result<RaffleActivityOrder> {
    Ok(RaffleActivityOrder {
        user_id: r.0,
        sku: r.1,
        activity_id: r.2,
        activity_name: r.3,
        strategy_id: r.4,
        order_id: r.5,
        order_time: datetime(&r.6)?,
        total_count: r.7,
        day_count: r.8,
        month_count: r.9,
        pay_amount: r.10.unwrap_or(Decimal::ZERO),
        state: r.11,
        out_business_no: r.12,
    })
}

/// Whether a read locks the rows it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lock {
    /// `FOR UPDATE`: inside the transaction that changes them.
    ForUpdate,
    /// A plain read (queries outside a transaction).
    No,
}

/// The accounts of `users` in an activity with this month's and today's rows, by user;
/// locked (in user order, as every reader takes them) with [`Lock::ForUpdate`]. One
/// statement for any number of users: a draw reads one, a group of draws all of theirs.
pub(super) async fn read_quota_rows(
    conn: &mut MySqlConnection,
    db: &str,
    activity_id: i64,
    keys: &CalendarKeys,
    users: &[&str],
    lock: Lock,
) -> Result<HashMap<String, QuotaRows>, sqlx::Error> {
    let (month, day) = (keys.month.as_str(), keys.day.as_str());
    let lock = match lock {
        Lock::ForUpdate => " FOR UPDATE",
        Lock::No => "",
    };
    let list = vec!["?"; users.len()].join(", ");
    let sql = format!(
        "SELECT a.user_id, a.total_count, a.total_count_surplus, a.day_count,
                a.day_count_surplus, a.month_count, a.month_count_surplus,
                m.month_count, m.month_count_surplus, d.day_count, d.day_count_surplus
         FROM {db}.raffle_activity_account a
         LEFT JOIN {db}.raffle_activity_account_month m
           ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = ?
         LEFT JOIN {db}.raffle_activity_account_day d
           ON d.user_id = a.user_id AND d.activity_id = a.activity_id AND d.day = ?
         WHERE a.activity_id = ? AND a.user_id IN ({list})
         ORDER BY a.user_id{lock}"
    );
    type Row = (
        String,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    let mut q = sqlx::query_as::<_, Row>(&sql)
        .bind(month)
        .bind(day)
        .bind(activity_id);
    for u in users {
        q = q.bind(*u);
    }
    let mut rows = HashMap::new();
    for r in q.fetch_all(conn).await? {
        let period = |key: &str, count: Option<i64>, surplus: Option<i64>| {
            count
                .zip(surplus)
                .map(|(count, count_surplus)| PeriodAccount {
                    user_id: r.0.clone(),
                    activity_id,
                    period: key.to_owned(),
                    count,
                    count_surplus,
                })
        };
        let quota = QuotaRows {
            account: Some(ActivityAccount {
                user_id: r.0.clone(),
                activity_id,
                total_count: r.1,
                total_count_surplus: r.2,
                day_count: r.3,
                day_count_surplus: r.4,
                month_count: r.5,
                month_count_surplus: r.6,
            }),
            month: period(month, r.7, r.8),
            day: period(day, r.9, r.10),
        };
        rows.insert(r.0.clone(), quota);
    }
    Ok(rows)
}

impl DrawTx for MysqlTx {
    /// One statement: the account with this month's and today's rows, all locked.
    async fn quota_rows(
        &mut self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<QuotaRows> {
        let db = self.shard.db.clone();
        let r = read_quota_rows(
            &mut self.tx,
            &db,
            activity_id,
            keys,
            &[user_id],
            Lock::ForUpdate,
        )
        .await;
        // At most one row: user ids compare as the column's collation does, so it may be
        // spelled otherwise than asked (`Alice` for `alice`), and it is this user's.
        Ok(self.check(r)?.into_values().next().unwrap_or_default())
    }

    /// One multi-table `UPDATE` of the total row and the month and day rows named.
    async fn deduct_draw(&mut self, d: DrawDeduction<'_>) -> Result<bool> {
        let db = &self.shard.db;
        let mut sql = format!("UPDATE {db}.raffle_activity_account a");
        let mut set = String::from(
            "a.total_count_surplus = a.total_count_surplus - 1, \
             a.month_count_surplus = ?, a.day_count_surplus = ?",
        );
        let mut guard = String::from("a.total_count_surplus > 0");
        if d.month.is_some() {
            sql.push_str(&format!(
                " JOIN {db}.raffle_activity_account_month m
                   ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = ?"
            ));
            set.push_str(", m.month_count_surplus = m.month_count_surplus - 1");
            guard.push_str(" AND m.month_count_surplus > 0");
        }
        if d.day.is_some() {
            sql.push_str(&format!(
                " JOIN {db}.raffle_activity_account_day dd
                   ON dd.user_id = a.user_id AND dd.activity_id = a.activity_id AND dd.day = ?"
            ));
            set.push_str(", dd.day_count_surplus = dd.day_count_surplus - 1");
            guard.push_str(" AND dd.day_count_surplus > 0");
        }
        sql.push_str(&format!(
            " SET {set} WHERE a.user_id = ? AND a.activity_id = ? AND {guard}"
        ));
        let mut q = sqlx::query(&sql);
        for key in [d.month, d.day].into_iter().flatten() {
            q = q.bind(key);
        }
        let q = q
            .bind(d.month_left)
            .bind(d.day_left)
            .bind(d.user_id)
            .bind(d.activity_id);
        let rows = 1 + u64::from(d.month.is_some()) + u64::from(d.day.is_some());
        Ok(self.exec(q).await? == rows)
    }

    async fn insert_month(&mut self, row: &PeriodAccount) -> Result<()> {
        self.insert_period("month", row).await
    }

    async fn insert_day(&mut self, row: &PeriodAccount) -> Result<()> {
        self.insert_period("day", row).await
    }

    async fn unused_raffle_order(
        &mut self,
        user_id: &str,
        activity_id: i64,
    ) -> Result<Option<UserRaffleOrder>> {
        let sql = format!(
            "SELECT {RAFFLE_ORDER_COLUMNS} FROM {db}.user_raffle_order{sfx}
             WHERE user_id = ? AND activity_id = ? AND order_state = '{RAFFLE_CREATE}'
             ORDER BY id DESC LIMIT 1",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row: Option<RaffleOrderRow> = self
            .optional(sqlx::query_as(&sql).bind(user_id).bind(activity_id))
            .await?;
        row.map(raffle_order).transpose()
    }

    async fn insert_raffle_order(&mut self, o: &UserRaffleOrder) -> Result<Inserted> {
        let sql = format!(
            "INSERT INTO {db}.user_raffle_order{sfx}
                 (user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let q = sqlx::query(&sql)
            .bind(&o.user_id)
            .bind(o.activity_id)
            .bind(&o.activity_name)
            .bind(o.strategy_id)
            .bind(&o.order_id)
            .bind(format_datetime(&o.order_time))
            .bind(&o.order_state);
        let r = self.insert_random_id("uq_order_id", q).await;
        let inserted = self.check(r)?;
        if inserted == Inserted::Done {
            self.hold_for(HolderKind::Raffle, &o.order_id);
        }
        Ok(inserted)
    }

    async fn use_raffle_order(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let sql = format!(
            "UPDATE {db}.user_raffle_order{sfx} SET order_state = '{RAFFLE_USED}'
             WHERE user_id = ? AND order_id = ? AND order_state = '{RAFFLE_CREATE}'",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let used = self
            .exec(sqlx::query(&sql).bind(user_id).bind(order_id))
            .await?
            == 1;
        if used {
            self.hold_for(HolderKind::Raffle, order_id);
        }
        Ok(used)
    }
}

impl RechargeTx for MysqlTx {
    async fn insert_activity_order(&mut self, o: &RaffleActivityOrder) -> Result<Inserted> {
        let sql = format!(
            "INSERT INTO {db}.raffle_activity_order{sfx} (user_id, sku, activity_id, activity_name,
                 strategy_id, order_id, order_time, total_count, day_count, month_count, pay_amount,
                 state, out_business_no)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let q = sqlx::query(&sql)
            .bind(&o.user_id)
            .bind(o.sku)
            .bind(o.activity_id)
            .bind(&o.activity_name)
            .bind(o.strategy_id)
            .bind(&o.order_id)
            .bind(format_datetime(&o.order_time))
            .bind(o.total_count)
            .bind(o.day_count)
            .bind(o.month_count)
            .bind(cents(o.pay_amount))
            .bind(&o.state)
            .bind(&o.out_business_no);
        let inserted = self
            .insert_once(
                "uq_out_business_no",
                || format!("outBusinessNo {} was already used", o.out_business_no),
                q,
            )
            .await?;
        if inserted == Inserted::Done {
            self.hold_for(HolderKind::Recharge, &o.order_id);
        }
        Ok(inserted)
    }

    async fn take_sku_stock(&mut self, sku: i64) -> Result<bool> {
        if let Some(hold) = &mut self.stock {
            return hold.reserve(StockKey::Sku { sku }).await;
        }
        let sql = format!(
            "UPDATE {cfg}.raffle_activity_sku SET stock_count_surplus = stock_count_surplus - 1
             WHERE sku = ? AND stock_count_surplus > 0",
            cfg = self.shard.cfg
        );
        Ok(self.exec(sqlx::query(&sql).bind(sku)).await? == 1)
    }

    async fn add_quota(
        &mut self,
        user_id: &str,
        activity_id: i64,
        c: &RaffleActivityCount,
        keys: &CalendarKeys,
    ) -> Result<()> {
        let db = self.shard.db.clone();
        let sql = format!(
            "INSERT INTO {db}.raffle_activity_account (user_id, activity_id, total_count,
                 total_count_surplus, day_count, day_count_surplus, month_count, month_count_surplus)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE
                 total_count = total_count + VALUES(total_count),
                 total_count_surplus = total_count_surplus + VALUES(total_count),
                 day_count = day_count + VALUES(day_count),
                 day_count_surplus = day_count_surplus + VALUES(day_count),
                 month_count = month_count + VALUES(month_count),
                 month_count_surplus = month_count_surplus + VALUES(month_count)"
        );
        self.exec(
            sqlx::query(&sql)
                .bind(user_id)
                .bind(activity_id)
                .bind(c.total_count)
                .bind(c.total_count)
                .bind(c.day_count)
                .bind(c.day_count)
                .bind(c.month_count)
                .bind(c.month_count),
        )
        .await?;
        let sql = format!(
            "UPDATE {db}.raffle_activity_account_day SET day_count = day_count + ?,
                    day_count_surplus = day_count_surplus + ?
             WHERE user_id = ? AND activity_id = ? AND day = ?"
        );
        self.exec(
            sqlx::query(&sql)
                .bind(c.day_count)
                .bind(c.day_count)
                .bind(user_id)
                .bind(activity_id)
                .bind(&keys.day),
        )
        .await?;
        let sql = format!(
            "UPDATE {db}.raffle_activity_account_month SET month_count = month_count + ?,
                    month_count_surplus = month_count_surplus + ?
             WHERE user_id = ? AND activity_id = ? AND month = ?"
        );
        self.exec(
            sqlx::query(&sql)
                .bind(c.month_count)
                .bind(c.month_count)
                .bind(user_id)
                .bind(activity_id)
                .bind(&keys.month),
        )
        .await?;
        Ok(())
    }

    async fn unpaid_order(
        &mut self,
        user_id: &str,
        sku: i64,
        since: DateTime,
    ) -> Result<Option<RaffleActivityOrder>> {
        let sql = format!(
            "SELECT {ACTIVITY_ORDER_COLUMNS} FROM {db}.raffle_activity_order{sfx}
             WHERE user_id = ? AND sku = ? AND state = '{ORDER_WAIT_PAY}' AND order_time >= ?
             ORDER BY id DESC LIMIT 1",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row: Option<ActivityOrderRow> = self
            .optional(
                sqlx::query_as(&sql)
                    .bind(user_id)
                    .bind(sku)
                    .bind(format_datetime(&since)),
            )
            .await?;
        row.map(activity_order).transpose()
    }

    async fn activity_order_by_business_no(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<Option<RaffleActivityOrder>> {
        let sql = format!(
            "SELECT {ACTIVITY_ORDER_COLUMNS} FROM {db}.raffle_activity_order{sfx}
             WHERE user_id = ? AND out_business_no = ?",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row: Option<ActivityOrderRow> = self
            .optional(sqlx::query_as(&sql).bind(user_id).bind(out_business_no))
            .await?;
        row.map(activity_order).transpose()
    }

    async fn complete_activity_order(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE {db}.raffle_activity_order{sfx} SET state = '{ORDER_COMPLETED}', update_time = NOW()
             WHERE user_id = ? AND out_business_no = ? AND state = '{ORDER_WAIT_PAY}'",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        Ok(self
            .exec(sqlx::query(&sql).bind(user_id).bind(out_business_no))
            .await?
            == 1)
    }
}
