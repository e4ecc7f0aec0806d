//! The armory: turns a strategy's configuration rows into what a draw needs, held in
//! process (alias tables, the parsed chain, validated trees).
//!
//! Upstream stores shuffled slot tables in Redis and reads one per draw; here a table is
//! O(number of awards) and lives in memory, so a draw costs no round trip. The
//! [`Catalog`] is rebuilt by the armory endpoint and swapped atomically.

use super::alias::{AliasError, AliasTable};
use super::rules::{Blacklist, parse_blacklist, parse_weight};
use super::tree::{RuleTree, RuleTreeLineRow, RuleTreeNodeRow, RuleTreeRow};
use super::{Strategy, StrategyAward, StrategyRule, model};
use crate::award::Award;
use crate::error::{Error, ResponseCode, Result};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Everything the armory reads for one strategy.
#[derive(Debug, Clone, Default)]
pub struct StrategyConfig {
    pub strategy: Option<Strategy>,
    pub awards: Vec<StrategyAward>,
    pub rules: Vec<StrategyRule>,
    pub trees: Vec<RuleTreeRow>,
    pub tree_nodes: Vec<RuleTreeNodeRow>,
    pub tree_lines: Vec<RuleTreeLineRow>,
    /// The activity whose `strategy_id` is this strategy (1:1 upstream), if any.
    pub activity_id: Option<i64>,
    /// The `award` table: where an award a rule names outside the strategy's awards (a
    /// luck award, the blacklist award) is found.
    pub award_table: Vec<Award>,
}

/// A `rule_weight` group with its own table.
#[derive(Debug, Clone)]
pub struct WeightGroup {
    pub threshold: i64,
    pub token: String,
    pub award_ids: Vec<i32>,
    pub table: AliasTable<i32>,
}

/// One link of the pre-draw chain, in configured order; `rule_default` always ends it.
#[derive(Debug, Clone)]
pub enum ChainRule {
    Blacklist(Blacklist),
    Weight(Vec<WeightGroup>),
}

/// A strategy ready to draw.
#[derive(Debug, Clone)]
pub struct AssembledStrategy {
    pub strategy: Strategy,
    pub activity_id: Option<i64>,
    /// Ordered by `sort`, as upstream lists them.
    pub awards: Vec<StrategyAward>,
    pub default_table: AliasTable<i32>,
    pub chain: Vec<ChainRule>,
    pub trees: HashMap<String, Arc<RuleTree>>,
    /// Awards a rule gives that are not among `awards` (upstream's 100004 names luck
    /// award 101 without listing it), by id, as the `award` table describes them. Every
    /// award a rule can give is in `awards` or here: the armory refuses a strategy
    /// naming one the award table does not have, so a draw never fails on it.
    pub rule_awards: HashMap<i32, Award>,
}

/// Exact integer weights from `decimal` rates: every rate is scaled to the largest scale
/// among them, so `0.0099` and `0.3` become 99 and 3000.
fn weights(strategy_id: i64, awards: &[&StrategyAward]) -> Result<Vec<(i32, u64)>> {
    let scale = awards
        .iter()
        .map(|a| a.award_rate.scale())
        .max()
        .unwrap_or(0);
    awards
        .iter()
        .map(|a| {
            let mut rate = a.award_rate;
            rate.rescale(scale);
            u64::try_from(rate.mantissa())
                .map(|w| (a.award_id, w))
                .map_err(|_| {
                    Error::config(format!(
                        "strategy {strategy_id} award {} has a negative rate {}",
                        a.award_id, a.award_rate
                    ))
                })
        })
        .collect()
}

fn table(strategy_id: i64, what: &str, awards: &[&StrategyAward]) -> Result<AliasTable<i32>> {
    AliasTable::new(weights(strategy_id, awards)?).map_err(|e| match e {
        AliasError::Empty => Error::config(format!(
            "strategy {strategy_id} {what}: no award with a positive rate"
        )),
        AliasError::Overflow => Error::config(format!(
            "strategy {strategy_id} {what}: rates too large or too many awards"
        )),
    })
}

