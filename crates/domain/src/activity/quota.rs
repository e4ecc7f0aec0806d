//! Quota: SKU recharge orders grant draws, partake spends one, and the draw runs the
//! whole of it in one unit of work.
//!
//! These functions hold the rules; the caller owns the transaction and passes it as an
//! [`DrawTx`] or a [`RechargeTx`]. Every check that guards a counter is a guarded write (`… WHERE
//! surplus > 0`) whose row count decides, so no counter can go below zero under
//! contention, and any error rolls the whole unit back: a failed draw consumes nothing.

use super::{
    ActivityAccount, PeriodAccount, RaffleActivity, RaffleActivityCount, RaffleActivityOrder,
    RaffleActivitySku, UserRaffleOrder, order_state, raffle_state, random_digits,
};
use crate::award::{
    self, AwardCatalogTx, AwardRecordTx, AwardTx, SendAwardMessage, UserAwardRecord,
};
use crate::credit::{CreditGrantTx, CreditTx, Trade, TradeName, TradeType};
use crate::error::{Error, ResponseCode, Result};
use crate::id::{Inserted, Redraw};
use crate::strategy::fair::{FairDraw, Proof};
use crate::strategy::{
    AssembledStrategy, DrawCounts, RaffleAward, RaffleFactor, Randomness, StockStore,
    perform_raffle, raffle,
};
use crate::task::{EventMessage, Task, TaskTx, state as task_state, topic};
use crate::time::CalendarKeys;
use jiff::civil::DateTime;
use rand::Rng;
use rust_decimal::Decimal;

/// How a recharge is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderTradeType {
    /// Granted by an action (sign-in, sharing, an external purchase): quota at once.
    RebateNoPayTrade,
    /// Bought with credits: a `wait_pay` order, quota once the credits are paid.
    CreditPayTrade,
}

/// The input of a recharge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuRecharge {
    pub user_id: String,
    pub sku: i64,
    pub out_business_no: String,
    pub trade_type: OrderTradeType,
}

impl SkuRecharge {
    /// Blank or missing fields → `0002` naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.user_id.trim().is_empty() {
            return Err(Error::illegal("userId is blank"));
        }
        if self.out_business_no.trim().is_empty() {
            return Err(Error::illegal("outBusinessNo is blank"));
        }
        if self.user_id.chars().count() > 128 {
            return Err(Error::illegal("userId is longer than 128 characters"));
        }
        if self.out_business_no.chars().count() > 64 {
            return Err(Error::illegal("outBusinessNo is longer than 64 characters"));
        }
        Ok(())
    }
}

/// The quota rows of one user in one activity as a draw reads them: the account (locked
/// for the rest of the transaction) with this month's and today's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuotaRows {
    pub account: Option<ActivityAccount>,
    pub month: Option<PeriodAccount>,
    pub day: Option<PeriodAccount>,
}

impl QuotaRows {
    /// Draws used so far, in total and today (zeros without rows).
    pub fn used(&self) -> DrawCounts {
        DrawCounts {
            total_used: self.account.as_ref().map_or(0, ActivityAccount::used),
            today_used: self.day.as_ref().map_or(0, PeriodAccount::used),
        }
    }
}

/// See [`DrawTx::deduct_draw`].
#[derive(Debug, Clone, Copy)]
pub struct DrawDeduction<'a> {
    pub user_id: &'a str,
    pub activity_id: i64,
    /// The month row to take the draw from; `None` when it was just created.
    pub month: Option<&'a str>,
    pub day: Option<&'a str>,
    pub month_left: i64,
    pub day_left: i64,
}

impl DrawDeduction<'_> {
    /// Whether `rows` (read under the account's lock) leave a draw to take from every row
    /// this deduction names: what the guarded writes will check, for a store that decides
    /// before it writes.
    pub fn fits(&self, rows: &QuotaRows) -> bool {
        rows.account
            .as_ref()
            .is_some_and(|a| a.total_count_surplus > 0)
            && (self.month.is_none() || rows.month.as_ref().is_some_and(|m| m.count_surplus > 0))
            && (self.day.is_none() || rows.day.as_ref().is_some_and(|d| d.count_surplus > 0))
    }
}

