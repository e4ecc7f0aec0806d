//! Draws in groups (see the parent module): the quota rows of every user in one locked
//! read, the quota of every user in one `UPDATE`, each table's new rows in one `INSERT`.
//! Award stock is reserved in Redis by each draw as usual, confirmed after the group's
//! commit and returned when the group or the draw fails.

use super::{GroupError, Grouped, commit_unknown, expect_rows, push_case, push_list};
use crate::mysql::activity::{Lock, RAFFLE_ORDER_COLUMNS, raffle_order, read_quota_rows};
use crate::mysql::stock::{HolderKind, StockHold, check_all_held, settle};
use crate::mysql::store::{ER_LOCK_DEADLOCK, MysqlStore, Shard, check_deadline, error_number, sql};
use crate::redis_store::StockKey;
use crate::states::{RAFFLE_CREATE, RAFFLE_USED};
use big_market_domain::activity::quota::{self, DrawDeduction, DrawOutcome, QuotaRows};
use big_market_domain::activity::service::DrawJob;
use big_market_domain::activity::{DrawTx, PeriodAccount, UserRaffleOrder};
use big_market_domain::award::{AwardRecordTx, UserAwardRecord};
use big_market_domain::id::Inserted;
use big_market_domain::strategy::StockStore;
use big_market_domain::task::{Task, TaskTx};
use big_market_domain::time::{CalendarKeys, format_datetime};
use big_market_domain::{Error, Result};
use sqlx::{Connection, MySql, MySqlConnection, QueryBuilder};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

impl Grouped for DrawJob {
    type Output = DrawOutcome;

    fn user_id(&self) -> &str {
        &self.user_id
    }

    fn start(&self) -> Result<()> {
        check_deadline(self.deadline, &self.gate)
    }

    async fn alone(store: &MysqlStore, job: &Self) -> Result<DrawOutcome> {
        store.draw_now(job).await
    }

    async fn together(
        store: &MysqlStore,
        conn: &mut MySqlConnection,
        jobs: &[&Self],
    ) -> Result<Vec<Option<Result<DrawOutcome>>>> {
        store.draw_group(conn, jobs).await
    }
}

impl MysqlStore {
    /// One transaction for `jobs` (distinct users of one database). `Err`: nothing was
    /// written and every reservation was returned, so each draw may run again alone.
    /// A user without an account row spelled as in the request is left alone (`None`):
    /// no account at all, or one the database matches under another spelling (user ids
    /// compare case-insensitively), which only the single path reads as it does.
    async fn draw_group(
        &self,
        conn: &mut MySqlConnection,
        jobs: &[&DrawJob],
    ) -> Result<Vec<Option<Result<DrawOutcome>>>> {
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        let shard = self.shard(&first.user_id);
        let db = shard.db.clone();
        let mut tx = conn.begin().await.map_err(sql)?;
        let read = read_group(&mut tx, &db, jobs, |u| self.shard(u)).await;
        let (mut rows, mut unused) = match read {
            Ok(r) => r,
            Err(e) => return Err(self.give_up(tx, e).await),
        };
        // A row the group read under a spelling no job used belongs to a job spelled
        // otherwise: the group cannot tell whose it is.
        let spelled: HashSet<&str> = jobs.iter().map(|j| j.user_id.as_str()).collect();
        if let Some(other) = rows
            .keys()
            .chain(unused.keys())
            .find(|u| !spelled.contains(u.as_str()))
        {
            let e = Error::internal(format!("user {other} was requested under another spelling"));
            return Err(self.give_up(tx, e.into()).await);
        }
        let mut members = Vec::with_capacity(jobs.len());
        let mut draws: Vec<GroupedDraw> = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            let Some(quota) = rows.remove(&job.user_id) else {
                continue;
            };
            members.push((i, *job));
            draws.push(GroupedDraw {
                user_id: job.user_id.clone(),
                activity_id: job.config.activity.activity_id,
                keys: job.keys.clone(),
                rows: quota,
                unused: unused.remove(&job.user_id),
                hold: self.hold(&job.user_id),
                writes: Writes::default(),
                unsupported: None,
            });
        }
        let outcomes = futures_util::future::join_all(draws.iter_mut().zip(&members).map(
            |(draw, &(_, job))| async move {
                let mut rng = crate::mysql::store::rng();
                quota::draw(draw, job.input(), &mut rng).await
            },
        ))
        .await;
        // A draw that needed what a group cannot answer runs alone, with the others.
        if let Some(what) = draws.iter().find_map(|d| d.unsupported) {
            let e = Error::internal(format!("{what} is not part of a grouped draw"));
            settle_all(&mut draws, false).await;
            let _ = tx.rollback().await;
            return Err(e);
        }
        let mut results: Vec<Option<Result<DrawOutcome>>> = jobs.iter().map(|_| None).collect();
        let mut kept = Vec::new();
        for ((draw, outcome), &(i, _)) in draws.iter_mut().zip(outcomes).zip(&members) {
            let answer = match outcome {
                Ok(o) => {
                    kept.push(&*draw);
                    Ok(o)
                }
                Err(e) => {
                    // Refused by the domain: its writes are dropped, its units go back.
                    settle(draw.hold.take(), false).await;
                    Err(e)
                }
            };
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(answer);
            }
        }
        if let Err(e) = write_group(&mut tx, &shard, &kept, |u| self.shard(u)).await {
            settle_all(&mut draws, false).await;
            return Err(self.give_up(tx, e).await);
        }
        // Redis must still record every reservation at the commit (see
        // `StockHold::check_held`); otherwise the group gives up and its draws run alone.
        let holds: Vec<&StockHold> = kept.iter().filter_map(|d| d.hold.as_ref()).collect();
        if let Err(e) = check_all_held(&holds).await {
            settle_all(&mut draws, false).await;
            return Err(self.give_up(tx, e.into()).await);
        }
        match tx.commit().await {
            Ok(()) => {
                settle_all(&mut draws, true).await;
                Ok(results)
            }
            Err(e) if error_number(&e) == Some(ER_LOCK_DEADLOCK) => {
                self.note_deadlock();
                settle_all(&mut draws, false).await;
                Err(sql(e))
            }
            Err(e) => {
                // The outcome is unknown: no draw may run again (it may have committed),
                // and the reservations stay for the sweeper, which asks SQL.
                tracing::warn!(error = %e, draws = kept.len(), "group commit failed; the stock sweeper settles its reservations");
                let failed = results
                    .into_iter()
                    .map(|r| r.map(|r| r.and_then(|_| Err(commit_unknown(&e)))))
                    .collect();
                Ok(failed)
            }
        }
    }
}

