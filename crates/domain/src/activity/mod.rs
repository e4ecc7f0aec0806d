//! The activity domain: activities, their SKUs (bundles of draw counts) and the users'
//! quota accounts.

use jiff::civil::DateTime;
use rust_decimal::Decimal;

/// `raffle_activity.state` values.
pub mod state {
    pub const CREATE: &str = "create";
    pub const OPEN: &str = "open";
    pub const CLOSE: &str = "close";
}

/// A row of `raffle_activity`. Times are local to the configured zone.
#[derive(Debug, Clone, PartialEq)]
pub struct RaffleActivity {
    pub activity_id: i64,
    pub activity_name: String,
    pub activity_desc: String,
    pub begin_date_time: DateTime,
    pub end_date_time: DateTime,
    pub strategy_id: i64,
    pub state: String,
}

/// A row of `raffle_activity_count`: how many draws a SKU grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaffleActivityCount {
    pub activity_count_id: i64,
    pub total_count: i64,
    pub day_count: i64,
    pub month_count: i64,
}

/// A row of `raffle_activity_sku`.
#[derive(Debug, Clone, PartialEq)]
pub struct RaffleActivitySku {
    pub sku: i64,
    pub activity_id: i64,
    pub activity_count_id: i64,
    pub stock_count: i64,
    pub stock_count_surplus: i64,
    /// Price in credits, `decimal(10,2)`.
    pub product_amount: Decimal,
}

/// A row of `raffle_activity_stage`: which activity a channel/source shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaffleActivityStage {
    pub id: i64,
    pub channel: String,
    pub source: String,
    pub activity_id: i64,
    pub state: String,
}

pub mod memory;
pub mod quota;
pub mod service;

pub use quota::{DrawTx, OrderTradeType, QuotaRows, RechargeTx, SkuRecharge};
pub use service::{ActivityRepository, ActivityService, DrawResult, StartGate};

/// A user's quota in an activity (`raffle_activity_account`). The day/month fields are
/// cumulative grants and mirrors of today's and this month's remaining quota.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivityAccount {
    pub user_id: String,
    pub activity_id: i64,
    pub total_count: i64,
    pub total_count_surplus: i64,
    pub day_count: i64,
    pub day_count_surplus: i64,
    pub month_count: i64,
    pub month_count_surplus: i64,
}

impl ActivityAccount {
    /// Draws used in the activity: what was granted minus what is left. The one place
    /// that says it; stores read the rows and ask.
    pub fn used(&self) -> i64 {
        self.total_count - self.total_count_surplus
    }
}

/// `raffle_activity_account_day` / `_month`: quota of one day (`yyyy-MM-dd`) or month
/// (`yyyy-MM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodAccount {
    pub user_id: String,
    pub activity_id: i64,
    pub period: String,
    pub count: i64,
    pub count_surplus: i64,
}

impl PeriodAccount {
    /// Draws used in the period.
    pub fn used(&self) -> i64 {
        self.count - self.count_surplus
    }
}

/// `raffle_activity_order.state` values.
pub mod order_state {
    pub const WAIT_PAY: &str = "wait_pay";
    pub const COMPLETED: &str = "completed";
}

/// A SKU recharge order (`raffle_activity_order`).
#[derive(Debug, Clone, PartialEq)]
pub struct RaffleActivityOrder {
    pub user_id: String,
    pub sku: i64,
    pub activity_id: i64,
    pub activity_name: String,
    pub strategy_id: i64,
    pub order_id: String,
    pub order_time: DateTime,
    pub total_count: i64,
    pub day_count: i64,
    pub month_count: i64,
    pub pay_amount: Decimal,
    pub state: String,
    pub out_business_no: String,
}

/// `user_raffle_order.order_state` values.
pub mod raffle_state {
    pub const CREATE: &str = "create";
    pub const USED: &str = "used";
}

/// One taken part in an activity (`user_raffle_order`): a draw's ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRaffleOrder {
    pub user_id: String,
    pub activity_id: i64,
    pub activity_name: String,
    pub strategy_id: i64,
    pub order_id: String,
    pub order_time: DateTime,
    pub order_state: String,
}

/// An activity with the SKUs that recharge it, held in process.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityConfig {
    pub activity: RaffleActivity,
    pub skus: Vec<(RaffleActivitySku, RaffleActivityCount)>,
}

impl RaffleActivity {
    /// `activity_base_action`: the activity must be `open` (`ERR_BIZ_003`) and `now`
    /// within `[begin, end]` (`ERR_BIZ_004`).
    pub fn check_open(&self, now: DateTime) -> crate::Result<()> {
        use crate::{Error, ResponseCode};
        if self.state != state::OPEN {
            return Err(Error::biz(
                ResponseCode::ActivityStateError,
                format!("activity {} is {}, not open", self.activity_id, self.state),
            ));
        }
        if now < self.begin_date_time || now > self.end_date_time {
            return Err(Error::biz(
                ResponseCode::ActivityDateError,
                format!(
                    "activity {} runs from {} to {}",
                    self.activity_id, self.begin_date_time, self.end_date_time
                ),
            ));
        }
        Ok(())
    }
}

pub use crate::id::random_digits;
