//! Activity repository of the embedded store: the unit of work ([`SqliteTx`]) that the
//! domain's recharge and draw run in, and the activity queries.

use super::error::is_unique_violation;
use super::{SqliteStore, StoreError, datetime, decimal};
use crate::states::{ORDER_COMPLETED, ORDER_WAIT_PAY, RAFFLE_CREATE, RAFFLE_USED};
use async_trait::async_trait;
use big_market_domain::activity::quota::{self, DrawDeduction, DrawOutcome};
use big_market_domain::activity::service::{AccountRows, DrawJob, RechargeJob};
use big_market_domain::activity::{
    ActivityAccount, ActivityConfig, ActivityRepository, DrawTx, PeriodAccount, QuotaRows,
    RaffleActivity, RaffleActivityCount, RaffleActivityOrder, RaffleActivitySku,
    RaffleActivityStage, RechargeTx, UserRaffleOrder,
};
use big_market_domain::id::Inserted;
use big_market_domain::strategy::StockStore;
use big_market_domain::task::Task;
use big_market_domain::time::{CalendarKeys, format_datetime};
use big_market_domain::{Error, ResponseCode, Result};
use jiff::civil::DateTime;
use rusqlite::{Connection, OptionalExtension, params};

/// One unit of work on the embedded store: the writer's connection inside a savepoint.
pub(crate) struct SqliteTx<'c> {
    pub(super) conn: &'c Connection,
}

pub(super) fn internal(e: rusqlite::Error) -> Error {
    super::error::sqlite_error(e)
}

/// Which UNIQUE index a violation hit, from SQLite's message
/// (`UNIQUE constraint failed: table.column`).
pub(super) fn violated_column(e: &rusqlite::Error) -> Option<String> {
    if !is_unique_violation(e) {
        return None;
    }
    let text = e.to_string();
    text.rsplit_once("failed: ").map(|(_, c)| c.to_owned())
}

/// An insert of a row with a random id: a violation of `id_column` reports the id taken
/// (the domain draws another); any other failure is returned as is.
pub(super) fn inserted(
    result: rusqlite::Result<usize>,
    id_column: &str,
) -> rusqlite::Result<Inserted> {
    match result {
        Ok(_) => Ok(Inserted::Done),
        Err(e) if violated_column(&e).as_deref() == Some(id_column) => Ok(Inserted::IdTaken),
        Err(e) => Err(e),
    }
}

/// A failed insert: a violation of the unique business key `column` is `0003` with
/// `message`, anything else a storage fault.
pub(super) fn duplicate_or_internal(
    e: rusqlite::Error,
    column: &str,
    message: impl FnOnce() -> String,
) -> Error {
    if violated_column(&e).as_deref() == Some(column) {
        Error::biz(ResponseCode::IndexDup, message())
    } else {
        internal(e)
    }
}

impl StockStore for SqliteTx<'_> {
    async fn take_award_stock(
        &mut self,
        strategy_id: i64,
        award_id: i32,
        held_back: i64,
    ) -> Result<bool> {
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE strategy_award SET award_count_surplus = award_count_surplus - 1,
                        update_time = CURRENT_TIMESTAMP
                 WHERE strategy_id = ?1 AND award_id = ?2 AND award_count_surplus > MAX(?3, 0)",
            )
            .and_then(|mut s| s.execute(params![strategy_id, award_id, held_back]))
            .map_err(internal)?;
        Ok(changed == 1)
    }
}

fn period_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeriodAccount> {
    Ok(PeriodAccount {
        user_id: r.get(0)?,
        activity_id: r.get(1)?,
        period: r.get(2)?,
        count: r.get(3)?,
        count_surplus: r.get(4)?,
    })
}

pub(super) fn account(
    conn: &Connection,
    user_id: &str,
    activity_id: i64,
) -> rusqlite::Result<Option<ActivityAccount>> {
    conn.prepare_cached(
        "SELECT user_id, activity_id, total_count, total_count_surplus, day_count, day_count_surplus,
                month_count, month_count_surplus
         FROM raffle_activity_account WHERE user_id = ?1 AND activity_id = ?2",
    )?
    .query_row(params![user_id, activity_id], |r| {
        Ok(ActivityAccount {
            user_id: r.get(0)?,
            activity_id: r.get(1)?,
            total_count: r.get(2)?,
            total_count_surplus: r.get(3)?,
            day_count: r.get(4)?,
            day_count_surplus: r.get(5)?,
            month_count: r.get(6)?,
            month_count_surplus: r.get(7)?,
        })
    })
    .optional()
}

