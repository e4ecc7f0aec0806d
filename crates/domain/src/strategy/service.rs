//! The strategy service: armory, the strategy-level raffle and the queries the front end
//! uses. It owns the in-process [`Catalog`] and reaches storage only through
//! [`StrategyRepository`].

use super::armory::{AssembledStrategy, Catalog};
use super::odds::{StrategyOdds, strategy_odds};
use super::{RaffleAward, StrategyConfig};
use crate::cluster::{Broadcaster, Changed, ConfigBroadcast};
use crate::error::{Error, ResponseCode, Result};
use crate::time::{CalendarKeys, Clock};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

/// A user's use of an activity: draws used in total and today.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrawCounts {
    pub total_used: i64,
    pub today_used: i64,
}

/// Storage the strategy domain needs.
#[async_trait]
pub trait StrategyRepository: Send + Sync {
    /// Ids of every configured strategy.
    async fn strategy_ids(&self) -> Result<Vec<i64>>;
    /// The armory input of one strategy (`strategy` is `None` when it does not exist).
    async fn strategy_config(&self, strategy_id: i64) -> Result<StrategyConfig>;
    /// Draws used by the user in the activity this month and day (`ActivityAccount::used`
    /// and `PeriodAccount::used` of the rows read); zeros when the user has no account.
    async fn draw_counts(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<DrawCounts>;
    /// Units of award stock left now, by award id, for the strategy's awards (where
    /// draws take them: the SQL row embedded, the Redis counter in production).
    async fn award_stock_left(&self, strategy_id: i64) -> Result<HashMap<i32, i64>>;
    /// `activity::quota::strategy_raffle` for `user_id` in one unit of work: counts read
    /// and award stock taken in the same transaction.
    async fn raffle(
        &self,
        strategy: Arc<AssembledStrategy>,
        user_id: String,
        now: jiff::civil::DateTime,
        keys: CalendarKeys,
    ) -> Result<RaffleAward>;
}

/// One line of `query_raffle_award_list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardListItem {
    pub award_id: i32,
    pub award_title: String,
    pub award_subtitle: Option<String>,
    pub sort: i32,
    /// The configured rate (not in upstream's answer).
    pub award_rate: rust_decimal::Decimal,
    pub award_rule_lock_count: Option<i64>,
    pub is_award_unlock: bool,
    pub wait_unlock_count: i64,
}

/// One group of `query_raffle_strategy_rule_weight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWeightItem {
    pub rule_weight_count: i64,
    pub user_activity_account_total_use_count: i64,
    /// `(awardId, awardTitle)` of the group.
    pub strategy_awards: Vec<(i32, String)>,
}

pub struct StrategyService {
    catalog: Catalog,
    repo: Arc<dyn StrategyRepository>,
    clock: Arc<dyn Clock>,
    broadcast: Broadcaster,
}

impl StrategyService {
    pub fn new(repo: Arc<dyn StrategyRepository>, clock: Arc<dyn Clock>) -> Self {
        Self {
            catalog: Catalog::new(),
            repo,
            clock,
            broadcast: Broadcaster::default(),
        }
    }

