//! The strategy domain: configuration rows, the armory that turns them into in-process
//! draw tables, the pre-draw rule chain, the rule tree and the raffle that combines them.
//!
//! Design rule: everything here is pure. Stock is the only effect a draw has, and it goes
//! through the [`StockStore`] port so that each backend takes it inside its own
//! transaction (SQLite) or reservation ledger (Redis).

pub mod alias;
pub mod armory;
pub mod audit;
pub mod fair;
pub mod fairness;
pub mod odds;
pub mod pacing;
pub mod raffle;
pub mod rules;
pub mod service;
pub mod tree;

pub use alias::AliasTable;
pub use armory::{AssembledStrategy, Catalog, StrategyConfig};
pub use raffle::{
    FairTrace, RaffleAward, RaffleFactor, Randomness, StockStore, perform_raffle, raffle,
};
pub use service::{AwardListItem, DrawCounts, RuleWeightItem, StrategyRepository, StrategyService};

use rust_decimal::Decimal;

/// Rule model names used in `strategy.rule_models` and `strategy_rule.rule_model`.
pub mod model {
    pub const BLACKLIST: &str = "rule_blacklist";
    pub const WEIGHT: &str = "rule_weight";
    pub const DEFAULT: &str = "rule_default";
    pub const LOCK: &str = "rule_lock";
    pub const STOCK: &str = "rule_stock";
    pub const LUCK_AWARD: &str = "rule_luck_award";
}

/// A row of `strategy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    pub strategy_id: i64,
    pub strategy_desc: String,
    /// Comma list of chain rules in the order they run, e.g. `rule_blacklist,rule_weight`.
    pub rule_models: Option<String>,
}

impl Strategy {
    /// The configured chain rule names, in order, without blanks.
    pub fn rule_model_list(&self) -> Vec<&str> {
        self.rule_models
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A row of `strategy_award`.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyAward {
    pub strategy_id: i64,
    pub award_id: i32,
    pub award_title: String,
    pub award_subtitle: Option<String>,
    pub award_count: i64,
    pub award_count_surplus: i64,
    /// `decimal(6,4)`: exact, never a float.
    pub award_rate: Decimal,
    /// The id of the award's rule tree (upstream reuses the column name).
    pub rule_models: Option<String>,
    pub sort: i32,
}

/// A row of `strategy_rule`.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyRule {
    pub strategy_id: i64,
    pub award_id: Option<i32>,
    pub rule_type: i32,
    pub rule_model: String,
    pub rule_value: String,
    pub rule_desc: String,
}
