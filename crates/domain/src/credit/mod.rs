//! The credit domain: points accounts (`user_credit_account`) changed only through
//! trades (`user_credit_order`), so a balance is always the sum of its orders.

#![cfg_attr(not(test), deny(clippy::as_conversions))]

use crate::activity::random_digits;
use crate::error::{Error, ResponseCode, Result};
use crate::id::{Inserted, Redraw};
use crate::task::{EventMessage, Task, TaskTx, topic};
use rand::Rng;
use rust_decimal::Decimal;
use serde::Serialize;

/// `user_credit_account.account_status` values.
pub mod account_status {
    pub const OPEN: &str = "open";
}

/// Direction of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeType {
    /// Credits in (rebates, prizes).
    Forward,
    /// Credits out (paying for a SKU).
    Reverse,
}

impl TradeType {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeType::Forward => "forward",
            TradeType::Reverse => "reverse",
        }
    }
}

/// Why credits moved; stored as upstream's Chinese labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeName {
    /// 行为返利: a behaviour rebate (sign-in, payment).
    Rebate,
    /// 兑换抽奖: credits paid for draws.
    ConvertSku,
    /// 抽奖奖品: credits won in a draw (ours; upstream writes no order for prizes).
    Prize,
}

impl TradeName {
    pub fn label(self) -> &'static str {
        match self {
            TradeName::Rebate => "行为返利",
            TradeName::ConvertSku => "兑换抽奖",
            TradeName::Prize => "抽奖奖品",
        }
    }
}

/// A requested trade. `amount` is signed: negative for reverse trades, as upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub user_id: String,
    pub trade_name: TradeName,
    pub trade_type: TradeType,
    pub amount: Decimal,
    pub out_business_no: String,
}

/// A row of `user_credit_order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditOrder {
    pub user_id: String,
    pub order_id: String,
    pub trade_name: String,
    pub trade_type: String,
    /// Signed, two decimal places.
    pub trade_amount: Decimal,
    pub out_business_no: String,
}

/// `credit_adjust_success` payload (fastjson's alphabetical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreditAdjustSuccessMessage {
    #[serde(with = "rust_decimal::serde::float")]
    pub amount: Decimal,
    pub order_id: String,
    pub out_business_no: String,
    pub user_id: String,
}

/// Credit trades inside a unit of work on the user's store: reading and taking from
/// the balance, besides granting.
#[allow(async_fn_in_trait)]
pub trait CreditTx: CreditGrantTx {
    /// Available credits (0 without an account).
    async fn credit_available(&mut self, user_id: &str) -> Result<Decimal>;
    /// Takes `amount` from available only if that much is there; whether it was.
    async fn credit_take(&mut self, user_id: &str, amount: Decimal) -> Result<bool>;
}

/// Granting credits (a prize's delivery needs only this part of [`CreditTx`]).
#[allow(async_fn_in_trait)]
pub trait CreditGrantTx {
    /// Adds to total and available, creating the account.
    async fn credit_add(&mut self, user_id: &str, amount: Decimal) -> Result<()>;
    /// Inserts an order; a taken `out_business_no` → `0003`.
    async fn insert_credit_order(&mut self, order: &CreditOrder) -> Result<Inserted>;
}