    /// Where armory runs are announced to the other nodes.
    pub fn set_broadcast(&self, broadcast: Arc<dyn ConfigBroadcast>) {
        self.broadcast.set(broadcast);
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// `strategy_armory`: rebuilds the strategy here ([`Self::reload`]) and tells the
    /// other nodes to do the same.
    pub async fn armory(&self, strategy_id: i64) -> Result<Arc<AssembledStrategy>> {
        let assembled = self.reload(strategy_id).await;
        // Announced on failure too: the other nodes must drop the old tables as well.
        self.broadcast.changed(Changed::Strategy(strategy_id));
        assembled
    }

    /// Builds (or rebuilds) the tables of one strategy from storage. On failure the
    /// previous tables are dropped, so draws report the problem instead of using stale odds.
    pub async fn reload(&self, strategy_id: i64) -> Result<Arc<AssembledStrategy>> {
        let config = self.repo.strategy_config(strategy_id).await?;
        if config.strategy.is_none() {
            self.catalog.remove(strategy_id);
            return Err(Error::illegal(format!(
                "strategy {strategy_id} does not exist"
            )));
        }
        // The campaign document's checks, the same that `validate` and `apply` run: logged
        // here (the stored rows are what serves), refused when a document brings them.
        for f in crate::campaign::check_strategy_config(&config) {
            tracing::warn!(strategy_id, path = %f.path, problem = %f.message, "strategy configuration");
        }
        match AssembledStrategy::assemble(config) {
            Ok(s) => {
                tracing::info!(strategy_id, awards = s.awards.len(), "strategy assembled");
                Ok(self.catalog.insert(s))
            }
            Err(e) => {
                self.catalog.remove(strategy_id);
                Err(e)
            }
        }
    }

    /// Assembles every configured strategy; a broken one is logged and left out so the
    /// others still serve.
    pub async fn armory_all(&self) -> Result<Vec<(i64, Error)>> {
        let mut failures = Vec::new();
        for id in self.repo.strategy_ids().await? {
            if let Err(e) = self.reload(id).await {
                tracing::error!(strategy_id = id, error = %e, "strategy could not be assembled");
                failures.push((id, e));
            }
        }
        Ok(failures)
    }

    /// The awards of a strategy as stored, with their stock left (`award_count_surplus`;
    /// on the production backend the SQL column, written back from Redis every
    /// `stock_writeback_ms`).
    pub async fn award_stock(&self, strategy_id: i64) -> Result<Vec<super::StrategyAward>> {
        let config = self.repo.strategy_config(strategy_id).await?;
        if config.strategy.is_none() {
            return Err(Error::illegal(format!(
                "strategy {strategy_id} does not exist"
            )));
        }
        let mut awards = config.awards;
        awards.sort_by_key(|a| (a.sort, a.award_id));
        Ok(awards)
    }

    /// `random_raffle`: a draw as user `system` (who has no account: 0 draws).
    pub async fn random_raffle(&self, strategy_id: i64) -> Result<RaffleAward> {
        let strategy = self.catalog.get(strategy_id)?;
        let now = self.clock.now();
        let keys = CalendarKeys::of(&now);
        self.repo
            .raffle(strategy, "system".into(), now.datetime(), keys)
            .await
    }

    fn strategy_of_activity(&self, activity_id: i64) -> Result<Arc<AssembledStrategy>> {
        self.catalog.by_activity(activity_id).ok_or_else(|| {
            Error::biz(
                ResponseCode::UnAssembledStrategyArmory,
                format!("activity {activity_id} has no assembled strategy (unknown activity, or run the armory)"),
            )
        })
    }

    async fn counts(&self, user_id: &str, activity_id: i64) -> Result<DrawCounts> {
        let keys = CalendarKeys::of(&self.clock.now());
        self.repo.draw_counts(user_id, activity_id, &keys).await
    }

    /// The awards of an activity's strategy with the user's unlock progress (today's draws
    /// against each award's `rule_lock`).
    pub async fn award_list(&self, user_id: &str, activity_id: i64) -> Result<Vec<AwardListItem>> {
        let strategy = self.strategy_of_activity(activity_id)?;
        let today = self.counts(user_id, activity_id).await?.today_used;
        Ok(strategy
            .awards
            .iter()
            .map(|a| {
                let lock = strategy.tree_of(a.award_id).and_then(|t| t.lock_count());
                AwardListItem {
                    award_id: a.award_id,
                    award_title: a.award_title.clone(),
                    award_subtitle: a.award_subtitle.clone(),
                    sort: a.sort,
                    award_rate: a.award_rate,
                    award_rule_lock_count: lock,
                    is_award_unlock: lock.is_none_or(|n| today >= n),
                    wait_unlock_count: lock.map_or(0, |n| (n - today).max(0)),
                }
            })
            .collect())
    }

    /// The weight groups of an activity's strategy with the user's total draws. A strategy
    /// without `rule_weight` has no groups: an empty list.
    pub async fn rule_weight(
        &self,
        user_id: &str,
        activity_id: i64,
    ) -> Result<Vec<RuleWeightItem>> {
        let strategy = self.strategy_of_activity(activity_id)?;
        let total = self.counts(user_id, activity_id).await?.total_used;
        Ok(strategy
            .weight_groups()
            .unwrap_or(&[])
            .iter()
            .map(|g| RuleWeightItem {
                rule_weight_count: g.threshold,
                user_activity_account_total_use_count: total,
                strategy_awards: g
                    .award_ids
                    .iter()
                    .filter_map(|id| strategy.award(*id))
                    .map(|a| (a.award_id, a.award_title.clone()))
                    .collect(),
            })
            .collect())
    }

    /// `query_award_odds`: the published odds of an activity's strategy, with which
    /// awards are sold out now.
    pub async fn award_odds(&self, activity_id: i64) -> Result<StrategyOdds> {
        let strategy = self.strategy_of_activity(activity_id)?;
        let stock = self.repo.award_stock_left(strategy.strategy_id()).await?;
        Ok(strategy_odds(
            &strategy,
            &stock,
            self.clock.now().datetime(),
        ))
    }
}