pub(super) fn month_account(
    conn: &Connection,
    user_id: &str,
    activity_id: i64,
    month: &str,
) -> rusqlite::Result<Option<PeriodAccount>> {
    conn.prepare_cached(
        "SELECT user_id, activity_id, month, month_count, month_count_surplus
         FROM raffle_activity_account_month WHERE user_id = ?1 AND activity_id = ?2 AND month = ?3",
    )?
    .query_row(params![user_id, activity_id, month], period_row)
    .optional()
}

pub(super) fn day_account(
    conn: &Connection,
    user_id: &str,
    activity_id: i64,
    day: &str,
) -> rusqlite::Result<Option<PeriodAccount>> {
    conn.prepare_cached(
        "SELECT user_id, activity_id, day, day_count, day_count_surplus
         FROM raffle_activity_account_day WHERE user_id = ?1 AND activity_id = ?2 AND day = ?3",
    )?
    .query_row(params![user_id, activity_id, day], period_row)
    .optional()
}

fn activity_order_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<[String; 4]> {
    Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
}

impl DrawTx for SqliteTx<'_> {
    async fn quota_rows(
        &mut self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<QuotaRows> {
        // The writer thread is the only writer: rows read here cannot change before the
        // transaction ends.
        Ok(QuotaRows {
            account: account(self.conn, user_id, activity_id).map_err(internal)?,
            month: month_account(self.conn, user_id, activity_id, &keys.month).map_err(internal)?,
            day: day_account(self.conn, user_id, activity_id, &keys.day).map_err(internal)?,
        })
    }

    async fn deduct_draw(&mut self, d: DrawDeduction<'_>) -> Result<bool> {
        let conn = self.conn;
        (|| -> rusqlite::Result<bool> {
            let total = conn
                .prepare_cached(
                    "UPDATE raffle_activity_account SET total_count_surplus = total_count_surplus - 1,
                            month_count_surplus = ?3, day_count_surplus = ?4,
                            update_time = CURRENT_TIMESTAMP
                     WHERE user_id = ?1 AND activity_id = ?2 AND total_count_surplus > 0",
                )?
                .execute(params![d.user_id, d.activity_id, d.month_left, d.day_left])?;
            if total != 1 {
                return Ok(false);
            }
            if let Some(month) = d.month {
                let n = conn
                    .prepare_cached(
                        "UPDATE raffle_activity_account_month SET month_count_surplus = month_count_surplus - 1,
                                update_time = CURRENT_TIMESTAMP
                         WHERE user_id = ?1 AND activity_id = ?2 AND month = ?3 AND month_count_surplus > 0",
                    )?
                    .execute(params![d.user_id, d.activity_id, month])?;
                if n != 1 {
                    return Ok(false);
                }
            }
            if let Some(day) = d.day {
                let n = conn
                    .prepare_cached(
                        "UPDATE raffle_activity_account_day SET day_count_surplus = day_count_surplus - 1,
                                update_time = CURRENT_TIMESTAMP
                         WHERE user_id = ?1 AND activity_id = ?2 AND day = ?3 AND day_count_surplus > 0",
                    )?
                    .execute(params![d.user_id, d.activity_id, day])?;
                if n != 1 {
                    return Ok(false);
                }
            }
            Ok(true)
        })()
        .map_err(internal)
    }

    async fn insert_month(&mut self, row: &PeriodAccount) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO raffle_activity_account_month (user_id, activity_id, month, month_count, month_count_surplus)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![row.user_id, row.activity_id, row.period, row.count, row.count_surplus])
            })
            .map_err(internal)?;
        Ok(())
    }

    async fn insert_day(&mut self, row: &PeriodAccount) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO raffle_activity_account_day (user_id, activity_id, day, day_count, day_count_surplus)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![row.user_id, row.activity_id, row.period, row.count, row.count_surplus])
            })
            .map_err(internal)?;
        Ok(())
    }

    async fn unused_raffle_order(
        &mut self,
        user_id: &str,
        activity_id: i64,
    ) -> Result<Option<UserRaffleOrder>> {
        let row = self
            .conn
            .prepare_cached(
                &format!("SELECT user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state
                 FROM user_raffle_order
                 WHERE user_id = ?1 AND activity_id = ?2 AND order_state = '{RAFFLE_CREATE}'
                 ORDER BY id DESC LIMIT 1"),
            )
            .and_then(|mut s| {
                s.query_row(params![user_id, activity_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                })
                .optional()
            })
            .map_err(internal)?;
        row.map(
            |(user_id, activity_id, activity_name, strategy_id, order_id, time, order_state)| {
                Ok::<_, StoreError>(UserRaffleOrder {
                    user_id,
                    activity_id,
                    activity_name,
                    strategy_id,
                    order_id,
                    order_time: datetime(&time)?,
                    order_state,
                })
            },
        )
        .transpose()
        .map_err(Error::from)
    }

    async fn insert_raffle_order(&mut self, o: &UserRaffleOrder) -> Result<Inserted> {
        let time = format_datetime(&o.order_time);
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO user_raffle_order (user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    o.user_id,
                    o.activity_id,
                    o.activity_name,
                    o.strategy_id,
                    o.order_id,
                    time,
                    o.order_state
                ])
            });
        inserted(result, "user_raffle_order.order_id").map_err(internal)
    }

    async fn use_raffle_order(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                &format!("UPDATE user_raffle_order SET order_state = '{RAFFLE_USED}', update_time = CURRENT_TIMESTAMP
                 WHERE user_id = ?1 AND order_id = ?2 AND order_state = '{RAFFLE_CREATE}'"),
            )
            .and_then(|mut s| s.execute(params![user_id, order_id]))
            .map_err(internal)?;
        Ok(n == 1)
    }
}

