//! The unit of work on one user's shard: every `*Tx` port the domain's functions run in
//! (`quota::recharge`, `quota::draw`, `credit::adjust`, `rebate::record`, …).
//!
//! Differences from the embedded store, which runs transactions one after another:
//! here they run side by side, so
//! - the account rows are read `FOR UPDATE`: a user's draws queue on their account
//!   row, and the lazily created month and day rows are seen once committed;
//! - credit is taken with a guarded relative update (`available_amount >= ?`), never a
//!   value computed from an earlier read.

use super::stock::HolderKind;
use super::store::{MysqlTx, duplicate_key, index_dup};
use crate::redis_store::StockKey;
use big_market_domain::activity::quota::{DrawDeduction, QuotaRows};
use big_market_domain::activity::{
    ActivityAccount, DrawTx, PeriodAccount, RaffleActivityCount, RaffleActivityOrder, RechargeTx,
    UserRaffleOrder, random_digits,
};
use big_market_domain::award::{AwardRecordTx, AwardTx, UserAwardRecord};
use big_market_domain::credit::{self, CreditGrantTx, CreditOrder, CreditTx};
use big_market_domain::rebate::{RebateOrder, RebateTx};
use big_market_domain::strategy::StockStore;
use big_market_domain::task::{Task, TaskTx};
use big_market_domain::time::{CalendarKeys, format_datetime};
use big_market_domain::{Error, Result};
use jiff::civil::DateTime;
use rust_decimal::Decimal;
use sqlx::mysql::{MySqlArguments, MySqlRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{FromRow, MySql, MySqlConnection};
use std::collections::HashMap;

/// Reads a `DATE_FORMAT(col, '%Y-%m-%d %H:%i:%s')` value.
pub(super) fn datetime(s: &str) -> Result<DateTime> {
    big_market_domain::time::parse_datetime(s)
        .map_err(|_| Error::internal(format!("{s:?} is not a datetime")))
}

/// Amounts are `decimal(10,2)`: always two places.
fn cents(d: Decimal) -> Decimal {
    credit::to_cents(d)
}

impl MysqlTx {
    /// The order the stock reserved from now on belongs to (Redis stock only).
    fn hold_for(&mut self, kind: HolderKind, order_id: &str) {
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
    async fn insert_period(&mut self, unit: &str, row: &PeriodAccount) -> Result<()> {
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

    /// Runs an insert made by `make` with a fresh random id (`digits` long) until the id
    /// is free: random ids collide rarely but surely at volume. Any other failure, a
    /// duplicate idempotency key included, is returned as is.
    async fn insert_fresh<'a>(
        &mut self,
        id_key: &str,
        id: &mut String,
        digits: usize,
        make: impl Fn(String) -> Query<'a, MySql, MySqlArguments>,
    ) -> Result<(), sqlx::Error> {
        for _ in 0..8 {
            match make(id.clone()).execute(&mut *self.tx).await {
                Ok(_) => return Ok(()),
                Err(e) if duplicate_key(&e).as_deref() == Some(id_key) => {
                    let fresh = random_digits(&mut rand::rng(), digits);
                    *id = fresh;
                }
                Err(e) => return Err(e),
            }
        }
        make(id.clone()).execute(&mut *self.tx).await.map(|_| ())
    }

    /// As [`MysqlTx::insert_fresh`], mapping a duplicate of `business_key` to `0003`
    /// with `message`.
    async fn insert_once<'a>(
        &mut self,
        id: &mut String,
        business_key: &str,
        message: impl FnOnce() -> String,
        make: impl Fn(String) -> Query<'a, MySql, MySqlArguments>,
    ) -> Result<()> {
        match self.insert_fresh("uq_order_id", id, 12, make).await {
            Ok(()) => Ok(()),
            Err(e) if duplicate_key(&e).as_deref() == Some(business_key) => {
                Err(index_dup(message()))
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl StockStore for MysqlTx {
    async fn take_award_stock(&mut self, strategy_id: i64, award_id: i32) -> Result<bool> {
        if let Some(hold) = &mut self.stock {
            let key = StockKey::Award {
                strategy_id,
                award_id,
            };
            return hold.reserve(key).await;
        }
        let sql = format!(
            "UPDATE {cfg}.strategy_award SET award_count_surplus = award_count_surplus - 1
             WHERE strategy_id = ? AND award_id = ? AND award_count_surplus > 0",
            cfg = self.shard.cfg
        );
        Ok(self
            .exec(sqlx::query(&sql).bind(strategy_id).bind(award_id))
            .await?
            == 1)
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
             WHERE user_id = ? AND activity_id = ? AND order_state = 'create'
             ORDER BY id DESC LIMIT 1",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row: Option<RaffleOrderRow> = self
            .optional(sqlx::query_as(&sql).bind(user_id).bind(activity_id))
            .await?;
        row.map(raffle_order).transpose()
    }

    async fn insert_raffle_order(&mut self, o: &mut UserRaffleOrder) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.user_raffle_order{sfx}
                 (user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row = o.clone();
        let time = format_datetime(&row.order_time);
        let r = self
            .insert_fresh("uq_order_id", &mut o.order_id, 12, |id| {
                sqlx::query(&sql)
                    .bind(&row.user_id)
                    .bind(row.activity_id)
                    .bind(&row.activity_name)
                    .bind(row.strategy_id)
                    .bind(id)
                    .bind(&time)
                    .bind(&row.order_state)
            })
            .await;
        self.check(r)?;
        self.hold_for(HolderKind::Raffle, &o.order_id);
        Ok(())
    }

    async fn use_raffle_order(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let sql = format!(
            "UPDATE {db}.user_raffle_order{sfx} SET order_state = 'used'
             WHERE user_id = ? AND order_id = ? AND order_state = 'create'",
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
    async fn insert_activity_order(&mut self, o: &mut RaffleActivityOrder) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.raffle_activity_order{sfx} (user_id, sku, activity_id, activity_name,
                 strategy_id, order_id, order_time, total_count, day_count, month_count, pay_amount,
                 state, out_business_no)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row = o.clone();
        let time = format_datetime(&row.order_time);
        let amount = cents(row.pay_amount);
        self.insert_once(
            &mut o.order_id,
            "uq_out_business_no",
            || format!("outBusinessNo {} was already used", row.out_business_no),
            |id| {
                sqlx::query(&sql)
                    .bind(&row.user_id)
                    .bind(row.sku)
                    .bind(row.activity_id)
                    .bind(&row.activity_name)
                    .bind(row.strategy_id)
                    .bind(id)
                    .bind(&time)
                    .bind(row.total_count)
                    .bind(row.day_count)
                    .bind(row.month_count)
                    .bind(amount)
                    .bind(&row.state)
                    .bind(&row.out_business_no)
            },
        )
        .await?;
        self.hold_for(HolderKind::Recharge, &o.order_id);
        Ok(())
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
             WHERE user_id = ? AND sku = ? AND state = 'wait_pay' AND order_time >= ?
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
            "UPDATE {db}.raffle_activity_order{sfx} SET state = 'completed', update_time = NOW()
             WHERE user_id = ? AND out_business_no = ? AND state = 'wait_pay'",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        Ok(self
            .exec(sqlx::query(&sql).bind(user_id).bind(out_business_no))
            .await?
            == 1)
    }
}

impl AwardTx for MysqlTx {
    async fn award_state(&mut self, user_id: &str, order_id: &str) -> Result<Option<String>> {
        let sql = format!(
            "SELECT award_state FROM {db}.user_award_record{sfx} WHERE user_id = ? AND order_id = ?",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row: Option<(String,)> = self
            .optional(sqlx::query_as(&sql).bind(user_id).bind(order_id))
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn complete_award(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let sql = format!(
            "UPDATE {db}.user_award_record{sfx} SET award_state = 'completed', delivery_note = NULL
             WHERE user_id = ? AND order_id = ? AND award_state = 'create'",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        Ok(self
            .exec(sqlx::query(&sql).bind(user_id).bind(order_id))
            .await?
            == 1)
    }
}

impl AwardRecordTx for MysqlTx {
    async fn insert_award_record(&mut self, r: &UserAwardRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.user_award_record{sfx} (user_id, activity_id, strategy_id, order_id,
                 award_id, award_title, award_time, award_state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let result = sqlx::query(&sql)
            .bind(&r.user_id)
            .bind(r.activity_id)
            .bind(r.strategy_id)
            .bind(&r.order_id)
            .bind(r.award_id)
            .bind(&r.award_title)
            .bind(format_datetime(&r.award_time))
            .bind(&r.award_state)
            .execute(&mut *self.tx)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if duplicate_key(&e).is_some() => Err(index_dup(format!(
                "raffle order {} already has an award",
                r.order_id
            ))),
            Err(e) => Err(self.fail(e)),
        }
    }
}

impl TaskTx for MysqlTx {
    /// The task goes to the user's database (`task` is not split into tables).
    async fn insert_task(&mut self, task: &mut Task) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.task (user_id, topic, message_id, message, state, update_time)
             VALUES (?, ?, ?, ?, ?, NOW(3))",
            db = self.shard.db
        );
        for _ in 0..8 {
            let result = sqlx::query(&sql)
                .bind(&task.user_id)
                .bind(&task.topic)
                .bind(task.message_id())
                .bind(task.message())
                .bind(&task.state)
                .execute(&mut *self.tx)
                .await;
            match result {
                Ok(_) => return Ok(()),
                Err(e) if duplicate_key(&e).as_deref() == Some("uq_message_id") => {
                    let fresh = random_digits(&mut rand::rng(), 11);
                    task.event.id = fresh;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Err(Error::internal("no free task message id after 8 attempts"))
    }
}

impl CreditTx for MysqlTx {
    async fn credit_available(&mut self, user_id: &str) -> Result<Decimal> {
        let sql = format!(
            "SELECT available_amount FROM {db}.user_credit_account WHERE user_id = ?",
            db = self.shard.db
        );
        let row: Option<(Decimal,)> = self.optional(sqlx::query_as(&sql).bind(user_id)).await?;
        Ok(row.map_or(Decimal::ZERO, |r| r.0))
    }

    /// Takes `amount` only when that much is available, in one guarded statement.
    async fn credit_take(&mut self, user_id: &str, amount: Decimal) -> Result<bool> {
        let sql = format!(
            "UPDATE {db}.user_credit_account SET available_amount = available_amount - ?
             WHERE user_id = ? AND available_amount >= ?",
            db = self.shard.db
        );
        let amount = cents(amount);
        Ok(self
            .exec(sqlx::query(&sql).bind(amount).bind(user_id).bind(amount))
            .await?
            == 1)
    }
}

impl CreditGrantTx for MysqlTx {
    async fn credit_add(&mut self, user_id: &str, amount: Decimal) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.user_credit_account (user_id, total_amount, available_amount, account_status)
             VALUES (?, ?, ?, 'open')
             ON DUPLICATE KEY UPDATE total_amount = total_amount + VALUES(total_amount),
                 available_amount = available_amount + VALUES(available_amount)",
            db = self.shard.db
        );
        let amount = cents(amount);
        self.exec(sqlx::query(&sql).bind(user_id).bind(amount).bind(amount))
            .await?;
        Ok(())
    }

    async fn insert_credit_order(&mut self, o: &mut CreditOrder) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.user_credit_order{sfx} (user_id, order_id, trade_name, trade_type,
                 trade_amount, out_business_no)
             VALUES (?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row = o.clone();
        let amount = cents(row.trade_amount);
        self.insert_once(
            &mut o.order_id,
            "uq_out_business_no",
            || format!("credit trade {} was already made", row.out_business_no),
            |id| {
                sqlx::query(&sql)
                    .bind(&row.user_id)
                    .bind(id)
                    .bind(&row.trade_name)
                    .bind(&row.trade_type)
                    .bind(amount)
                    .bind(&row.out_business_no)
            },
        )
        .await
    }
}

impl RebateTx for MysqlTx {
    async fn insert_rebate_order(&mut self, o: &mut RebateOrder) -> Result<()> {
        let sql = format!(
            "INSERT INTO {db}.user_behavior_rebate_order{sfx} (user_id, order_id, behavior_type,
                 rebate_desc, rebate_type, rebate_config, out_business_no, biz_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let row = o.clone();
        self.insert_once(
            &mut o.order_id,
            "uq_biz_id",
            || format!("rebate {} was already recorded", row.biz_id),
            |id| {
                sqlx::query(&sql)
                    .bind(&row.user_id)
                    .bind(id)
                    .bind(&row.behavior_type)
                    .bind(&row.rebate_desc)
                    .bind(&row.rebate_type)
                    .bind(&row.rebate_config)
                    .bind(&row.out_business_no)
                    .bind(&row.biz_id)
            },
        )
        .await
    }
}
