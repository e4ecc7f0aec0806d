//! The operator's back office (upstream's `ErpOperateController`, addendum §1.4): the
//! newest raffle orders, the activity stages, and activating a stage.
//!
//! Upstream read raffle orders from Elasticsearch; here they come from SQL, bounded.

use crate::activity::{ActivityService, RaffleActivityStage, UserRaffleOrder};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::sync::Arc;

/// Storage the back office reads and changes.
#[async_trait]
pub trait ErpRepository: Send + Sync {
    /// The newest `limit` raffle orders of all users, newest first.
    async fn latest_raffle_orders(&self, limit: usize) -> Result<Vec<UserRaffleOrder>>;
    /// Every stage row, newest (highest id) first.
    async fn stages_newest_first(&self) -> Result<Vec<RaffleActivityStage>>;
    async fn stage(&self, id: i64) -> Result<Option<RaffleActivityStage>>;
    /// Sets the stage `active`; whether the row exists.
    async fn activate_stage(&self, id: i64) -> Result<bool>;
    /// One user's newest `limit` raffle orders (every activity), newest first.
    async fn user_raffle_orders(&self, user_id: &str, limit: usize)
    -> Result<Vec<UserRaffleOrder>>;
    /// One user's newest `limit` credit orders (the points ledger), newest first.
    async fn user_credit_orders(
        &self,
        user_id: &str,
        limit: usize,
    ) -> Result<Vec<CreditLedgerLine>>;
}

/// A line of a user's points ledger (`user_credit_order`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditLedgerLine {
    pub order_id: String,
    pub trade_name: String,
    /// `forward` (credited) or `reverse` (paid).
    pub trade_type: String,
    pub trade_amount: rust_decimal::Decimal,
    pub out_business_no: String,
    pub create_time: jiff::civil::DateTime,
}

pub struct ErpService {
    repo: Arc<dyn ErpRepository>,
    activity: Arc<ActivityService>,
}

/// Most raffle orders one listing returns.
pub const MAX_ORDERS: usize = 100;

impl ErpService {
    pub fn new(repo: Arc<dyn ErpRepository>, activity: Arc<ActivityService>) -> Self {
        Self { repo, activity }
    }

    /// `erp/query_user_raffle_order`: at most [`MAX_ORDERS`].
    pub async fn raffle_orders(&self, limit: usize) -> Result<Vec<UserRaffleOrder>> {
        self.repo
            .latest_raffle_orders(limit.clamp(1, MAX_ORDERS))
            .await
    }

    /// One user's raffle orders and points ledger, newest first, at most [`MAX_ORDERS`]
    /// of each.
    pub async fn user_detail(
        &self,
        user_id: &str,
    ) -> Result<(Vec<UserRaffleOrder>, Vec<CreditLedgerLine>)> {
        let orders = self.repo.user_raffle_orders(user_id, MAX_ORDERS).await?;
        let ledger = self.repo.user_credit_orders(user_id, MAX_ORDERS).await?;
        Ok((orders, ledger))
    }

    /// `erp/query_raffle_activity_stage_list`.
    pub async fn stages(&self) -> Result<Vec<RaffleActivityStage>> {
        self.repo.stages_newest_first().await
    }

    /// `erp/update_stage_activity_2_active`: preheats the stage's activity (and its
    /// strategy, so the first draw finds its tables), then marks the stage active.
    pub async fn activate_stage(&self, id: i64) -> Result<()> {
        let stage = self
            .repo
            .stage(id)
            .await?
            .ok_or_else(|| Error::illegal(format!("activity stage {id} does not exist")))?;
        self.activity.armory(stage.activity_id).await?;
        if !self.repo.activate_stage(id).await? {
            return Err(Error::illegal(format!(
                "activity stage {id} does not exist"
            )));
        }
        tracing::info!(
            stage_id = id,
            activity_id = stage.activity_id,
            "stage activated"
        );
        Ok(())
    }
}
