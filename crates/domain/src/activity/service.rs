//! The activity service: activity armory, SKU recharge, the draw and the account and
//! product queries. Activities and their SKUs are held in process; every user-scoped
//! change runs as one unit of work in the [`ActivityRepository`].

use super::quota::{DrawOutcome, OrderTradeType, SkuRecharge};
use super::{
    ActivityAccount, ActivityConfig, PeriodAccount, RaffleActivityCount, RaffleActivityOrder,
    RaffleActivitySku, RaffleActivityStage,
};
use crate::cluster::{Broadcaster, Changed, ConfigBroadcast};
use crate::error::{Error, ResponseCode, Result};
use crate::strategy::fair::{FairDraw, Proof};
use crate::strategy::fairness::{EpochView, FairnessService, RevealedEpoch};
use crate::strategy::{AssembledStrategy, StrategyService};
use crate::task::{Task, TaskNotifier};
use crate::time::{CalendarKeys, Clock};
use async_trait::async_trait;
use jiff::civil::DateTime;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

/// A recharge to run in one unit of work.
#[derive(Debug, Clone)]
pub struct RechargeJob {
    pub request: SkuRecharge,
    pub config: Arc<ActivityConfig>,
    pub now: DateTime,
    pub keys: CalendarKeys,
}

impl RechargeJob {
    /// The recharge's inputs, with its SKU looked up in the activity's configuration.
    pub fn input(&self) -> Result<super::quota::RechargeInput<'_>> {
        let (sku, counts) = self
            .config
            .skus
            .iter()
            .find(|(s, _)| s.sku == self.request.sku)
            .ok_or_else(|| Error::illegal(format!("sku {} does not exist", self.request.sku)))?;
        Ok(super::quota::RechargeInput {
            request: &self.request,
            activity: &self.config.activity,
            sku,
            counts,
            now: self.now,
            keys: &self.keys,
        })
    }
}

/// A draw to run in one unit of work.
#[derive(Debug, Clone)]
pub struct DrawJob {
    pub config: Arc<ActivityConfig>,
    pub strategy: Arc<AssembledStrategy>,
    pub user_id: String,
    pub now: DateTime,
    pub timestamp_ms: i64,
    pub keys: CalendarKeys,
    /// The store must not start the transaction after this instant (it answers `0006`
    /// instead); once started, it runs to its end and its result is answered however
    /// late, so a committed draw is never hidden from the user.
    pub deadline: Option<Instant>,
    /// Decides, once, between the store starting the transaction and the caller giving
    /// up at the deadline, so the caller can answer `0006` on time while the job waits
    /// in the store's queue, knowing it will never run.
    pub gate: Arc<StartGate>,
    /// The committed seed of a fair activity's current epoch (its `Debug` hides the
    /// seed); `None`: the process's generator.
    pub fair: Option<FairDraw>,
}

impl DrawJob {
    /// What `quota::draw` needs besides the unit of work.
    pub fn input(&self) -> super::quota::DrawInput<'_> {
        super::quota::DrawInput {
            activity: &self.config.activity,
            strategy: &self.strategy,
            user_id: &self.user_id,
            now: self.now,
            timestamp_ms: self.timestamp_ms,
            keys: &self.keys,
            fair: self.fair.as_ref(),
        }
    }
}

/// A race with exactly one winner: the store starting a transaction, or its caller
/// giving up on it.
#[derive(Debug, Default)]
pub struct StartGate(std::sync::atomic::AtomicU8);

impl StartGate {
    const WAITING: u8 = 0;
    const STARTED: u8 = 1;
    const GIVEN_UP: u8 = 2;

    /// The store is about to run the transaction; `false` if the caller gave up first.
    pub fn start(&self) -> bool {
        self.settle(Self::STARTED)
    }

    /// The caller stops waiting; `false` if the transaction has already started (then
    /// its answer must be awaited).
    pub fn give_up(&self) -> bool {
        self.settle(Self::GIVEN_UP)
    }

    fn settle(&self, to: u8) -> bool {
        use std::sync::atomic::Ordering::AcqRel;
        match self.0.compare_exchange(
            Self::WAITING,
            to,
            AcqRel,
            std::sync::atomic::Ordering::Acquire,
        ) {
            Ok(_) => true,
            Err(now) => now == to,
        }
    }
}

