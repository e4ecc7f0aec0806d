//! The award domain: what an award is and how it is delivered.

/// A row of `award`: `award_key` picks the distributor, `award_config` its default config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    pub award_id: i32,
    pub award_key: String,
    pub award_config: String,
    pub award_desc: String,
}

use jiff::civil::DateTime;
use serde::Serialize;

/// `user_award_record.award_state` values.
pub mod state {
    pub const CREATE: &str = "create";
    pub const COMPLETED: &str = "completed";
}

/// A won award waiting for (or after) delivery (`user_award_record`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAwardRecord {
    pub user_id: String,
    pub activity_id: i64,
    pub strategy_id: i64,
    /// The raffle order's id: one award per draw.
    pub order_id: String,
    pub award_id: i32,
    pub award_title: String,
    pub award_time: DateTime,
    pub award_state: String,
    /// The proof of a fair draw, as JSON (`strategy::fair::Proof`); `None` otherwise.
    pub fair_proof: Option<String>,
}

/// `send_award` payload (fields in fastjson's alphabetical order; `None` omitted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAwardMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub award_config: Option<String>,
    pub award_id: i32,
    pub award_title: String,
    pub order_id: String,
    pub user_id: String,
}

use crate::credit::{CreditGrantTx, CreditOrder, TradeName, TradeType, to_cents};
use crate::error::{Error, ResponseCode, Result};
use rand::Rng;
use rust_decimal::Decimal;
use std::sync::Arc;

/// The award record a draw writes, inside its unit of work on the user's store.
#[allow(async_fn_in_trait)]
pub trait AwardRecordTx {
    async fn insert_award_record(&mut self, record: &UserAwardRecord) -> Result<()>;
}

/// What delivering a prize reads and writes on the user's store, inside one transaction.
#[allow(async_fn_in_trait)]
pub trait AwardTx {
    /// The record's state, if the record exists.
    async fn award_state(&mut self, user_id: &str, order_id: &str) -> Result<Option<String>>;
    /// `create → completed`, guarded; whether a row changed.
    async fn complete_award(&mut self, user_id: &str, order_id: &str) -> Result<bool>;
}

/// The award table read inside a unit of work, by a store that delivers prizes in the
/// draw's own transaction.
#[allow(async_fn_in_trait)]
pub trait AwardCatalogTx {
    async fn award(&mut self, award_id: i32) -> Result<Option<Award>>;
}

/// Award keys with a distributor.
pub mod key {
    pub const USER_CREDIT_RANDOM: &str = "user_credit_random";
    pub const OPENAI_USE_COUNT: &str = "openai_use_count";
}

/// A credit range `min,max` (e.g. `1,100` or the blacklist's `0.01,1`).
pub fn parse_range(config: &str) -> Result<(Decimal, Decimal)> {
    let bad = || {
        Error::biz(
            ResponseCode::AwardConfigError,
            format!("award config {config:?} is not a range like 1,100"),
        )
    };
    let (min, max) = config.split_once(',').ok_or_else(bad)?;
    let min: Decimal = min.trim().parse().map_err(|_| bad())?;
    let max: Decimal = max.trim().parse().map_err(|_| bad())?;
    if min < Decimal::ZERO || max < min {
        return Err(bad());
    }
    Ok((min, max))
}