/// Settles every draw's reservations, all in flight at once (one round trip's wait for
/// the group, not one per draw).
async fn settle_all(draws: &mut [GroupedDraw], committed: bool) {
    let holds = draws.iter_mut().map(|d| settle(d.hold.take(), committed));
    futures_util::future::join_all(holds).await;
}

type GroupRows = (HashMap<String, QuotaRows>, HashMap<String, UserRaffleOrder>);

/// The quota rows of every user (locked), then each user's newest unused raffle order.
async fn read_group(
    tx: &mut MySqlConnection,
    db: &str,
    jobs: &[&DrawJob],
    shard_of: impl Fn(&str) -> Arc<Shard>,
) -> Result<GroupRows, GroupError> {
    let mut by_period: BTreeMap<(i64, &str, &str), (&CalendarKeys, Vec<&str>)> = BTreeMap::new();
    let mut by_table: BTreeMap<(String, i64), Vec<&str>> = BTreeMap::new();
    for job in jobs {
        let aid = job.config.activity.activity_id;
        by_period
            .entry((aid, &job.keys.month, &job.keys.day))
            .or_insert_with(|| (&job.keys, Vec::new()))
            .1
            .push(&job.user_id);
        by_table
            .entry((shard_of(&job.user_id).sfx.clone(), aid))
            .or_default()
            .push(&job.user_id);
    }
    let mut rows = HashMap::new();
    for ((aid, _, _), (keys, users)) in by_period {
        rows.extend(read_quota_rows(&mut *tx, db, aid, keys, &users, Lock::ForUpdate).await?);
    }
    // The newest `create` order of each user, every table in one statement (a user's
    // orders are all in one table, so ordering by id across tables is newest first).
    let mut unused = HashMap::new();
    let mut q = QueryBuilder::<MySql>::new("");
    for (i, ((sfx, aid), users)) in by_table.into_iter().enumerate() {
        if i > 0 {
            q.push(" UNION ALL ");
        }
        q.push(format!(
            "(SELECT CAST(id AS SIGNED), {RAFFLE_ORDER_COLUMNS} FROM {db}.user_raffle_order{sfx}
              WHERE order_state = '{RAFFLE_CREATE}' AND activity_id = "
        ));
        q.push_bind(aid).push(" AND user_id IN (");
        push_list(&mut q, &users);
        q.push("))");
    }
    q.push(" ORDER BY 1 DESC");
    type Row = (i64, String, i64, String, i64, String, String, String);
    let found: Vec<Row> = q.build_query_as().fetch_all(&mut *tx).await?;
    for r in found {
        let order = raffle_order((r.1, r.2, r.3, r.4, r.5, r.6, r.7))?;
        unused.entry(order.user_id.clone()).or_insert(order);
    }
    Ok((rows, unused))
}