/// The rows behind `query_user_activity_account`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRows {
    pub account: Option<ActivityAccount>,
    pub month: Option<PeriodAccount>,
    pub day: Option<PeriodAccount>,
}

/// Storage the activity domain needs.
#[async_trait]
pub trait ActivityRepository: Send + Sync {
    async fn activity_ids(&self) -> Result<Vec<i64>>;
    /// The activity with its SKUs and their counts; `None` when it does not exist.
    async fn activity_config(&self, activity_id: i64) -> Result<Option<ActivityConfig>>;
    async fn activity_of_sku(&self, sku: i64) -> Result<Option<i64>>;
    /// Runs [`super::quota::recharge`] in one transaction.
    async fn recharge(&self, job: RechargeJob) -> Result<RaffleActivityOrder>;
    /// Runs [`super::quota::draw`] in one transaction, answered once it is durable.
    async fn draw(&self, job: DrawJob) -> Result<DrawOutcome>;
    /// Runs [`super::quota::exchange`] in one transaction.
    async fn exchange(
        &self,
        job: RechargeJob,
        timestamp_ms: i64,
    ) -> Result<(RaffleActivityOrder, Task)>;
    /// Runs [`super::quota::deliver_paid_order`] in one transaction.
    async fn deliver_paid_order(
        &self,
        user_id: &str,
        out_business_no: &str,
        keys: &CalendarKeys,
    ) -> Result<bool>;
    async fn account_rows(
        &self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<AccountRows>;
    /// SKUs of an activity as stored now (surplus from the database).
    async fn sku_products(
        &self,
        activity_id: i64,
    ) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>>;
    async fn stages(&self) -> Result<Vec<RaffleActivityStage>>;
    /// Whether the user holds an order of `sku` under `out_business_no`.
    async fn has_order(&self, user_id: &str, sku: i64, out_business_no: &str) -> Result<bool>;
}

/// The answer of a draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrawResult {
    pub award_id: i32,
    pub award_title: String,
    /// `strategy_award.sort`.
    pub award_index: i32,
    pub order_id: String,
    /// The proof of a fair activity's draw.
    pub proof: Option<Proof>,
}

/// `query_user_activity_account`'s six numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountView {
    pub total_count: i64,
    pub total_count_surplus: i64,
    pub day_count: i64,
    pub day_count_surplus: i64,
    pub month_count: i64,
    pub month_count_surplus: i64,
}

impl AccountRows {
    /// Upstream's view: today's and this month's rows, or else the total row's day/month
    /// grants for both count and surplus; zeros without an account.
    pub fn view(&self) -> AccountView {
        let Some(a) = &self.account else {
            return AccountView::default();
        };
        let (day_count, day_count_surplus) = self
            .day
            .as_ref()
            .map_or((a.day_count, a.day_count), |d| (d.count, d.count_surplus));
        let (month_count, month_count_surplus) = self
            .month
            .as_ref()
            .map_or((a.month_count, a.month_count), |m| {
                (m.count, m.count_surplus)
            });
        AccountView {
            total_count: a.total_count,
            total_count_surplus: a.total_count_surplus,
            day_count,
            day_count_surplus,
            month_count,
            month_count_surplus,
        }
    }
}

pub struct ActivityService {
    repo: Arc<dyn ActivityRepository>,
    strategy: Arc<StrategyService>,
    clock: Arc<dyn Clock>,
    notifier: Arc<dyn TaskNotifier>,
    activities: RwLock<HashMap<i64, Arc<ActivityConfig>>>,
    broadcast: Broadcaster,
    fairness: OnceLock<Arc<FairnessService>>,
}

impl ActivityService {
    pub fn new(
        repo: Arc<dyn ActivityRepository>,
        strategy: Arc<StrategyService>,
        clock: Arc<dyn Clock>,
        notifier: Arc<dyn TaskNotifier>,
    ) -> Self {
        Self {
            repo,
            strategy,
            clock,
            notifier,
            activities: RwLock::new(HashMap::new()),
            broadcast: Broadcaster::default(),
            fairness: OnceLock::new(),
        }
    }

