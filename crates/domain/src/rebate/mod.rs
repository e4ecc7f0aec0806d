//! The rebate domain: what a user behaviour (sign-in, payment) grants.

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
