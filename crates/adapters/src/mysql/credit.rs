//! Credits on the user databases: accounts changed only through orders. Credit is taken
//! with a guarded relative update (`available_amount >= ?`), never a value computed from an
//! earlier read.

use super::store::{MysqlStore, MysqlTx, rng};
use crate::states::ACCOUNT_OPEN;
use async_trait::async_trait;
use big_market_domain::Result;
use big_market_domain::credit::{
    self, CreditGrantTx, CreditOrder, CreditRepository, CreditTx, Trade,
};
use big_market_domain::id::Inserted;
use big_market_domain::task::Task;
use rust_decimal::Decimal;

#[async_trait]
impl CreditRepository for MysqlStore {
    async fn adjust(&self, trade: Trade, timestamp_ms: i64) -> Result<(CreditOrder, Task)> {
        let trade = &trade;
        self.in_user_tx(&trade.user_id, |mut tx| async move {
            let r = credit::adjust(&mut tx, trade, timestamp_ms, &mut rng()).await;
            (tx, r)
        })
        .await
    }

    async fn available(&self, user_id: &str) -> Result<Decimal> {
        let shard = self.shard(user_id);
        let sql = format!(
            "SELECT available_amount FROM {db}.user_credit_account WHERE user_id = ?",
            db = shard.db
        );
        let row: Option<(Decimal,)> = self
            .one_on(&shard.pool, sqlx::query_as(&sql).bind(user_id))
            .await?;
        Ok(row.map_or(Decimal::ZERO, |r| r.0))
    }
}

/// Amounts are `decimal(10,2)`: always two places.
pub(super) fn cents(d: Decimal) -> Decimal {
    credit::to_cents(d)
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
             VALUES (?, ?, ?, '{ACCOUNT_OPEN}')
             ON DUPLICATE KEY UPDATE total_amount = total_amount + VALUES(total_amount),
                 available_amount = available_amount + VALUES(available_amount)",
            db = self.shard.db
        );
        let amount = cents(amount);
        self.exec(sqlx::query(&sql).bind(user_id).bind(amount).bind(amount))
            .await?;
        Ok(())
    }

    async fn insert_credit_order(&mut self, o: &CreditOrder) -> Result<Inserted> {
        let sql = format!(
            "INSERT INTO {db}.user_credit_order{sfx} (user_id, order_id, trade_name, trade_type,
                 trade_amount, out_business_no)
             VALUES (?, ?, ?, ?, ?, ?)",
            db = self.shard.db,
            sfx = self.shard.sfx
        );
        let q = sqlx::query(&sql)
            .bind(&o.user_id)
            .bind(&o.order_id)
            .bind(&o.trade_name)
            .bind(&o.trade_type)
            .bind(cents(o.trade_amount))
            .bind(&o.out_business_no);
        self.insert_once(
            "uq_out_business_no",
            || format!("credit trade {} was already made", o.out_business_no),
            q,
        )
        .await
    }
}