    /// Turns on provably fair draws for the activities the service lists (without it,
    /// every draw uses the process's generator).
    pub fn set_fairness(&self, fairness: Arc<FairnessService>) {
        if self.fairness.set(fairness).is_err() {
            tracing::warn!("fairness service set twice; the first is kept");
        }
    }

    pub fn fairness(&self) -> Result<&Arc<FairnessService>> {
        self.fairness
            .get()
            .ok_or_else(|| Error::config("fair draws are not configured on this node"))
    }

    /// `admin/fairness/enable`: the activity's draws become provably fair from the next
    /// one; the other nodes are told.
    pub async fn enable_fairness(&self, activity_id: i64) -> Result<EpochView> {
        self.config(activity_id).await?;
        let view = self.fairness()?.enable(activity_id).await?;
        self.broadcast.changed(Changed::Activity(activity_id));
        Ok(view)
    }

    /// `admin/fairness/rotate`.
    pub async fn rotate_fairness(&self, activity_id: i64) -> Result<(RevealedEpoch, EpochView)> {
        self.config(activity_id).await?;
        self.fairness()?.rotate(activity_id).await
    }

    /// Where armory runs are announced to the other nodes.
    pub fn set_broadcast(&self, broadcast: Arc<dyn ConfigBroadcast>) {
        self.broadcast.set(broadcast);
    }

