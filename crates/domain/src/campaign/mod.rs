//! Campaigns as documents: one JSON document per activity (or per strategy without an
//! activity) holding what upstream spreads over a dozen configuration tables.
//!
//! Design rule: the document is only another spelling of the rows. [`export`] reads it
//! from rows, [`plan`] turns it back into the row changes that make the stored rows equal
//! to it, and the same rules that assemble a strategy for drawing ([`validate`], which
//! ends by running the armory) decide whether it may be written. Storage implements
//! [`CampaignTx`] (reads and writes of one transaction) and [`CampaignRepository`]; the
//! rules are written once, here.

mod apply;
mod document;
mod simulate;
mod validate;

pub use apply::{
    Applied, CampaignRepository, CampaignService, CampaignTx, Change, ConfigRows, NewVersion, Plan,
    TreeRows, VersionInfo, apply_in, plan, to_strategy_config,
};
pub use document::{
    ActivityDoc, AwardDoc, BlacklistDoc, CampaignDocument, CampaignKey, CampaignSummary, CountDoc,
    LineDoc, NodeDoc, RebateDoc, RuleDoc, SkuDoc, StageDoc, StrategyDoc, TreeDoc, WeightGroupDoc,
    export, list, parse_document,
};
pub use simulate::{
    AwardOutcome, ByRule, MAX_SIMULATED_DRAWS, Simulation, SimulationInput, SimulationRequest,
    simulate,
};
pub use validate::{Finding, Report, check_strategy_config, validate, validate_against};

#[cfg(test)]
mod tests;
