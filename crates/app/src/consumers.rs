//! Message consumers (triggers): parse a topic's `EventMessage`, call one domain service.
//! Each is idempotent: the services change state only through guarded transitions, so a
//! redelivered message leaves the same end state.

use async_trait::async_trait;
use big_market_domain::activity::ActivityService;
use big_market_domain::award::{AwardService, SendAwardMessage};
use big_market_domain::credit::CreditAdjustSuccessMessage;
use big_market_domain::rebate::{RebateMessage, RebateService};
use big_market_domain::task::{Consumer, EventMessage};
use big_market_domain::{Error, Result};
use serde::de::DeserializeOwned;
use std::sync::Arc;

fn parse<T: DeserializeOwned>(topic: &str, message: &str) -> Result<T> {
    serde_json::from_str::<EventMessage<T>>(message)
        .map(|m| m.data)
        .map_err(|e| Error::illegal(format!("malformed {topic} message: {e}")))
}

/// `send_award` → award delivery.
pub struct SendAward(pub Arc<AwardService>);

#[async_trait]
impl Consumer for SendAward {
    async fn consume(&self, message: &str) -> Result<Option<String>> {
        let m: SendAwardMessage = parse("send_award", message)?;
        self.0.deliver(&m).await
    }
}

/// `send_rebate` → SKU recharge or credits.
pub struct SendRebate(pub Arc<RebateService>);

#[async_trait]
impl Consumer for SendRebate {
    async fn consume(&self, message: &str) -> Result<Option<String>> {
        let m: RebateMessage = parse("send_rebate", message)?;
        self.0.settle(&m).await
    }
}

/// `credit_adjust_success` → delivery of an order paid with credits.
pub struct CreditAdjustSuccess(pub Arc<ActivityService>);

#[async_trait]
impl Consumer for CreditAdjustSuccess {
    async fn consume(&self, message: &str) -> Result<Option<String>> {
        let m: CreditAdjustSuccessMessage = parse("credit_adjust_success", message)?;
        let delivered = self
            .0
            .deliver_paid_order(&m.user_id, &m.out_business_no)
            .await?;
        Ok(Some(
            if delivered {
                "paid order delivered"
            } else {
                "no order waiting for this payment"
            }
            .into(),
        ))
    }
}
