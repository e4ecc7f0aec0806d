//! The work after a draw, in groups (see the parent module): a points prize credited
//! (record `completed`, account, credit order) and a sent task marked `completed`.

use super::{GroupError, Grouped, commit_unknown, expect_rows, push_case, push_list};
use crate::mysql::store::{ER_LOCK_DEADLOCK, MysqlStore, error_number, sql};
use crate::states::{AWARD_COMPLETED, AWARD_CREATE, TASK_COMPLETED, TASK_CREATE, TASK_FAIL};
use big_market_domain::award::{self, AwardTx, SendAwardMessage};
use big_market_domain::credit::{CreditGrantTx, CreditOrder, to_cents};
use big_market_domain::id::Inserted;
use big_market_domain::task::{TaskOutcome, TaskRow};
use big_market_domain::{Error, Result};
use rust_decimal::Decimal;
use sqlx::{Connection, MySql, MySqlConnection, QueryBuilder};
use std::collections::BTreeMap;
use std::time::Duration;

/// Deliveries wait this long for company: nobody waits on them, and a prize delivered
/// a few milliseconds later is worth fewer statements per prize.
const BACKGROUND_LINGER: Duration = Duration::from_millis(20);

/// A `user_credit_random` prize to credit ([`award::deliver_credit`]).
pub(in crate::mysql) struct CreditJob {
    pub message: SendAwardMessage,
    pub default_config: String,
}

impl Grouped for CreditJob {
    type Output = Option<Decimal>;
    const LINGER: Duration = BACKGROUND_LINGER;

    fn user_id(&self) -> &str {
        &self.message.user_id
    }

    async fn alone(store: &MysqlStore, job: &Self) -> Result<Option<Decimal>> {
        store
            .deliver_credit_now(&job.message, &job.default_config)
            .await
    }

    async fn together(
        store: &MysqlStore,
        conn: &mut MySqlConnection,
        jobs: &[&Self],
    ) -> Result<Vec<Option<Result<Option<Decimal>>>>> {
        Ok(store
            .credit_group(conn, jobs)
            .await?
            .into_iter()
            .map(Some)
            .collect())
    }
}

/// A task its sender delivered, to mark `completed`. Only the dispatcher's sends (no
/// claim, so no lease to check) come here.
pub(in crate::mysql) struct RecordJob {
    pub task: TaskRow,
    pub note: Option<String>,
}

impl Grouped for RecordJob {
    type Output = ();
    const LINGER: Duration = BACKGROUND_LINGER;

    fn user_id(&self) -> &str {
        &self.task.user_id
    }

    async fn alone(store: &MysqlStore, job: &Self) -> Result<()> {
        let db = store.user_db(&job.task.user_id);
        let outcome = TaskOutcome::Completed(job.note.clone());
        store
            .record_in(db, &job.task.message_id, None, &outcome)
            .await
            .map(|_| ())
    }

    /// One `UPDATE` with the single path's guard: a task a claimant took meanwhile is not
    /// this sender's to record, and stays as the claimant leaves it.
    async fn together(
        store: &MysqlStore,
        conn: &mut MySqlConnection,
        jobs: &[&Self],
    ) -> Result<Vec<Option<Result<()>>>> {
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        let db = &store.shard(&first.task.user_id).db;
        let mut q = QueryBuilder::<MySql>::new(format!(
            "UPDATE {db}.task SET state = '{TASK_COMPLETED}', update_time = NOW(3), last_error = "
        ));
        push_case(
            &mut q,
            "message_id",
            jobs.iter()
                .map(|j| (j.task.message_id.clone(), j.note.clone())),
        );
        q.push(
            format!(" WHERE next_attempt_time IS NULL AND state IN ('{TASK_CREATE}', '{TASK_FAIL}') AND message_id IN ("),
        );
        let ids: Vec<&str> = jobs.iter().map(|j| j.task.message_id.as_str()).collect();
        push_list(&mut q, &ids);
        q.push(")");
        q.build().execute(&mut *conn).await.map_err(sql)?;
        Ok(jobs.iter().map(|_| Some(Ok(()))).collect())
    }
}

