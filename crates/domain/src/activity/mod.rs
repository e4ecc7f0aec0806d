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