impl RechargeTx for SqliteTx<'_> {
    async fn insert_activity_order(&mut self, o: &RaffleActivityOrder) -> Result<Inserted> {
        let time = format_datetime(&o.order_time);
        let result = self
            .conn
            .prepare_cached(
                "INSERT INTO raffle_activity_order (user_id, sku, activity_id, activity_name, strategy_id, order_id,
                     order_time, total_count, day_count, month_count, pay_amount, state, out_business_no)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    o.user_id,
                    o.sku,
                    o.activity_id,
                    o.activity_name,
                    o.strategy_id,
                    o.order_id,
                    time,
                    o.total_count,
                    o.day_count,
                    o.month_count,
                    o.pay_amount.to_string(),
                    o.state,
                    o.out_business_no
                ])
            });
        inserted(result, "raffle_activity_order.order_id").map_err(|e| {
            duplicate_or_internal(e, "raffle_activity_order.out_business_no", || {
                format!("outBusinessNo {} was already used", o.out_business_no)
            })
        })
    }

    async fn take_sku_stock(&mut self, sku: i64) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE raffle_activity_sku SET stock_count_surplus = stock_count_surplus - 1,
                        update_time = CURRENT_TIMESTAMP
                 WHERE sku = ?1 AND stock_count_surplus > 0",
            )
            .and_then(|mut s| s.execute([sku]))
            .map_err(internal)?;
        Ok(n == 1)
    }

    async fn add_quota(
        &mut self,
        user_id: &str,
        activity_id: i64,
        c: &RaffleActivityCount,
        keys: &CalendarKeys,
    ) -> Result<()> {
        let conn = self.conn;
        (|| -> rusqlite::Result<()> {
            conn.prepare_cached(
                "INSERT INTO raffle_activity_account (user_id, activity_id, total_count, total_count_surplus,
                     day_count, day_count_surplus, month_count, month_count_surplus)
                 VALUES (?1, ?2, ?3, ?3, ?4, ?4, ?5, ?5)
                 ON CONFLICT (user_id, activity_id) DO UPDATE SET
                     total_count = total_count + excluded.total_count,
                     total_count_surplus = total_count_surplus + excluded.total_count,
                     day_count = day_count + excluded.day_count,
                     day_count_surplus = day_count_surplus + excluded.day_count,
                     month_count = month_count + excluded.month_count,
                     month_count_surplus = month_count_surplus + excluded.month_count,
                     update_time = CURRENT_TIMESTAMP",
            )?
            .execute(params![user_id, activity_id, c.total_count, c.day_count, c.month_count])?;
            conn.prepare_cached(
                "UPDATE raffle_activity_account_day SET day_count = day_count + ?4,
                        day_count_surplus = day_count_surplus + ?4, update_time = CURRENT_TIMESTAMP
                 WHERE user_id = ?1 AND activity_id = ?2 AND day = ?3",
            )?
            .execute(params![user_id, activity_id, keys.day, c.day_count])?;
            conn.prepare_cached(
                "UPDATE raffle_activity_account_month SET month_count = month_count + ?4,
                        month_count_surplus = month_count_surplus + ?4, update_time = CURRENT_TIMESTAMP
                 WHERE user_id = ?1 AND activity_id = ?2 AND month = ?3",
            )?
            .execute(params![user_id, activity_id, keys.month, c.month_count])?;
            Ok(())
        })()
        .map_err(internal)
    }

    async fn unpaid_order(
        &mut self,
        user_id: &str,
        sku: i64,
        since: DateTime,
    ) -> Result<Option<RaffleActivityOrder>> {
        let row = self
            .conn
            .prepare_cached(&format!(
                "SELECT order_id FROM raffle_activity_order
                 WHERE user_id = ?1 AND sku = ?2 AND state = '{ORDER_WAIT_PAY}' AND order_time >= ?3
                 ORDER BY id DESC LIMIT 1"
            ))
            .and_then(|mut s| {
                s.query_row(params![user_id, sku, format_datetime(&since)], |r| {
                    r.get::<_, String>(0)
                })
                .optional()
            })
            .map_err(internal)?;
        match row {
            Some(order_id) => Ok(activity_order(self.conn, &order_id)?),
            None => Ok(None),
        }
    }

    async fn activity_order_by_business_no(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<Option<RaffleActivityOrder>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT order_id FROM raffle_activity_order WHERE user_id = ?1 AND out_business_no = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![user_id, out_business_no], |r| r.get::<_, String>(0))
                    .optional()
            })
            .map_err(internal)?;
        match row {
            Some(order_id) => Ok(activity_order(self.conn, &order_id)?),
            None => Ok(None),
        }
    }

    async fn complete_activity_order(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                &format!("UPDATE raffle_activity_order SET state = '{ORDER_COMPLETED}', update_time = CURRENT_TIMESTAMP
                 WHERE user_id = ?1 AND out_business_no = ?2 AND state = '{ORDER_WAIT_PAY}'"),
            )
            .and_then(|mut s| s.execute(params![user_id, out_business_no]))
            .map_err(internal)?;
        Ok(n == 1)
    }
}