/// What a draw reads and writes on one user's store, inside one transaction (award stock
/// through [`StockStore`]). An insert of a row with a random id reports a taken id
/// ([`Inserted::IdTaken`], nothing written) and the caller draws another.
#[allow(async_fn_in_trait)]
pub trait DrawTx: StockStore {
    /// The account, locked for the rest of the transaction, with this month's and
    /// today's rows.
    async fn quota_rows(
        &mut self,
        user_id: &str,
        activity_id: i64,
        keys: &CalendarKeys,
    ) -> Result<QuotaRows>;
    /// One draw: the total row − 1 with its mirrors set to `month_left`/`day_left`, and
    /// − 1 on the month and day rows named (`None`: the row was just created with the
    /// draw already taken), each guarded by `surplus > 0`; whether every row changed.
    async fn deduct_draw(&mut self, d: DrawDeduction<'_>) -> Result<bool>;
    async fn insert_month(&mut self, row: &PeriodAccount) -> Result<()>;
    async fn insert_day(&mut self, row: &PeriodAccount) -> Result<()>;
    /// The newest `create` raffle order of the user in the activity.
    async fn unused_raffle_order(
        &mut self,
        user_id: &str,
        activity_id: i64,
    ) -> Result<Option<UserRaffleOrder>>;
    async fn insert_raffle_order(&mut self, order: &UserRaffleOrder) -> Result<Inserted>;
    /// `create → used`, guarded; whether a row changed.
    async fn use_raffle_order(&mut self, user_id: &str, order_id: &str) -> Result<bool>;
}

/// What a recharge and the delivery of a paid order read and write on one user's store,
/// inside one transaction.
#[allow(async_fn_in_trait)]
pub trait RechargeTx {
    /// Inserts a recharge order; a taken `out_business_no` → `0003`.
    async fn insert_activity_order(&mut self, order: &RaffleActivityOrder) -> Result<Inserted>;
    /// `stock_count_surplus − 1 WHERE stock_count_surplus > 0`; whether a unit was taken.
    async fn take_sku_stock(&mut self, sku: i64) -> Result<bool>;
    /// Adds a SKU's counts to the user's account (creating it), and to today's and this
    /// month's rows when they exist.
    async fn add_quota(
        &mut self,
        user_id: &str,
        activity_id: i64,
        counts: &RaffleActivityCount,
        keys: &CalendarKeys,
    ) -> Result<()>;
    /// An unpaid order of the user for the SKU placed at or after `since`.
    async fn unpaid_order(
        &mut self,
        user_id: &str,
        sku: i64,
        since: DateTime,
    ) -> Result<Option<RaffleActivityOrder>>;
    /// The recharge order of a user with an `out_business_no`.
    async fn activity_order_by_business_no(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<Option<RaffleActivityOrder>>;
    /// `wait_pay → completed`, guarded; whether a row changed.
    async fn complete_activity_order(
        &mut self,
        user_id: &str,
        out_business_no: &str,
    ) -> Result<bool>;
}

/// Everything a recharge needs besides the transaction.
pub struct RechargeInput<'a> {
    pub request: &'a SkuRecharge,
    pub activity: &'a RaffleActivity,
    pub sku: &'a RaffleActivitySku,
    pub counts: &'a RaffleActivityCount,
    pub now: DateTime,
    pub keys: &'a CalendarKeys,
}

/// A SKU recharge: `activity_base_action` and `activity_sku_stock_action`, then the
/// order, and for a no-pay trade the quota, all in the caller's transaction.
pub async fn recharge<T: RechargeTx + CreditTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    input: RechargeInput<'_>,
    rng: &mut R,
) -> Result<RaffleActivityOrder> {
    let RechargeInput {
        request,
        activity,
        sku,
        counts,
        now,
        keys,
    } = input;
    request.validate()?;
    let credit = request.trade_type == OrderTradeType::CreditPayTrade;
    if credit {
        // Repeated "exchange" clicks reuse the pending order of the last month.
        let since = now
            .checked_sub(jiff::Span::new().months(1))
            .map_err(Error::internal)?;
        if let Some(order) = tx.unpaid_order(&request.user_id, sku.sku, since).await? {
            return Ok(order);
        }
    }
    activity.check_open(now)?;
    if credit {
        let available = tx.credit_available(&request.user_id).await?;
        if available < sku.product_amount {
            return Err(Error::biz(
                ResponseCode::UserCreditAccountNoAvailableAmount,
                format!(
                    "sku {} costs {} credits, {} available",
                    sku.sku, sku.product_amount, available
                ),
            ));
        }
    }
    let mut order = RaffleActivityOrder {
        user_id: request.user_id.clone(),
        sku: sku.sku,
        activity_id: activity.activity_id,
        activity_name: activity.activity_name.clone(),
        strategy_id: activity.strategy_id,
        order_id: random_digits(rng, 12),
        order_time: now,
        total_count: counts.total_count,
        day_count: counts.day_count,
        month_count: counts.month_count,
        pay_amount: if credit {
            sku.product_amount
        } else {
            Decimal::ZERO
        },
        state: if credit {
            order_state::WAIT_PAY
        } else {
            order_state::COMPLETED
        }
        .to_owned(),
        out_business_no: request.out_business_no.clone(),
    };
    // The idempotency key first: a repeat fails before any stock is touched.
    let mut redraw = Redraw::new(12);
    while tx.insert_activity_order(&order).await? == Inserted::IdTaken {
        order.order_id = redraw.next(rng)?;
    }
    if !tx.take_sku_stock(sku.sku).await? {
        return Err(Error::biz(
            ResponseCode::ActivitySkuStockError,
            format!("sku {} is sold out", sku.sku),
        ));
    }
    if !credit {
        tx.add_quota(&request.user_id, activity.activity_id, counts, keys)
            .await?;
    }
    Ok(order)
}