impl AssembledStrategy {
    pub fn assemble(config: StrategyConfig) -> Result<Self> {
        let strategy = config.strategy.ok_or_else(|| {
            Error::biz(
                ResponseCode::UnAssembledStrategyArmory,
                "strategy does not exist",
            )
        })?;
        let id = strategy.strategy_id;
        let mut awards = config.awards;
        awards.sort_by_key(|a| (a.sort, a.award_id));
        let all: Vec<&StrategyAward> = awards.iter().collect();
        let default_table = table(id, "default table", &all)?;

        let rule = |name: &str| config.rules.iter().find(|r| r.rule_model == name);
        let mut chain = Vec::new();
        for name in strategy.rule_model_list() {
            match name {
                model::BLACKLIST => {
                    let row = rule(name).ok_or_else(|| {
                        Error::config(format!(
                            "strategy {id} names rule_blacklist but has no rule_blacklist row"
                        ))
                    })?;
                    chain.push(ChainRule::Blacklist(parse_blacklist(id, &row.rule_value)?));
                }
                model::WEIGHT => {
                    let row = rule(name).ok_or_else(|| {
                        Error::biz(
                            ResponseCode::StrategyRuleWeightIsNull,
                            format!("strategy {id} names rule_weight but has no rule_weight row"),
                        )
                    })?;
                    let mut groups = Vec::new();
                    for spec in parse_weight(id, &row.rule_value)? {
                        let members = spec
                            .award_ids
                            .iter()
                            .map(|aid| {
                                awards.iter().find(|a| a.award_id == *aid).ok_or_else(|| {
                                    Error::config(format!(
                                        "strategy {id} rule_weight group {} names award {aid}, which the strategy does not have",
                                        spec.token
                                    ))
                                })
                            })
                            .collect::<Result<Vec<_>>>()?;
                        let table =
                            table(id, &format!("rule_weight group {}", spec.token), &members)?;
                        groups.push(WeightGroup {
                            threshold: spec.threshold,
                            token: spec.token,
                            award_ids: spec.award_ids,
                            table,
                        });
                    }
                    if groups.is_empty() {
                        tracing::warn!(
                            strategy_id = id,
                            "rule_weight value is empty; rule skipped"
                        );
                    } else {
                        groups.sort_by_key(|g| g.threshold);
                        chain.push(ChainRule::Weight(groups));
                    }
                }
                other => {
                    return Err(Error::config(format!(
                        "strategy {id} rule_models names unknown chain rule {other:?}"
                    )));
                }
            }
        }

        let mut trees = HashMap::new();
        for award in &awards {
            let Some(tree_id) = award.rule_models.as_deref().map(str::trim) else {
                continue;
            };
            if tree_id.is_empty() || trees.contains_key(tree_id) {
                continue;
            }
            let row = config
                .trees
                .iter()
                .find(|t| t.tree_id == tree_id)
                .ok_or_else(|| {
                    Error::config(format!(
                        "strategy {id} award {} uses rule tree {tree_id}, which does not exist",
                        award.award_id
                    ))
                })?;
            let tree = RuleTree::from_rows(row, &config.tree_nodes, &config.tree_lines)?;
            trees.insert(tree_id.to_owned(), Arc::new(tree));
        }

        let named = chain
            .iter()
            .filter_map(|rule| match rule {
                ChainRule::Blacklist(b) => Some(b.award_id),
                ChainRule::Weight(_) => None,
            })
            .chain(trees.values().flat_map(|t| t.luck_award_ids()));
        let mut rule_awards = HashMap::new();
        for award_id in named {
            if awards.iter().any(|a| a.award_id == award_id) {
                continue;
            }
            let award = config
                .award_table
                .iter()
                .find(|a| a.award_id == award_id)
                .ok_or_else(|| {
                    Error::config(format!(
                        "strategy {id} has no award {award_id} (named by a rule), and the award table has none either"
                    ))
                })?;
            rule_awards.insert(award_id, award.clone());
        }

        Ok(Self {
            strategy,
            activity_id: config.activity_id,
            awards,
            default_table,
            chain,
            trees,
            rule_awards,
        })
    }

    pub fn strategy_id(&self) -> i64 {
        self.strategy.strategy_id
    }

    pub fn award(&self, award_id: i32) -> Option<&StrategyAward> {
        self.awards.iter().find(|a| a.award_id == award_id)
    }

    /// The award's rule tree, if it has one.
    pub fn tree_of(&self, award_id: i32) -> Option<&Arc<RuleTree>> {
        let tree_id = self.award(award_id)?.rule_models.as_deref()?.trim();
        self.trees.get(tree_id)
    }

    /// The `rule_weight` groups, if the chain has them.
    pub fn weight_groups(&self) -> Option<&[WeightGroup]> {
        self.chain.iter().find_map(|r| match r {
            ChainRule::Weight(g) => Some(g.as_slice()),
            _ => None,
        })
    }
}

/// All assembled strategies of the process, by id. Readers clone an `Arc` and never wait
/// on the armory; a rebuild replaces one entry.
#[derive(Debug, Default)]
pub struct Catalog {
    strategies: RwLock<HashMap<i64, Arc<AssembledStrategy>>>,
}

impl Catalog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, strategy: AssembledStrategy) -> Arc<AssembledStrategy> {
        let strategy = Arc::new(strategy);
        self.strategies
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(strategy.strategy_id(), strategy.clone());
        strategy
    }

    pub fn remove(&self, strategy_id: i64) {
        self.strategies
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&strategy_id);
    }

    /// The assembled strategy, or `ERR_BIZ_002` when the armory has not run for it.
    pub fn get(&self, strategy_id: i64) -> Result<Arc<AssembledStrategy>> {
        self.strategies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&strategy_id)
            .cloned()
            .ok_or_else(|| {
                Error::biz(
                    ResponseCode::UnAssembledStrategyArmory,
                    format!("strategy {strategy_id} is not assembled; run the armory first"),
                )
            })
    }

    /// The assembled strategy of an activity (activity and strategy are 1:1).
    pub fn by_activity(&self, activity_id: i64) -> Option<Arc<AssembledStrategy>> {
        self.strategies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|s| s.activity_id == Some(activity_id))
            .cloned()
    }

    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .strategies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }
}