/// Writes what the group's successful draws collected, checking every count.
async fn write_group(
    tx: &mut MySqlConnection,
    shard: &Shard,
    draws: &[&GroupedDraw],
    shard_of: impl Fn(&str) -> Arc<Shard>,
) -> Result<(), GroupError> {
    let db = &shard.db;
    // The quota: one `UPDATE` per shape (which period rows existed before the draw).
    // (activity, month row taken from, day row taken from): one statement shape each.
    type Shape<'a> = (i64, Option<&'a str>, Option<&'a str>);
    let mut shapes: BTreeMap<Shape, Vec<&Deduction>> = BTreeMap::new();
    for d in draws {
        if let Some(x) = &d.writes.deduction {
            shapes
                .entry((x.activity_id, x.month.as_deref(), x.day.as_deref()))
                .or_default()
                .push(x);
        }
    }
    for ((aid, month, day), users) in shapes {
        let mut q = QueryBuilder::<MySql>::new(format!("UPDATE {db}.raffle_activity_account a"));
        if let Some(month) = month {
            q.push(format!(
                " JOIN {db}.raffle_activity_account_month m
                   ON m.user_id = a.user_id AND m.activity_id = a.activity_id AND m.month = "
            ))
            .push_bind(month.to_owned());
        }
        if let Some(day) = day {
            q.push(format!(
                " JOIN {db}.raffle_activity_account_day dd
                   ON dd.user_id = a.user_id AND dd.activity_id = a.activity_id AND dd.day = "
            ))
            .push_bind(day.to_owned());
        }
        q.push(" SET a.total_count_surplus = a.total_count_surplus - 1");
        q.push(", a.month_count_surplus = ");
        push_case(
            &mut q,
            "a.user_id",
            users.iter().map(|x| (x.user_id.clone(), x.month_left)),
        );
        q.push(", a.day_count_surplus = ");
        push_case(
            &mut q,
            "a.user_id",
            users.iter().map(|x| (x.user_id.clone(), x.day_left)),
        );
        if month.is_some() {
            q.push(", m.month_count_surplus = m.month_count_surplus - 1");
        }
        if day.is_some() {
            q.push(", dd.day_count_surplus = dd.day_count_surplus - 1");
        }
        q.push(" WHERE a.activity_id = ").push_bind(aid);
        q.push(" AND a.total_count_surplus > 0");
        if month.is_some() {
            q.push(" AND m.month_count_surplus > 0");
        }
        if day.is_some() {
            q.push(" AND dd.day_count_surplus > 0");
        }
        q.push(" AND a.user_id IN (");
        let ids: Vec<&str> = users.iter().map(|x| x.user_id.as_str()).collect();
        push_list(&mut q, &ids);
        q.push(")");
        let per_user = 1 + usize::from(month.is_some()) + usize::from(day.is_some());
        let changed = q.build().execute(&mut *tx).await?.rows_affected();
        expect_rows("quota update", per_user * users.len(), changed)?;
    }
    // Period rows created by a draw: inserted after the update, which must not count
    // them again (they hold the draw already).
    for unit in ["month", "day"] {
        let new: Vec<&PeriodAccount> = draws
            .iter()
            .filter_map(|d| match unit {
                "month" => d.writes.month.as_ref(),
                _ => d.writes.day.as_ref(),
            })
            .collect();
        if new.is_empty() {
            continue;
        }
        let mut q = QueryBuilder::<MySql>::new(format!(
            "INSERT INTO {db}.raffle_activity_account_{unit}
                 (user_id, activity_id, {unit}, {unit}_count, {unit}_count_surplus) "
        ));
        q.push_values(new, |mut b, r| {
            b.push_bind(r.user_id.clone())
                .push_bind(r.activity_id)
                .push_bind(r.period.clone())
                .push_bind(r.count)
                .push_bind(r.count_surplus);
        });
        q.build().execute(&mut *tx).await?;
    }
    // Raffle orders, award records: one statement per table.
    let mut orders: BTreeMap<String, Vec<&UserRaffleOrder>> = BTreeMap::new();
    let mut used: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let mut awards: BTreeMap<String, Vec<(&UserAwardRecord, i64)>> = BTreeMap::new();
    for d in draws {
        let sfx = shard_of(&d.user_id).sfx.clone();
        if let Some(o) = &d.writes.order {
            orders.entry(sfx.clone()).or_default().push(o);
        }
        if let Some(id) = &d.writes.used_order {
            used.entry(sfx.clone()).or_default().push(id);
        }
        if let Some(r) = &d.writes.award {
            let key = StockKey::Award {
                strategy_id: r.strategy_id,
                award_id: r.award_id,
            };
            let units = d.hold.as_ref().map_or(0, |h| h.units_of(key));
            awards.entry(sfx).or_default().push((r, units));
        }
    }
    for (sfx, rows) in orders {
        let mut q = QueryBuilder::<MySql>::new(format!(
            "INSERT INTO {db}.user_raffle_order{sfx}
                 (user_id, activity_id, activity_name, strategy_id, order_id, order_time, order_state) "
        ));
        q.push_values(rows, |mut b, o| {
            b.push_bind(o.user_id.clone())
                .push_bind(o.activity_id)
                .push_bind(o.activity_name.clone())
                .push_bind(o.strategy_id)
                .push_bind(o.order_id.clone())
                .push_bind(format_datetime(&o.order_time))
                .push_bind(o.order_state.clone());
        });
        q.build().execute(&mut *tx).await?;
    }
    for (sfx, ids) in used {
        let mut q = QueryBuilder::<MySql>::new(format!(
            "UPDATE {db}.user_raffle_order{sfx} SET order_state = '{RAFFLE_USED}'
             WHERE order_state = '{RAFFLE_CREATE}' AND order_id IN ("
        ));
        push_list(&mut q, &ids);
        q.push(")");
        let changed = q.build().execute(&mut *tx).await?.rows_affected();
        expect_rows("raffle orders used", ids.len(), changed)?;
    }
    for (sfx, rows) in awards {
        let mut q = QueryBuilder::<MySql>::new(format!(
            "INSERT INTO {db}.user_award_record{sfx} (user_id, activity_id, strategy_id, order_id,
                 award_id, award_title, award_time, award_state, fair_proof, stock_units) "
        ));
        q.push_values(rows, |mut b, (r, units)| {
            b.push_bind(r.user_id.clone())
                .push_bind(r.activity_id)
                .push_bind(r.strategy_id)
                .push_bind(r.order_id.clone())
                .push_bind(r.award_id)
                .push_bind(r.award_title.clone())
                .push_bind(format_datetime(&r.award_time))
                .push_bind(r.award_state.clone())
                .push_bind(r.fair_proof.clone())
                .push_bind(units);
        });
        q.build().execute(&mut *tx).await?;
    }
    let tasks: Vec<&Task> = draws
        .iter()
        .filter_map(|d| d.writes.task.as_ref())
        .collect();
    if !tasks.is_empty() {
        let mut q = QueryBuilder::<MySql>::new(format!(
            "INSERT INTO {db}.task (user_id, topic, message_id, message, state, update_time) "
        ));
        q.push_values(tasks, |mut b, t| {
            b.push_bind(t.user_id.clone())
                .push_bind(t.topic.clone())
                .push_bind(t.message_id().to_owned())
                .push_bind(t.message())
                .push_bind(t.state.clone())
                .push("NOW(3)");
        });
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
}

/// What a draw of a group writes, collected while the domain's function runs.
#[derive(Default)]
struct Writes {
    deduction: Option<Deduction>,
    month: Option<PeriodAccount>,
    day: Option<PeriodAccount>,
    order: Option<UserRaffleOrder>,
    used_order: Option<String>,
    award: Option<UserAwardRecord>,
    task: Option<Task>,
}

/// [`DrawDeduction`], owned.
struct Deduction {
    user_id: String,
    activity_id: i64,
    month: Option<String>,
    day: Option<String>,
    month_left: i64,
    day_left: i64,
}

/// One user's draw inside a group: the unit of work `quota::draw` runs in. Reads come
/// from the rows the group locked; writes are collected for the group's statements.
struct GroupedDraw {
    user_id: String,
    activity_id: i64,
    keys: CalendarKeys,
    rows: QuotaRows,
    unused: Option<UserRaffleOrder>,
    hold: Option<StockHold>,
    writes: Writes,
    /// Set when the draw asked for something a group does not answer: the group is then
    /// rolled back and its draws run alone.
    unsupported: Option<&'static str>,
}

impl GroupedDraw {
    /// Whether a read names this draw's own rows (the only ones the group holds).
    fn own(&self, user_id: &str, activity_id: i64) -> bool {
        user_id == self.user_id && activity_id == self.activity_id
    }

    fn refuse<T>(&mut self, what: &'static str) -> Result<T> {
        self.unsupported = Some(what);
        Err(Error::internal(format!(
            "{what} is not part of a grouped draw"
        )))
    }

    fn hold_for(&mut self, order_id: &str) {
        if let Some(hold) = &mut self.hold {
            hold.hold_for(HolderKind::Raffle, order_id);
        }
    }
}

impl StockStore for GroupedDraw {
    async fn take_award_stock(
        &mut self,
        strategy_id: i64,
        award_id: i32,
        held_back: i64,
    ) -> Result<bool> {
        match &mut self.hold {
            Some(hold) => {
                hold.reserve_above(
                    StockKey::Award {
                        strategy_id,
                        award_id,
                    },
                    held_back,
                )
                .await
            }
            None => self.refuse("award stock without Redis"),
        }
    }
}

impl DrawTx for GroupedDraw {
    async fn quota_rows(
        &mut self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<QuotaRows> {
        if !self.own(user_id, activity_id) || *keys != self.keys {
            return self.refuse("another user's quota");
        }
        Ok(self.rows.clone())
    }

    /// Checked against the locked rows now; the group's `UPDATE` checks it again.
    async fn deduct_draw(&mut self, d: DrawDeduction<'_>) -> Result<bool> {
        if !self.own(d.user_id, d.activity_id) || self.writes.deduction.is_some() {
            return self.refuse("a second quota deduction");
        }
        let left = d.fits(&self.rows);
        if left {
            self.writes.deduction = Some(Deduction {
                user_id: d.user_id.to_owned(),
                activity_id: d.activity_id,
                month: d.month.map(str::to_owned),
                day: d.day.map(str::to_owned),
                month_left: d.month_left,
                day_left: d.day_left,
            });
        }
        Ok(left)
    }

    async fn insert_month(&mut self, row: &PeriodAccount) -> Result<()> {
        if self.writes.month.is_some() || self.rows.month.is_some() {
            return self.refuse("a second month row");
        }
        self.writes.month = Some(row.clone());
        Ok(())
    }

    async fn insert_day(&mut self, row: &PeriodAccount) -> Result<()> {
        if self.writes.day.is_some() || self.rows.day.is_some() {
            return self.refuse("a second day row");
        }
        self.writes.day = Some(row.clone());
        Ok(())
    }

    async fn unused_raffle_order(
        &mut self,
        user_id: &str,
        activity_id: i64,
    ) -> Result<Option<UserRaffleOrder>> {
        if !self.own(user_id, activity_id) {
            return self.refuse("another user's raffle orders");
        }
        Ok(self.unused.clone())
    }

    /// The id is checked by the group's multi-row `INSERT`: a taken one fails the group,
    /// whose draws then run alone.
    async fn insert_raffle_order(&mut self, order: &UserRaffleOrder) -> Result<Inserted> {
        if self.writes.order.is_some() {
            return self.refuse("a second raffle order");
        }
        self.hold_for(&order.order_id);
        self.writes.order = Some(order.clone());
        Ok(Inserted::Done)
    }

    /// Checked by the group's `UPDATE`, which must change every order named.
    async fn use_raffle_order(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        let unused = self.unused.as_ref().is_some_and(|o| o.order_id == order_id);
        if user_id != self.user_id || !unused || self.writes.used_order.is_some() {
            return self.refuse("using another raffle order");
        }
        self.hold_for(order_id);
        self.writes.used_order = Some(order_id.to_owned());
        Ok(true)
    }
}

impl AwardRecordTx for GroupedDraw {
    async fn insert_award_record(&mut self, record: &UserAwardRecord) -> Result<()> {
        if self.writes.award.is_some() {
            return self.refuse("a second award record");
        }
        self.writes.award = Some(record.clone());
        Ok(())
    }
}

impl TaskTx for GroupedDraw {
    async fn insert_task(&mut self, task: &Task) -> Result<Inserted> {
        if self.writes.task.is_some() {
            return self.refuse("a second task");
        }
        self.writes.task = Some(task.clone());
        Ok(Inserted::Done)
    }
}