/// `min + random × (max − min)`, rounded half-up to 3 significant digits (upstream's
/// `MathContext(3)`), then to the account's two decimal places.
pub fn random_credit<R: Rng + ?Sized>(min: Decimal, max: Decimal, rng: &mut R) -> Decimal {
    if min == max {
        return to_cents(min);
    }
    let r = Decimal::new(rng.random_range(0..1_000_000_000i64), 9);
    let raw = min + r * (max - min);
    let three = raw
        .round_sf_with_strategy(3, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .unwrap_or(raw);
    to_cents(three)
}

/// Credits a `user_credit_random` prize in the caller's transaction: the account, a
/// forward credit order keyed by the award's order id, and the record `completed`.
/// Returns `None` when the record was delivered before (a redelivered message).
pub async fn deliver_credit<T: AwardTx + CreditGrantTx + ?Sized, R: Rng + ?Sized>(
    tx: &mut T,
    message: &SendAwardMessage,
    default_config: &str,
    rng: &mut R,
) -> Result<Option<Decimal>> {
    let config = message
        .award_config
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or(default_config);
    let (min, max) = parse_range(config)?;
    let amount = random_credit(min, max, rng);
    // The guarded transition decides: a record delivered before changes nothing.
    if !tx
        .complete_award(&message.user_id, &message.order_id)
        .await?
    {
        return match tx.award_state(&message.user_id, &message.order_id).await? {
            Some(_) => Ok(None),
            None => Err(Error::internal(format!(
                "no award record for order {} of {}",
                message.order_id, message.user_id
            ))),
        };
    }
    // Every delivered prize has exactly one credit order, so a balance is always the sum
    // of its orders.
    tx.credit_add(&message.user_id, amount).await?;
    let mut order = CreditOrder {
        user_id: message.user_id.clone(),
        order_id: crate::activity::random_digits(rng, 12),
        trade_name: TradeName::Prize.label().to_owned(),
        trade_type: TradeType::Forward.as_str().to_owned(),
        trade_amount: amount,
        out_business_no: prize_business_no(&message.order_id),
    };
    let mut redraw = crate::id::Redraw::new(12);
    while tx.insert_credit_order(&order).await? == crate::id::Inserted::IdTaken {
        order.order_id = redraw.next(rng)?;
    }
    Ok(Some(amount))
}

/// The credit order key of a prize: the raffle order id, prefixed so it can never meet
/// another trade's key.
pub fn prize_business_no(order_id: &str) -> String {
    format!("award_{order_id}")
}

/// An external account service granting `openai_use_count` prizes.
#[async_trait::async_trait]
pub trait AwardGateway: Send + Sync {
    /// Adds `quota` uses to `openid`; `idempotency_key` makes a retry harmless.
    async fn adjust_quota(&self, openid: &str, quota: i64, idempotency_key: &str) -> Result<()>;
}

/// An award record that is not delivered, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndeliveredAward {
    pub user_id: String,
    pub order_id: String,
    pub award_id: i32,
    pub award_title: String,
    pub award_time: DateTime,
    pub note: Option<String>,
}

/// One award record as its user sees it ("my awards").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardRecordView {
    pub order_id: String,
    pub award_id: i32,
    pub award_title: String,
    pub award_time: DateTime,
    /// `create` (not delivered yet) or `completed`.
    pub award_state: String,
    /// Why a `create` record is not delivered, when delivery was tried.
    pub note: Option<String>,
}

/// The most award records `user_award_records` returns.
pub const MAX_USER_AWARD_RECORDS: usize = 100;

/// Storage of the award domain.
#[async_trait::async_trait]
pub trait AwardRepository: Send + Sync {
    async fn award(&self, award_id: i32) -> Result<Option<Award>>;
    /// Runs [`deliver_credit`] in one transaction.
    async fn deliver_credit(
        &self,
        message: SendAwardMessage,
        default_config: String,
    ) -> Result<Option<Decimal>>;
    async fn complete_award(&self, user_id: &str, order_id: &str) -> Result<bool>;
    /// The record's `award_state`, `None` when there is no such record.
    async fn award_state(&self, user_id: &str, order_id: &str) -> Result<Option<String>>;
    /// Keeps the record `create` and says why it is not delivered.
    async fn note_award(&self, user_id: &str, order_id: &str, note: &str) -> Result<()>;
    async fn undelivered(&self, limit: usize) -> Result<Vec<UndeliveredAward>>;
    /// A user's award records in an activity, newest first, at most `limit`.
    async fn user_award_records(
        &self,
        user_id: &str,
        activity_id: i64,
        limit: usize,
    ) -> Result<Vec<AwardRecordView>>;
    /// Sends the `send_award` message of an undelivered record again (its task back to
    /// `fail` with a fresh retry budget); whether there was such a record and task.
    async fn redeliver(&self, user_id: &str, order_id: &str) -> Result<bool>;
}

/// Award delivery: the `send_award` consumer's logic.
pub struct AwardService {
    repo: Arc<dyn AwardRepository>,
    gateway: Option<Arc<dyn AwardGateway>>,
    /// `award` rows are configuration: read once per process.
    awards: std::sync::RwLock<std::collections::HashMap<i32, Award>>,
}

impl AwardService {
    pub fn new(repo: Arc<dyn AwardRepository>, gateway: Option<Arc<dyn AwardGateway>>) -> Self {
        Self {
            repo,
            gateway,
            awards: Default::default(),
        }
    }