impl MysqlStore {
    async fn credit_group(
        &self,
        conn: &mut MySqlConnection,
        jobs: &[&CreditJob],
    ) -> Result<Vec<Result<Option<Decimal>>>> {
        let mut views: Vec<GroupedCredit> = jobs
            .iter()
            .map(|j| GroupedCredit {
                user_id: j.message.user_id.clone(),
                completed: None,
                added: None,
                order: None,
                unsupported: None,
            })
            .collect();
        let mut results = Vec::with_capacity(jobs.len());
        for (view, job) in views.iter_mut().zip(jobs) {
            let mut rng = crate::mysql::store::rng();
            results.push(
                award::deliver_credit(view, &job.message, &job.default_config, &mut rng).await,
            );
        }
        if let Some(what) = views.iter().find_map(|v| v.unsupported) {
            return Err(Error::internal(format!(
                "{what} is not part of a grouped delivery"
            )));
        }
        let kept: Vec<&GroupedCredit> = views
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(v, _)| v)
            .collect();
        if kept.is_empty() {
            return Ok(results);
        }
        let mut tx = conn.begin().await.map_err(sql)?;
        if let Err(e) = self.write_credits(&mut tx, &kept).await {
            return Err(self.give_up(tx, e).await);
        }
        match tx.commit().await {
            Ok(()) => Ok(results),
            Err(e) => {
                if error_number(&e) == Some(ER_LOCK_DEADLOCK) {
                    self.note_deadlock();
                    return Err(sql(e));
                }
                tracing::warn!(error = %e, prizes = kept.len(), "group commit failed; the prizes' tasks are sent again");
                Ok(results
                    .into_iter()
                    .map(|r| r.and_then(|_| Err(commit_unknown(&e))))
                    .collect())
            }
        }
    }

    /// Records `completed`, accounts credited, one credit order each.
    async fn write_credits(
        &self,
        tx: &mut MySqlConnection,
        views: &[&GroupedCredit],
    ) -> Result<(), GroupError> {
        let Some(first) = views.first() else {
            return Ok(());
        };
        let db = &self.shard(&first.user_id).db;
        let mut records: BTreeMap<String, Vec<(&str, &str)>> = BTreeMap::new();
        let mut orders: BTreeMap<String, Vec<&CreditOrder>> = BTreeMap::new();
        for v in views {
            let sfx = self.shard(&v.user_id).sfx.clone();
            if let Some(order_id) = &v.completed {
                records
                    .entry(sfx.clone())
                    .or_default()
                    .push((&v.user_id, order_id));
            }
            if let Some(o) = &v.order {
                orders.entry(sfx).or_default().push(o);
            }
        }
        for (sfx, pairs) in records {
            // Each order with its own user, as the single path's `user_id = ? AND order_id = ?`.
            let mut q = QueryBuilder::<MySql>::new(format!(
                "UPDATE {db}.user_award_record{sfx} SET award_state = '{AWARD_COMPLETED}', delivery_note = NULL
                 WHERE award_state = '{AWARD_CREATE}' AND user_id = "
            ));
            push_case(
                &mut q,
                "order_id",
                pairs
                    .iter()
                    .map(|(user, order)| (order.to_string(), user.to_string())),
            );
            q.push(" AND order_id IN (");
            let ids: Vec<&str> = pairs.iter().map(|(_, order)| *order).collect();
            push_list(&mut q, &ids);
            q.push(")");
            let changed = q.build().execute(&mut *tx).await?.rows_affected();
            expect_rows("award records completed", ids.len(), changed)?;
        }
        // Accounts in user order, as every group takes their locks.
        let mut added: Vec<(&str, Decimal)> = views
            .iter()
            .filter_map(|v| v.added.map(|a| (v.user_id.as_str(), a)))
            .collect();
        added.sort_by(|a, b| a.0.cmp(b.0));
        if !added.is_empty() {
            let mut q = QueryBuilder::<MySql>::new(format!(
                "INSERT INTO {db}.user_credit_account
                     (user_id, total_amount, available_amount, account_status) "
            ));
            q.push_values(added, |mut b, (user, amount)| {
                b.push_bind(user.to_owned())
                    .push_bind(amount)
                    .push_bind(amount)
                    .push_bind("open");
            });
            q.push(
                " ON DUPLICATE KEY UPDATE total_amount = total_amount + VALUES(total_amount),
                     available_amount = available_amount + VALUES(available_amount)",
            );
            q.build().execute(&mut *tx).await?;
        }
        for (sfx, rows) in orders {
            let mut q = QueryBuilder::<MySql>::new(format!(
                "INSERT INTO {db}.user_credit_order{sfx} (user_id, order_id, trade_name, trade_type,
                     trade_amount, out_business_no) "
            ));
            q.push_values(rows, |mut b, o| {
                b.push_bind(o.user_id.clone())
                    .push_bind(o.order_id.clone())
                    .push_bind(o.trade_name.clone())
                    .push_bind(o.trade_type.clone())
                    .push_bind(to_cents(o.trade_amount))
                    .push_bind(o.out_business_no.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        Ok(())
    }
}

/// One prize inside a group: the unit of work `award::deliver_credit` runs in. Its
/// writes are collected; the guarded transition of the record is checked by the group's
/// `UPDATE`, which must change every record named (a prize delivered before makes the
/// group run alone, where the single path answers it).
struct GroupedCredit {
    user_id: String,
    completed: Option<String>,
    added: Option<Decimal>,
    order: Option<CreditOrder>,
    unsupported: Option<&'static str>,
}

impl GroupedCredit {
    fn refuse<T>(&mut self, what: &'static str) -> Result<T> {
        self.unsupported = Some(what);
        Err(Error::internal(format!(
            "{what} is not part of a grouped delivery"
        )))
    }

    fn own(&self, user_id: &str) -> bool {
        user_id == self.user_id
    }
}

impl AwardTx for GroupedCredit {
    /// Not reached: `complete_award` here always succeeds (the group's `UPDATE` checks
    /// it), and the domain reads the state only after a failed completion.
    async fn award_state(&mut self, _: &str, _: &str) -> Result<Option<String>> {
        self.refuse("award_state")
    }

    async fn complete_award(&mut self, user_id: &str, order_id: &str) -> Result<bool> {
        if !self.own(user_id) || self.completed.is_some() {
            return self.refuse("a second award record");
        }
        self.completed = Some(order_id.to_owned());
        Ok(true)
    }
}

impl CreditGrantTx for GroupedCredit {
    async fn credit_add(&mut self, user_id: &str, amount: Decimal) -> Result<()> {
        if !self.own(user_id) || self.added.is_some() {
            return self.refuse("a second credit");
        }
        self.added = Some(to_cents(amount));
        Ok(())
    }

    async fn insert_credit_order(&mut self, order: &CreditOrder) -> Result<Inserted> {
        if !self.own(&order.user_id) || self.order.is_some() {
            return self.refuse("a second credit order");
        }
        self.order = Some(order.clone());
        Ok(Inserted::Done)
    }
}
