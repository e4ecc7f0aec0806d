//! The rebate domain: what a user behaviour (sign-in, payment) grants, recorded as
//! rebate orders with `send_rebate` tasks in one transaction, settled by a consumer.

use crate::activity::random_digits;
use crate::error::{Error, ResponseCode, Result};
use crate::id::{Inserted, Redraw};
use crate::task::{EventMessage, Task, TaskTx, topic};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A row of `daily_behavior_rebate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyBehaviorRebate {
    pub behavior_type: String,
    pub rebate_desc: String,
    /// `sku` or `integral`.
    pub rebate_type: String,
    pub rebate_config: String,
    /// `open` or `close`; closed rows are ignored.
    pub state: String,
}

/// Behaviour types as stored (`sign`, `openai_pay`).
pub mod behavior {
    pub const SIGN: &str = "sign";
    pub const OPENAI_PAY: &str = "openai_pay";
}

/// Rebate types.
pub mod rebate_type {
    pub const SKU: &str = "sku";
    pub const INTEGRAL: &str = "integral";
}

/// A row of `user_behavior_rebate_order`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebateOrder {
    pub user_id: String,
    pub order_id: String,
    pub behavior_type: String,
    pub rebate_desc: String,
    pub rebate_type: String,
    pub rebate_config: String,
    pub out_business_no: String,
    /// `{userId}_{rebateType}_{outBusinessNo}`: the idempotency key.
    pub biz_id: String,
}

/// `send_rebate` payload (fastjson's alphabetical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RebateMessage {
    pub biz_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebate_config: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebate_desc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebate_type: Option<String>,
    pub user_id: String,
}

/// Rebate writes of a unit of work.
#[allow(async_fn_in_trait)]
pub trait RebateTx {
    /// Inserts an order; a taken `biz_id` → `0003`.
    async fn insert_rebate_order(&mut self, order: &RebateOrder) -> Result<Inserted>;
}

/// A behaviour to rebate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Behavior {
    pub user_id: String,
    pub behavior_type: String,
    /// The sign-in day `yyyyMMdd`, or the payment's order number.
    pub out_business_no: String,
}

/// Records one behaviour in the caller's transaction: a rebate order and a `send_rebate`
/// task per open configuration row. A behaviour recorded before → `0003`.
pub async fn record<T: RebateTx + TaskTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    behavior: &Behavior,
    configs: &[DailyBehaviorRebate],
    timestamp_ms: i64,
    rng: &mut R,
) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for c in configs
        .iter()
        .filter(|c| c.state == "open" && c.behavior_type == behavior.behavior_type)
    {
        let biz_id = fit_key(
            &format!(
                "{}_{}_{}",
                behavior.user_id, c.rebate_type, behavior.out_business_no
            ),
            128,
        );
        let mut order = RebateOrder {
            user_id: behavior.user_id.clone(),
            order_id: random_digits(rng, 12),
            behavior_type: c.behavior_type.clone(),
            rebate_desc: c.rebate_desc.clone(),
            rebate_type: c.rebate_type.clone(),
            rebate_config: c.rebate_config.clone(),
            out_business_no: behavior.out_business_no.clone(),
            biz_id: biz_id.clone(),
        };
        let mut redraw = Redraw::new(12);
        while tx.insert_rebate_order(&order).await? == Inserted::IdTaken {
            order.order_id = redraw.next(rng)?;
        }
        let message = EventMessage {
            data: RebateMessage {
                biz_id,
                rebate_config: Some(c.rebate_config.clone()),
                rebate_desc: Some(c.rebate_desc.clone()),
                rebate_type: Some(c.rebate_type.clone()),
                user_id: behavior.user_id.clone(),
            },
            id: random_digits(rng, 11),
            timestamp: timestamp_ms,
        };
        let mut task = Task::new(&behavior.user_id, topic::SEND_REBATE, message)?;
        crate::task::insert(tx, &mut task, rng).await?;
        tasks.push(task);
    }
    Ok(tasks)
}

/// `key` if it has at most `max` characters (`max` ≥ 64), else a 64-character digest of
/// it: the same key always gives the same result, so idempotency holds either way.
///
/// Used where a rebate key meets a column: `biz_id` holds 128 characters, an order's
/// `out_business_no` 64, while a user id (128) and an outside business number (128)
/// together can be longer.
pub fn fit_key(key: &str, max: usize) -> String {
    use sha2::Digest;
    if key.chars().count() <= max {
        return key.to_owned();
    }
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("rebate_{}", &hex[..57])
}

/// The `outBusinessNo` a rebate is settled under (an order key: 64 characters).
pub fn settle_key(biz_id: &str) -> String {
    fit_key(biz_id, 64)
}

/// Validates a behaviour from outside.
pub fn validate(behavior: &Behavior) -> Result<()> {
    for (name, v) in [
        ("userId", &behavior.user_id),
        ("behaviorType", &behavior.behavior_type),
        ("outBusinessNo", &behavior.out_business_no),
    ] {
        if v.trim().is_empty() {
            return Err(Error::illegal(format!("{name} is blank")));
        }
    }
    if ![behavior::SIGN, behavior::OPENAI_PAY].contains(&behavior.behavior_type.as_str()) {
        return Err(Error::illegal(format!(
            "behaviorType {:?} is not sign or openai_pay",
            behavior.behavior_type
        )));
    }
    if behavior.user_id.chars().count() > 128 || behavior.out_business_no.chars().count() > 128 {
        return Err(Error::illegal("userId or outBusinessNo is too long"));
    }
    Ok(())
}

/// Whether a settlement error means "done with this message" (acknowledge and record)
/// rather than "try again": a duplicate, or a SKU that is sold out.
pub fn is_final(e: &Error) -> bool {
    matches!(
        e.code(),
        ResponseCode::IndexDup | ResponseCode::ActivitySkuStockError
    )
}

/// Storage of the rebate domain.
#[async_trait::async_trait]
pub trait RebateRepository: Send + Sync {
    /// Configuration rows of a behaviour type (open and closed).
    async fn rebate_configs(&self, behavior_type: &str) -> Result<Vec<DailyBehaviorRebate>>;
    /// Runs [`record`] in one transaction.
    async fn record(
        &self,
        behavior: Behavior,
        configs: Vec<DailyBehaviorRebate>,
        timestamp_ms: i64,
    ) -> Result<Vec<Task>>;
    /// Whether the user has a rebate order with this `out_business_no`.
    async fn has_rebate(&self, user_id: &str, out_business_no: &str) -> Result<bool>;
}

/// Behaviour rebates: recording behaviours and settling `send_rebate` messages.
pub struct RebateService {
    repo: std::sync::Arc<dyn RebateRepository>,
    clock: std::sync::Arc<dyn crate::time::Clock>,
    notifier: std::sync::Arc<dyn crate::task::TaskNotifier>,
    activity: std::sync::Arc<crate::activity::ActivityService>,
    credit: std::sync::Arc<crate::credit::CreditService>,
}

impl RebateService {
    pub fn new(
        repo: std::sync::Arc<dyn RebateRepository>,
        clock: std::sync::Arc<dyn crate::time::Clock>,
        notifier: std::sync::Arc<dyn crate::task::TaskNotifier>,
        activity: std::sync::Arc<crate::activity::ActivityService>,
        credit: std::sync::Arc<crate::credit::CreditService>,
    ) -> Self {
        Self {
            repo,
            clock,
            notifier,
            activity,
            credit,
        }
    }

    /// Records a behaviour: one rebate order and task per open configuration row.
    pub async fn rebate(&self, behavior: Behavior) -> Result<Vec<Task>> {
        validate(&behavior)?;
        let configs = self.repo.rebate_configs(&behavior.behavior_type).await?;
        let ts = self.clock.now().timestamp().as_millisecond();
        let tasks = self.repo.record(behavior, configs, ts).await?;
        for t in &tasks {
            self.notifier.notify(t);
        }
        Ok(tasks)
    }

    /// The daily sign-in (`calendar_sign_rebate`); a second one the same day → `0003`.
    pub async fn sign(&self, user_id: &str) -> Result<()> {
        let day = crate::time::CalendarKeys::of(&self.clock.now()).compact_day;
        self.rebate(Behavior {
            user_id: user_id.to_owned(),
            behavior_type: behavior::SIGN.to_owned(),
            out_business_no: day,
        })
        .await
        .map_err(|e| match e {
            Error::Biz {
                code: ResponseCode::IndexDup,
                ..
            } => Error::biz(
                ResponseCode::IndexDup,
                format!("{user_id} has signed in today"),
            ),
            other => other,
        })?;
        Ok(())
    }

    /// Whether the user signed in today.
    pub async fn signed_today(&self, user_id: &str) -> Result<bool> {
        if user_id.trim().is_empty() {
            return Err(Error::illegal("userId is blank"));
        }
        let day = crate::time::CalendarKeys::of(&self.clock.now()).compact_day;
        self.repo.has_rebate(user_id, &day).await
    }

    /// Settles one `send_rebate` message: a SKU recharge (no-pay, keyed by `bizId`) or a
    /// forward credit trade. Duplicates and sold-out SKUs are final (acknowledged with a
    /// note); other errors are returned for a retry.
    pub async fn settle(&self, m: &RebateMessage) -> Result<Option<String>> {
        let config = m.rebate_config.as_deref().unwrap_or("").trim();
        let result = match m.rebate_type.as_deref() {
            Some(rebate_type::SKU) => {
                let sku = config
                    .parse::<i64>()
                    .map_err(|_| Error::config(format!("rebate sku {config:?} is not a sku id")))?;
                self.activity
                    .recharge_no_pay(m.user_id.clone(), sku, settle_key(&m.biz_id))
                    .await
                    .map(|o| format!("sku {sku} recharged, order {}", o.order_id))
            }
            Some(rebate_type::INTEGRAL) => {
                let amount = config.parse::<rust_decimal::Decimal>().map_err(|_| {
                    Error::config(format!("rebate credits {config:?} is not an amount"))
                })?;
                self.credit
                    .adjust(crate::credit::Trade {
                        user_id: m.user_id.clone(),
                        trade_name: crate::credit::TradeName::Rebate,
                        trade_type: crate::credit::TradeType::Forward,
                        amount,
                        out_business_no: settle_key(&m.biz_id),
                    })
                    .await
                    .map(|o| format!("{amount} credits, order {}", o.order_id))
            }
            other => return Ok(Some(format!("rebate type {other:?} ignored"))),
        };
        match result {
            Ok(note) => Ok(Some(note)),
            Err(e) if is_final(&e) => Ok(Some(format!("acknowledged: {e}"))),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fit_their_columns_and_stay_distinct() {
        let long = |c: &str| format!("{}_sku_{}", "u".repeat(100), c.repeat(64));
        assert_eq!(settle_key("u_sku_20240101"), "u_sku_20240101");
        let (a, b) = (settle_key(&long("n")), settle_key(&long("m")));
        assert_eq!(a.chars().count(), 64);
        assert_ne!(a, b);
        assert_eq!(a, settle_key(&long("n")), "the same bizId, the same key");
        assert_eq!(fit_key(&"k".repeat(128), 128), "k".repeat(128));
        assert_eq!(fit_key(&"k".repeat(129), 128).chars().count(), 64);
    }
}