/// Partake: reuse an unused raffle order, or deduct one draw from the total, this month
/// and today (creating the month and day rows from the totals) and create one.
pub async fn partake<T: DrawTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    activity: &RaffleActivity,
    user_id: &str,
    now: DateTime,
    keys: &CalendarKeys,
    rng: &mut R,
) -> Result<Partaken> {
    activity.check_open(now)?;
    let aid = activity.activity_id;
    if let Some(order) = tx.unused_raffle_order(user_id, aid).await? {
        return Ok(Partaken {
            order,
            reused: true,
            used: None,
        });
    }
    let quota_error = |code, what: &str| {
        Error::biz(
            code,
            format!("user {user_id} has no {what} draws left in activity {aid}"),
        )
    };
    let QuotaRows {
        account,
        month,
        day,
    } = tx.quota_rows(user_id, aid, keys).await?;
    let account = account
        .filter(|a| a.total_count_surplus > 0)
        .ok_or_else(|| quota_error(ResponseCode::AccountQuotaError, "total"))?;
    if month.as_ref().is_some_and(|m| m.count_surplus <= 0) {
        return Err(quota_error(ResponseCode::AccountMonthQuotaError, "monthly"));
    }
    if day.as_ref().is_some_and(|d| d.count_surplus <= 0) {
        return Err(quota_error(ResponseCode::AccountDayQuotaError, "daily"));
    }
    let total_used = account.used() + 1;
    // A missing month or day row is created from the totals with this draw taken.
    let month_left = match &month {
        Some(m) => m.count_surplus - 1,
        None => {
            let row = PeriodAccount {
                user_id: user_id.to_owned(),
                activity_id: aid,
                period: keys.month.clone(),
                count: account.month_count,
                count_surplus: account.month_count - 1,
            };
            if row.count_surplus < 0 {
                return Err(quota_error(ResponseCode::AccountMonthQuotaError, "monthly"));
            }
            tx.insert_month(&row).await?;
            row.count_surplus
        }
    };
    let (day_left, today_used) = match &day {
        Some(d) => (d.count_surplus - 1, d.used() + 1),
        None => {
            let row = PeriodAccount {
                user_id: user_id.to_owned(),
                activity_id: aid,
                period: keys.day.clone(),
                count: account.day_count,
                count_surplus: account.day_count - 1,
            };
            if row.count_surplus < 0 {
                return Err(quota_error(ResponseCode::AccountDayQuotaError, "daily"));
            }
            tx.insert_day(&row).await?;
            (row.count_surplus, row.used())
        }
    };
    // The rows were read under the account's lock, so the guards hold unless a writer
    // that skips that lock got in between.
    let deducted = tx
        .deduct_draw(DrawDeduction {
            user_id,
            activity_id: aid,
            month: month.is_some().then_some(keys.month.as_str()),
            day: day.is_some().then_some(keys.day.as_str()),
            month_left,
            day_left,
        })
        .await?;
    if !deducted {
        return Err(quota_error(ResponseCode::AccountQuotaError, "total"));
    }
    let mut order = UserRaffleOrder {
        user_id: user_id.to_owned(),
        activity_id: aid,
        activity_name: activity.activity_name.clone(),
        strategy_id: activity.strategy_id,
        order_id: random_digits(rng, 12),
        order_time: now,
        order_state: raffle_state::USED.to_owned(),
    };
    let mut redraw = Redraw::new(12);
    while tx.insert_raffle_order(&order).await? == Inserted::IdTaken {
        order.order_id = redraw.next(rng)?;
    }
    Ok(Partaken {
        order,
        reused: false,
        used: Some(DrawCounts {
            total_used,
            today_used,
        }),
    })
}

/// The raffle order a draw uses, and the user's draws after taking part (known without
/// reading back, except for a reused order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partaken {
    pub order: UserRaffleOrder,
    pub reused: bool,
    pub used: Option<DrawCounts>,
}