    async fn award(&self, award_id: i32) -> Result<Option<Award>> {
        if let Some(a) = self
            .awards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&award_id)
        {
            return Ok(Some(a.clone()));
        }
        let award = self.repo.award(award_id).await?;
        if let Some(a) = &award {
            self.awards
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(award_id, a.clone());
        }
        Ok(award)
    }

    /// Delivers one `send_award` message. `Ok` with a note when the message is done with
    /// (delivered, delivered before, or kept for an operator with the reason); `Err` when
    /// it should be retried.
    pub async fn deliver(&self, message: &SendAwardMessage) -> Result<Option<String>> {
        let Some(award) = self.award(message.award_id).await? else {
            let note = format!("award {} does not exist", message.award_id);
            self.repo
                .note_award(&message.user_id, &message.order_id, &note)
                .await?;
            return Ok(Some(note));
        };
        match award.award_key.as_str() {
            key::USER_CREDIT_RANDOM => {
                match self
                    .repo
                    .deliver_credit(message.clone(), award.award_config.clone())
                    .await
                {
                    Ok(Some(amount)) => Ok(Some(format!("credited {amount}"))),
                    Ok(None) => Ok(Some("delivered before".into())),
                    Err(e) if e.code() == ResponseCode::AwardConfigError => {
                        let note = e.to_string();
                        self.repo
                            .note_award(&message.user_id, &message.order_id, &note)
                            .await?;
                        Ok(Some(note))
                    }
                    Err(e) => Err(e),
                }
            }
            key::OPENAI_USE_COUNT => {
                let config = message
                    .award_config
                    .as_deref()
                    .filter(|c| !c.trim().is_empty())
                    .unwrap_or(&award.award_config);
                let Some(quota) = config.trim().parse::<i64>().ok().filter(|q| *q > 0) else {
                    let note =
                        format!("openai_use_count config {config:?} is not a positive integer");
                    self.repo
                        .note_award(&message.user_id, &message.order_id, &note)
                        .await?;
                    return Ok(Some(note));
                };
                // A redelivered message must not grant the uses a second time.
                if self
                    .repo
                    .award_state(&message.user_id, &message.order_id)
                    .await?
                    .as_deref()
                    == Some(state::COMPLETED)
                {
                    return Ok(Some("delivered before".into()));
                }
                let Some(gateway) = &self.gateway else {
                    let note = "openai_use_count: the external account service is not configured";
                    self.repo
                        .note_award(&message.user_id, &message.order_id, note)
                        .await?;
                    return Ok(Some(note.into()));
                };
                if let Err(e) = gateway
                    .adjust_quota(&message.user_id, quota, &message.order_id)
                    .await
                {
                    // Kept on the record so the undelivered list says why; retried.
                    self.repo
                        .note_award(
                            &message.user_id,
                            &message.order_id,
                            &format!("account service: {e}"),
                        )
                        .await?;
                    return Err(e);
                }
                self.repo
                    .complete_award(&message.user_id, &message.order_id)
                    .await?;
                Ok(Some(format!("granted {quota} uses")))
            }
            other => {
                let note = format!("no distributor for award_key {other:?}");
                self.repo
                    .note_award(&message.user_id, &message.order_id, &note)
                    .await?;
                Ok(Some(note))
            }
        }
    }

    pub async fn undelivered(&self, limit: usize) -> Result<Vec<UndeliveredAward>> {
        self.repo.undelivered(limit).await
    }

    /// The user's award records in the activity, newest first (at most
    /// [`MAX_USER_AWARD_RECORDS`]).
    pub async fn user_award_records(
        &self,
        user_id: &str,
        activity_id: i64,
    ) -> Result<Vec<AwardRecordView>> {
        self.repo
            .user_award_records(user_id, activity_id, MAX_USER_AWARD_RECORDS)
            .await
    }

    /// Delivers an undelivered award again, e.g. after the account service was
    /// configured or a distributor added.
    pub async fn redeliver(&self, user_id: &str, order_id: &str) -> Result<()> {
        if self.repo.redeliver(user_id, order_id).await? {
            tracing::info!(%user_id, %order_id, "award redelivery requested by an operator");
            Ok(())
        } else {
            Err(Error::illegal(format!(
                "no undelivered award of order {order_id} for user {user_id}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn ranges_parse_or_are_err_config_001() {
        assert_eq!(
            parse_range("1,100").unwrap(),
            (Decimal::ONE, Decimal::from(100))
        );
        assert_eq!(parse_range("0.01,1").unwrap().0, Decimal::new(1, 2));
        for bad in ["", "5", "1,2,3", "a,b", "10,1", "-1,5"] {
            assert_eq!(
                parse_range(bad).unwrap_err().code(),
                ResponseCode::AwardConfigError,
                "{bad}"
            );
        }
    }

    #[test]
    fn random_credit_stays_in_range_with_two_places() {
        let mut rng = StdRng::seed_from_u64(5);
        for (min, max) in [("1", "100"), ("0.01", "1"), ("5", "5")] {
            let (min, max): (Decimal, Decimal) = (min.parse().unwrap(), max.parse().unwrap());
            for _ in 0..2000 {
                let a = random_credit(min, max, &mut rng);
                assert!(a >= min && a <= max, "{a} in {min}..{max}");
                assert!(a.scale() <= 2, "{a}");
            }
        }
        // 3 significant digits: 1..100 never yields more precision than 0.1 above 10.
        for _ in 0..2000 {
            let a = random_credit(Decimal::from(10), Decimal::from(100), &mut rng);
            assert_eq!(a, a.round_dp(1), "{a}");
        }
    }
}
