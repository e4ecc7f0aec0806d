//! The award domain: what an award is and how it is delivered.

/// A row of `award`: `award_key` picks the distributor, `award_config` its default config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    pub award_id: i32,
    pub award_key: String,
    pub award_config: String,
    pub award_desc: String,
}