/// One recharge order by id.
pub(super) fn activity_order(
    conn: &Connection,
    order_id: &str,
) -> Result<Option<RaffleActivityOrder>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT user_id, activity_name, order_time, pay_amount, sku, activity_id, strategy_id,
                    total_count, day_count, month_count, state, out_business_no, order_id
             FROM raffle_activity_order WHERE order_id = ?1",
        )?
        .query_row([order_id], |r| {
            let texts = activity_order_row(r)?;
            Ok((
                texts,
                (
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                ),
                (
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, i64>(9)?,
                ),
                (
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, String>(12)?,
                ),
            ))
        })
        .optional()?;
    let Some((
        [user_id, activity_name, time, amount],
        (sku, activity_id, strategy_id),
        (t, d, m),
        (state, obn, oid),
    )) = row
    else {
        return Ok(None);
    };
    Ok(Some(RaffleActivityOrder {
        user_id,
        sku,
        activity_id,
        activity_name,
        strategy_id,
        order_id: oid,
        order_time: datetime(&time)?,
        total_count: t,
        day_count: d,
        month_count: m,
        pay_amount: decimal(&amount)?,
        state,
        out_business_no: obn,
    }))
}

fn activity_row(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, String, String, i64, String)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn sku_rows(
    conn: &Connection,
    activity_id: i64,
) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.sku, s.activity_id, s.activity_count_id, s.stock_count, s.stock_count_surplus, s.product_amount,
                c.total_count, c.day_count, c.month_count
         FROM raffle_activity_sku s JOIN raffle_activity_count c ON c.activity_count_id = s.activity_count_id
         WHERE s.activity_id = ?1 ORDER BY s.sku",
    )?;
    let mut rows = stmt.query([activity_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let amount: String = r.get(5)?;
        let count_id: i64 = r.get(2)?;
        out.push((
            RaffleActivitySku {
                sku: r.get(0)?,
                activity_id: r.get(1)?,
                activity_count_id: count_id,
                stock_count: r.get(3)?,
                stock_count_surplus: r.get(4)?,
                product_amount: decimal(&amount)?,
            },
            RaffleActivityCount {
                activity_count_id: count_id,
                total_count: r.get(6)?,
                day_count: r.get(7)?,
                month_count: r.get(8)?,
            },
        ));
    }
    Ok(out)
}

fn load_activity(
    conn: &Connection,
    activity_id: i64,
) -> Result<Option<ActivityConfig>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state
             FROM raffle_activity WHERE activity_id = ?1",
        )?
        .query_row([activity_id], activity_row)
        .optional()?;
    let Some((activity_id, activity_name, activity_desc, begin, end, strategy_id, state)) = row
    else {
        return Ok(None);
    };
    Ok(Some(ActivityConfig {
        activity: RaffleActivity {
            activity_id,
            activity_name,
            activity_desc,
            begin_date_time: datetime(&begin)?,
            end_date_time: datetime(&end)?,
            strategy_id,
            state,
        },
        skus: sku_rows(conn, activity_id)?,
    }))
}