    fn cached(&self, activity_id: i64) -> Option<Arc<ActivityConfig>> {
        self.activities
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&activity_id)
            .cloned()
    }

    /// Loads the activity, its SKUs and counts into the process.
    async fn load(&self, activity_id: i64) -> Result<Arc<ActivityConfig>> {
        let config = self
            .repo
            .activity_config(activity_id)
            .await?
            .ok_or_else(|| Error::illegal(format!("activity {activity_id} does not exist")))?;
        let config = Arc::new(config);
        self.activities
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(activity_id, config.clone());
        Ok(config)
    }

    async fn config(&self, activity_id: i64) -> Result<Arc<ActivityConfig>> {
        match self.cached(activity_id) {
            Some(c) => Ok(c),
            None => self.load(activity_id).await,
        }
    }

    /// `activity/armory`: reloads here ([`Self::reload`]) and tells the other nodes to.
    pub async fn armory(&self, activity_id: i64) -> Result<()> {
        let loaded = self.reload(activity_id).await;
        self.broadcast.changed(Changed::Activity(activity_id));
        loaded
    }

    /// Whether the activity is loaded here and its strategy assembled (draws can run
    /// without an armory).
    pub fn is_assembled(&self, activity_id: i64) -> bool {
        self.cached(activity_id)
            .is_some_and(|c| self.strategy.catalog().get(c.activity.strategy_id).is_ok())
    }

    /// Reloads the activity and its SKUs, then assembles its strategy.
    pub async fn reload(&self, activity_id: i64) -> Result<()> {
        if let Some(fairness) = self.fairness.get() {
            fairness.refresh().await?;
        }
        let config = self.load(activity_id).await?;
        self.strategy.reload(config.activity.strategy_id).await?;
        tracing::info!(activity_id, skus = config.skus.len(), "activity assembled");
        Ok(())
    }

    /// Drops every cached activity and loads them again (after missed announcements).
    pub async fn reload_all(&self) -> Result<()> {
        self.activities
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.armory_all().await
    }

    /// Loads every activity at start-up (strategies are assembled by their own service).
    pub async fn armory_all(&self) -> Result<()> {
        if let Some(fairness) = self.fairness.get() {
            fairness.refresh().await?;
        }
        for id in self.repo.activity_ids().await? {
            if let Err(e) = self.load(id).await {
                tracing::error!(activity_id = id, error = %e, "activity could not be loaded");
            }
        }
        Ok(())
    }

    fn now(&self) -> (DateTime, CalendarKeys, i64) {
        let now = self.clock.now();
        (
            now.datetime(),
            CalendarKeys::of(&now),
            now.timestamp().as_millisecond(),
        )
    }

    async fn recharge_job(&self, request: SkuRecharge) -> Result<RechargeJob> {
        request.validate()?;
        let activity_id = self
            .repo
            .activity_of_sku(request.sku)
            .await?
            .ok_or_else(|| Error::illegal(format!("sku {} does not exist", request.sku)))?;
        let mut config = self.config(activity_id).await?;
        if !config.skus.iter().any(|(s, _)| s.sku == request.sku) {
            // Added since the activity was loaded.
            config = self.load(activity_id).await?;
        }
        let (now, keys, _) = self.now();
        Ok(RechargeJob {
            request,
            config,
            now,
            keys,
        })
    }

    /// A SKU recharge order; returns the order (for a credit trade possibly an earlier
    /// unpaid one).
    pub async fn recharge(&self, request: SkuRecharge) -> Result<RaffleActivityOrder> {
        let job = self.recharge_job(request).await?;
        self.repo.recharge(job).await
    }

    /// `credit_pay_exchange_sku`: a `wait_pay` order paid with credits in one transaction;
    /// the quota follows when `credit_adjust_success` is consumed.
    pub async fn credit_pay_exchange(
        &self,
        user_id: String,
        sku: i64,
    ) -> Result<RaffleActivityOrder> {
        let out_business_no = super::random_digits(&mut rand::rng(), 12);
        let job = self
            .recharge_job(SkuRecharge {
                user_id,
                sku,
                out_business_no,
                trade_type: OrderTradeType::CreditPayTrade,
            })
            .await?;
        let (_, _, ts) = self.now();
        let (order, task) = self.repo.exchange(job, ts).await?;
        self.notifier.notify(&task);
        Ok(order)
    }

    /// The `credit_adjust_success` consumer: completes a paid order and grants its quota,
    /// once. Whether anything was delivered.
    pub async fn deliver_paid_order(&self, user_id: &str, out_business_no: &str) -> Result<bool> {
        let (_, keys, _) = self.now();
        self.repo
            .deliver_paid_order(user_id, out_business_no, &keys)
            .await
    }

    /// A no-pay recharge (`rebate_no_pay_trade`), the door for external actions.
    pub async fn recharge_no_pay(
        &self,
        user_id: String,
        sku: i64,
        out_business_no: String,
    ) -> Result<RaffleActivityOrder> {
        let result = self
            .recharge(SkuRecharge {
                user_id: user_id.clone(),
                sku,
                out_business_no: out_business_no.clone(),
                trade_type: OrderTradeType::RebateNoPayTrade,
            })
            .await;
        match result {
            // `0003` means "granted before" only if the order is this user's and SKU's;
            // a key taken by someone else's recharge must not swallow the grant.
            Err(e) if e.code() == ResponseCode::IndexDup => {
                if self.repo.has_order(&user_id, sku, &out_business_no).await? {
                    Err(e)
                } else {
                    Err(Error::illegal(format!(
                        "outBusinessNo {out_business_no} is held by another order; sku {sku} not granted to {user_id}"
                    )))
                }
            }
            other => other,
        }
    }

    /// `activity/draw`, without a deadline.
    pub async fn draw(&self, user_id: String, activity_id: i64) -> Result<DrawResult> {
        let job = self.prepare_draw(user_id, activity_id, None, None).await?;
        self.commit_draw(job).await
    }

    /// A draw that answers by `deadline` (the guard's `draw_timeout`). Finding the
    /// activity and strategy is abandoned at the deadline, and so is the transaction if
    /// the store has not started it (the store refuses a job it reaches too late); once
    /// started, its answer is awaited however late. So `0006` always means nothing was
    /// taken, and a draw that committed is always reported. `at_deadline` resolves at
    /// `deadline`: the caller's timer (the domain has none).
    pub async fn draw_by(
        &self,
        user_id: String,
        activity_id: i64,
        client_seed: Option<String>,
        deadline: Instant,
        at_deadline: impl Future<Output = ()>,
    ) -> Result<DrawResult> {
        use futures_util::future::{Either, select};
        let mut at_deadline = std::pin::pin!(at_deadline);
        let prepare =
            std::pin::pin!(self.prepare_draw(user_id, activity_id, client_seed, Some(deadline)));
        let job = match select(prepare, at_deadline.as_mut()).await {
            Either::Left((job, _)) => job?,
            Either::Right(((), _)) => {
                return Err(Error::biz(
                    ResponseCode::Hystrix,
                    "the draw could not be prepared before its deadline; nothing was taken",
                ));
            }
        };
        let gate = job.gate.clone();
        let commit = std::pin::pin!(self.commit_draw(job));
        match select(commit, at_deadline).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), commit)) => {
                if gate.give_up() {
                    Err(Error::biz(
                        ResponseCode::Hystrix,
                        "the store did not start the draw before its deadline; nothing was taken",
                    ))
                } else {
                    commit.await
                }
            }
        }
    }

    /// The read-only half of a draw: validates and finds the activity and its strategy
    /// (from the process, or loaded). Nothing is written, so a caller may abandon it.
    pub async fn prepare_draw(
        &self,
        user_id: String,
        activity_id: i64,
        client_seed: Option<String>,
        deadline: Option<Instant>,
    ) -> Result<DrawJob> {
        if user_id.trim().is_empty() {
            return Err(Error::illegal("userId is blank"));
        }
        let config = self.config(activity_id).await?;
        let strategy = self.strategy.catalog().get(config.activity.strategy_id)?;
        let fair = match self.fairness.get() {
            Some(fairness) => {
                fairness
                    .draw_source(activity_id, client_seed.as_deref())
                    .await?
            }
            None => {
                crate::strategy::fair::validate_client_seed(client_seed.as_deref().unwrap_or(""))?;
                None
            }
        };
        let (now, keys, timestamp_ms) = self.now();
        Ok(DrawJob {
            config,
            strategy,
            user_id,
            now,
            timestamp_ms,
            keys,
            deadline,
            gate: Arc::new(StartGate::default()),
            fair,
        })
    }

    /// The transaction of a draw. Callers must wait for its answer: once the store has
    /// started it, it may commit.
    pub async fn commit_draw(&self, job: DrawJob) -> Result<DrawResult> {
        let outcome = self.repo.draw(job).await?;
        // A prize delivered in the draw's own transaction leaves nothing to send.
        if outcome.task.state == crate::task::state::CREATE {
            self.notifier.notify(&outcome.task);
        }
        Ok(DrawResult {
            award_id: outcome.award.award_id,
            award_title: outcome.award.award_title,
            award_index: outcome.award.sort,
            order_id: outcome.order_id,
            proof: outcome.proof,
        })
    }

    /// `query_user_activity_account`.
    pub async fn account(&self, user_id: &str, activity_id: i64) -> Result<AccountView> {
        let (_, keys, _) = self.now();
        Ok(self
            .repo
            .account_rows(user_id, activity_id, &keys)
            .await?
            .view())
    }

    /// `query_sku_product_list_by_activity_id`.
    pub async fn sku_products(
        &self,
        activity_id: i64,
    ) -> Result<Vec<(RaffleActivitySku, RaffleActivityCount)>> {
        self.repo.sku_products(activity_id).await
    }

    /// `query_stage_activity_id`: the first active stage row of the channel and source.
    pub async fn stage_activity_id(&self, channel: &str, source: &str) -> Result<Option<i64>> {
        Ok(self
            .repo
            .stages()
            .await?
            .into_iter()
            .find(|s| s.channel == channel && s.source == source && s.state == "active")
            .map(|s| s.activity_id))
    }
}

#[cfg(test)]
mod tests {
    use super::StartGate;
    use std::sync::Arc;

    #[test]
    fn the_store_and_the_caller_never_both_win_the_start() {
        for _ in 0..200 {
            let gate = Arc::new(StartGate::default());
            let (a, b) = (gate.clone(), gate.clone());
            let store = std::thread::spawn(move || a.start());
            let caller = std::thread::spawn(move || b.give_up());
            let (started, gave_up) = (store.join().unwrap(), caller.join().unwrap());
            assert!(started != gave_up, "exactly one wins");
            assert_eq!(gate.start(), started, "the outcome is settled for good");
        }
    }
}
