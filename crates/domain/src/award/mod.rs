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
}

/// `send_award` payload (fields in fastjson's alphabetical order; `None` omitted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAwardMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub award_config: Option<String>,
    pub award_id: i32,
    pub award_title: String,
    pub order_id: String,
    pub user_id: String,
}