/// What a committed draw produced.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawOutcome {
    pub award: RaffleAward,
    pub order_id: String,
    pub task: Task,
    /// The proof of a fair activity's draw (also kept with the award record).
    pub proof: Option<Proof>,
}

/// Everything a draw needs besides the transaction.
pub struct DrawInput<'a> {
    pub activity: &'a RaffleActivity,
    pub strategy: &'a AssembledStrategy,
    pub user_id: &'a str,
    pub now: DateTime,
    pub timestamp_ms: i64,
    pub keys: &'a CalendarKeys,
    /// The committed seed of a fair activity's current epoch; `None`: the generator.
    pub fair: Option<&'a FairDraw>,
}

/// The draw in one unit of work: partake, the strategy's chain and tree (award stock
/// taken here), the raffle order `used`, the award record and its `send_award` task.
pub async fn draw<T: DrawTx + AwardRecordTx + TaskTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    input: DrawInput<'_>,
    rng: &mut R,
) -> Result<DrawOutcome> {
    let drawn = decide(tx, input, rng).await?;
    drawn.with_task(tx, rng, None).await
}

/// A draw that also delivers its prize in the same unit of work when the prize is credits
/// (`user_credit_random`), for a store whose delivery runs in this process: there a
/// separate delivery costs two more transactions on the same writer. The rows are those a
/// delivered `send_award` message leaves: the record `completed`, the credits and their
/// order, and the task written `completed` with the delivery's note. Any other prize, or a
/// credit award whose configuration is unusable, is left to the outbox as by [`draw`].
pub async fn draw_and_credit<T, R>(
    tx: &mut T,
    input: DrawInput<'_>,
    rng: &mut R,
) -> Result<DrawOutcome>
where
    T: DrawTx + AwardRecordTx + TaskTx + AwardTx + AwardCatalogTx + CreditGrantTx + ?Sized,
    R: Rng + ?Sized,
{
    let drawn = decide(tx, input, rng).await?;
    let credit = tx
        .award(drawn.message.data.award_id)
        .await?
        .filter(|a| a.award_key == award::key::USER_CREDIT_RANDOM);
    let note = match credit {
        Some(award) => {
            match award::deliver_credit(tx, &drawn.message.data, &award.award_config, rng).await {
                Ok(Some(amount)) => Some(format!("credited {amount}")),
                Ok(None) => Some("delivered before".to_owned()),
                // Refused before any write: the outbox's delivery notes it on the record.
                Err(e) if e.code() == ResponseCode::AwardConfigError => None,
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    drawn.with_task(tx, rng, note).await
}

/// A draw decided and recorded, before its task is written.
struct Drawn {
    award: RaffleAward,
    order_id: String,
    proof: Option<Proof>,
    message: EventMessage<SendAwardMessage>,
}

impl Drawn {
    /// Writes the `send_award` task: `create` for the outbox, or `completed` with the
    /// delivery's note when the prize was delivered in this unit of work.
    async fn with_task<T: TaskTx + ?Sized, R: Rng + ?Sized>(
        self,
        tx: &mut T,
        rng: &mut R,
        delivered: Option<String>,
    ) -> Result<DrawOutcome> {
        let user_id = self.message.data.user_id.clone();
        let mut task = Task::new(&user_id, topic::SEND_AWARD, self.message)?;
        if let Some(note) = delivered {
            task.state = task_state::COMPLETED.to_owned();
            task.note = Some(note);
        }
        crate::task::insert(tx, &mut task, rng).await?;
        Ok(DrawOutcome {
            award: self.award,
            order_id: self.order_id,
            task,
            proof: self.proof,
        })
    }
}

async fn decide<T: DrawTx + AwardRecordTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    input: DrawInput<'_>,
    rng: &mut R,
) -> Result<Drawn> {
    let DrawInput {
        activity,
        strategy,
        user_id,
        now,
        timestamp_ms,
        keys,
        fair,
    } = input;
    if user_id.trim().is_empty() {
        return Err(Error::illegal("userId is blank"));
    }
    let Partaken {
        order,
        reused,
        used,
    } = partake(tx, activity, user_id, now, keys, rng).await?;
    if reused && !tx.use_raffle_order(user_id, &order.order_id).await? {
        return Err(Error::biz(
            ResponseCode::ActivityOrderError,
            format!("raffle order {} was already used", order.order_id),
        ));
    }
    let aid = activity.activity_id;
    // A reused order's draw was counted when the order was made.
    let DrawCounts {
        total_used,
        today_used,
    } = match used {
        Some(counts) => counts,
        None => tx.quota_rows(user_id, aid, keys).await?.used(),
    };
    let factor = RaffleFactor {
        user_id: user_id.to_owned(),
        total_used,
        today_used,
        now,
    };
    let (award, trace) = match fair {
        Some(fair) => raffle(strategy, &factor, tx, Randomness::<R>::Fair(fair)).await?,
        None => raffle(strategy, &factor, tx, Randomness::Generator(&mut *rng)).await?,
    };
    let proof = match (fair, trace) {
        (Some(fair), Some(trace)) => Some(Proof {
            order_id: order.order_id.clone(),
            epoch: fair.epoch,
            commitment: fair.commitment.clone(),
            draw_no: trace.draw_no,
            client_seed: fair.client_seed.clone(),
            table: trace.table,
            weights: trace.weights,
            sampled_award_id: trace.sampled_award_id,
            award_id: award.award_id,
            reason: trace.reason.to_owned(),
        }),
        _ => None,
    };
    let fair_proof = proof.as_ref().map(Proof::to_json).transpose()?;

    tx.insert_award_record(&UserAwardRecord {
        user_id: user_id.to_owned(),
        activity_id: aid,
        strategy_id: strategy.strategy_id(),
        order_id: order.order_id.clone(),
        award_id: award.award_id,
        award_title: award.award_title.clone(),
        award_time: now,
        award_state: crate::award::state::CREATE.to_owned(),
        fair_proof,
    })
    .await?;
    let message = EventMessage {
        data: SendAwardMessage {
            award_config: award.award_config.clone(),
            award_id: award.award_id,
            award_title: award.award_title.clone(),
            order_id: order.order_id.clone(),
            user_id: user_id.to_owned(),
        },
        id: random_digits(rng, 11),
        timestamp: timestamp_ms,
    };
    Ok(Drawn {
        award,
        order_id: order.order_id,
        proof,
        message,
    })
}

/// A draw of the strategy alone (`random_raffle`): its chain and tree, with the user's
/// draws as the strategy's activity counts them (read under the account's lock, as a
/// draw does), award stock taken in the caller's unit of work; no quota, order or record.
pub async fn strategy_raffle<T: DrawTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    strategy: &AssembledStrategy,
    user_id: &str,
    now: DateTime,
    keys: &CalendarKeys,
    rng: &mut R,
) -> Result<RaffleAward> {
    let DrawCounts {
        total_used,
        today_used,
    } = match strategy.activity_id {
        Some(activity_id) => tx.quota_rows(user_id, activity_id, keys).await?.used(),
        None => DrawCounts::default(),
    };
    let factor = RaffleFactor {
        user_id: user_id.to_owned(),
        total_used,
        today_used,
        now,
    };
    perform_raffle(strategy, &factor, tx, rng).await
}

/// Paying credits for a SKU in one unit of work: the `wait_pay` order (created, or the
/// user's unpaid one reused) and the reverse credit trade that pays it, with its
/// `credit_adjust_success` task. Not enough credits rolls back the order and its stock,
/// so nobody is left with an order they could not pay for.
pub async fn exchange<T: RechargeTx + CreditTx + TaskTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    input: RechargeInput<'_>,
    timestamp_ms: i64,
    rng: &mut R,
) -> Result<(RaffleActivityOrder, Task)> {
    let order = recharge(tx, input, rng).await?;
    let trade = Trade {
        user_id: order.user_id.clone(),
        trade_name: TradeName::ConvertSku,
        trade_type: TradeType::Reverse,
        amount: -order.pay_amount,
        out_business_no: order.out_business_no.clone(),
    };
    let (_, task) = crate::credit::adjust(tx, &trade, timestamp_ms, rng).await?;
    Ok((order, task))
}

/// `credit_adjust_success` delivery: the paid order `wait_pay → completed` and its quota,
/// once. `Ok(false)` when there is no such order (a credit trade unrelated to a SKU) or
/// it was delivered before.
pub async fn deliver_paid_order<T: RechargeTx + ?Sized>(
    tx: &mut T,
    user_id: &str,
    out_business_no: &str,
    keys: &CalendarKeys,
) -> Result<bool> {
    let Some(order) = tx
        .activity_order_by_business_no(user_id, out_business_no)
        .await?
    else {
        return Ok(false);
    };
    if !tx.complete_activity_order(user_id, out_business_no).await? {
        return Ok(false);
    }
    let counts = RaffleActivityCount {
        activity_count_id: 0,
        total_count: order.total_count,
        day_count: order.day_count,
        month_count: order.month_count,
    };
    tx.add_quota(user_id, order.activity_id, &counts, keys)
        .await?;
    Ok(true)
}