/// Credits are stored with two decimal places.
pub fn to_cents(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// Validates a trade: a non-zero amount whose sign matches the direction.
pub fn validate(trade: &Trade) -> Result<()> {
    if trade.user_id.trim().is_empty() {
        return Err(Error::illegal("userId is blank"));
    }
    if trade.out_business_no.trim().is_empty() {
        return Err(Error::illegal("outBusinessNo is blank"));
    }
    let ok = match trade.trade_type {
        TradeType::Forward => trade.amount > Decimal::ZERO,
        TradeType::Reverse => trade.amount < Decimal::ZERO,
    };
    if !ok || to_cents(trade.amount) != trade.amount {
        return Err(Error::illegal(format!(
            "amount {} is not a valid {} amount (two decimal places, forward > 0, reverse < 0)",
            trade.amount,
            trade.trade_type.as_str()
        )));
    }
    Ok(())
}

/// One trade in the caller's transaction: the account change (a reverse trade never takes
/// more than is available: `ERR_CREDIT_001`), the order (idempotent by
/// `out_business_no`: `0003`) and the `credit_adjust_success` task.
pub async fn adjust<T: CreditTx + TaskTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    trade: &Trade,
    timestamp_ms: i64,
    rng: &mut R,
) -> Result<(CreditOrder, Task)> {
    validate(trade)?;
    let mut order = CreditOrder {
        user_id: trade.user_id.clone(),
        order_id: random_digits(rng, 12),
        trade_name: trade.trade_name.label().to_owned(),
        trade_type: trade.trade_type.as_str().to_owned(),
        trade_amount: trade.amount,
        out_business_no: trade.out_business_no.clone(),
    };
    // The idempotency key first: a repeated trade is `0003` whatever the balance.
    let mut redraw = Redraw::new(12);
    while tx.insert_credit_order(&order).await? == Inserted::IdTaken {
        order.order_id = redraw.next(rng)?;
    }
    match trade.trade_type {
        TradeType::Forward => tx.credit_add(&trade.user_id, trade.amount).await?,
        TradeType::Reverse => {
            let need = trade.amount.abs();
            if !tx.credit_take(&trade.user_id, need).await? {
                let available = tx.credit_available(&trade.user_id).await?;
                return Err(Error::biz(
                    ResponseCode::UserCreditAccountNoAvailableAmount,
                    format!("{need} credits needed, {available} available"),
                ));
            }
        }
    }
    let message = EventMessage {
        data: CreditAdjustSuccessMessage {
            amount: order.trade_amount,
            order_id: order.order_id.clone(),
            out_business_no: order.out_business_no.clone(),
            user_id: order.user_id.clone(),
        },
        id: random_digits(rng, 11),
        timestamp: timestamp_ms,
    };
    let mut task = Task::new(&trade.user_id, topic::CREDIT_ADJUST_SUCCESS, message)?;
    crate::task::insert(tx, &mut task, rng).await?;
    Ok((order, task))
}

/// Storage of the credit domain.
#[async_trait::async_trait]
pub trait CreditRepository: Send + Sync {
    /// Runs [`adjust`] in one transaction.
    async fn adjust(&self, trade: Trade, timestamp_ms: i64) -> Result<(CreditOrder, Task)>;
    /// Available credits (0 without an account).
    async fn available(&self, user_id: &str) -> Result<Decimal>;
}

/// Credit adjustments and balance queries.
pub struct CreditService {
    repo: std::sync::Arc<dyn CreditRepository>,
    clock: std::sync::Arc<dyn crate::time::Clock>,
    notifier: std::sync::Arc<dyn crate::task::TaskNotifier>,
}

impl CreditService {
    pub fn new(
        repo: std::sync::Arc<dyn CreditRepository>,
        clock: std::sync::Arc<dyn crate::time::Clock>,
        notifier: std::sync::Arc<dyn crate::task::TaskNotifier>,
    ) -> Self {
        Self {
            repo,
            clock,
            notifier,
        }
    }

    /// One trade; `credit_adjust_success` is handed on only after the commit.
    pub async fn adjust(&self, trade: Trade) -> Result<CreditOrder> {
        validate(&trade)?;
        let ts = self.clock.now().timestamp().as_millisecond();
        let (order, task) = self.repo.adjust(trade, ts).await?;
        self.notifier.notify(&task);
        Ok(order)
    }

    pub async fn available(&self, user_id: &str) -> Result<Decimal> {
        if user_id.trim().is_empty() {
            return Err(Error::illegal("userId is blank"));
        }
        self.repo.available(user_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade(t: TradeType, amount: &str) -> Trade {
        Trade {
            user_id: "u".into(),
            trade_name: TradeName::Rebate,
            trade_type: t,
            amount: amount.parse().unwrap(),
            out_business_no: "k".into(),
        }
    }

    #[test]
    fn amounts_must_match_the_direction() {
        assert!(validate(&trade(TradeType::Forward, "10.19")).is_ok());
        assert!(validate(&trade(TradeType::Reverse, "-10.19")).is_ok());
        for (t, a) in [
            (TradeType::Forward, "-1"),
            (TradeType::Forward, "0"),
            (TradeType::Reverse, "5"),
            (TradeType::Forward, "1.005"),
        ] {
            assert_eq!(
                validate(&trade(t, a)).unwrap_err().code(),
                ResponseCode::IllegalParameter,
                "{a}"
            );
        }
    }
}