/// A `raffle_activity_stage` row, selected as `id, channel, source, activity_id, state`.
pub(super) fn stage_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RaffleActivityStage> {
    Ok(RaffleActivityStage {
        id: r.get(0)?,
        channel: r.get(1)?,
        source: r.get(2)?,
        activity_id: r.get(3)?,
        state: r.get(4)?,
    })
}

#[async_trait]
impl ActivityRepository for SqliteStore {
    async fn activity_ids(&self) -> Result<Vec<i64>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare("SELECT activity_id FROM raffle_activity ORDER BY activity_id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()?)
            })
            .await?)
    }

    async fn activity_config(&self, activity_id: i64) -> Result<Option<ActivityConfig>> {
        Ok(self
            .read(move |conn| load_activity(conn, activity_id))
            .await?)
    }

    async fn activity_of_sku(&self, sku: i64) -> Result<Option<i64>> {
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT activity_id FROM raffle_activity_sku WHERE sku = ?1")?
                    .query_row([sku], |r| r.get(0))
                    .optional()?)
            })
            .await?)
    }

    async fn recharge(&self, job: RechargeJob) -> Result<RaffleActivityOrder> {
        Ok(self
            .write(move |conn| {
                let input = job.input()?;
                let mut tx = SqliteTx { conn };
                Ok(pollster::block_on(quota::recharge(
                    &mut tx,
                    input,
                    &mut rand::rng(),
                ))?)
            })
            .await?)
    }

    async fn exchange(
        &self,
        job: RechargeJob,
        timestamp_ms: i64,
    ) -> Result<(RaffleActivityOrder, Task)> {
        Ok(self
            .write(move |conn| {
                let input = job.input()?;
                let mut tx = SqliteTx { conn };
                Ok(pollster::block_on(quota::exchange(
                    &mut tx,
                    input,
                    timestamp_ms,
                    &mut rand::rng(),
                ))?)
            })
            .await?)
    }

    async fn deliver_paid_order(
        &self,
        user_id: &str,
        out_business_no: &str,
        keys: &CalendarKeys,
    ) -> Result<bool> {
        let (user_id, obn, keys) = (user_id.to_owned(), out_business_no.to_owned(), keys.clone());
        Ok(self
            .write(move |conn| {
                let mut tx = SqliteTx { conn };
                Ok(pollster::block_on(quota::deliver_paid_order(
                    &mut tx, &user_id, &obn, &keys,
                ))?)
            })
            .await?)
    }

    async fn draw(&self, job: DrawJob) -> Result<DrawOutcome> {
        let credit_in_draw = self.inner.credit_in_draw;
        Ok(self
            .write_by(job.deadline, move |conn| {
                // The caller may have answered `0006` while the job waited in the queue.
                if !job.gate.start() {
                    return Err(StoreError::Expired);
                }
                let mut tx = SqliteTx { conn };
                let (input, rng) = (job.input(), &mut rand::rng());
                Ok(pollster::block_on(async {
                    if credit_in_draw {
                        quota::draw_and_credit(&mut tx, input, rng).await
                    } else {
                        quota::draw(&mut tx, input, rng).await
                    }
                })?)
            })
            .await?)
    }

    async fn account_rows(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<AccountRows> {
        let (user_id, keys) = (user_id.to_owned(), keys.clone());
        Ok(self
            .read(move |conn| {
                Ok(AccountRows {
                    account: account(conn, &user_id, activity_id)?,
                    month: month_account(conn, &user_id, activity_id, &keys.month)?,
                    day: day_account(conn, &user_id, activity_id, &keys.day)?,
                })
            })
            .await?)
    }

    async fn sku_products(
        &self,
        activity_id: i64,
    ) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>> {
        Ok(self.read(move |conn| sku_rows(conn, activity_id)).await?)
    }

    async fn has_order(&self, user_id: &str, sku: i64, out_business_no: &str) -> Result<bool> {
        let (user_id, obn) = (user_id.to_owned(), out_business_no.to_owned());
        Ok(self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT 1 FROM raffle_activity_order
                         WHERE user_id = ?1 AND sku = ?2 AND out_business_no = ?3",
                    )?
                    .query_row(params![user_id, sku, obn], |_| Ok(()))
                    .optional()?
                    .is_some())
            })
            .await?)
    }

    async fn stages(&self) -> Result<Vec<RaffleActivityStage>> {
        Ok(self
            .read(|conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT id, channel, source, activity_id, state FROM raffle_activity_stage ORDER BY id",
                    )?
                    .query_map([], stage_row)?
                    .collect::<Result<Vec<_>, _>>()?)
            })
            .await?)
    }
}
