//! Published odds: what a player can be given, with which exact probability, and what
//! replaces it.
//!
//! Everything here is read from the assembled strategy a draw uses: the integer weights
//! the alias tables are built from (so `weight / totalWeight` is the exact probability of
//! a draw), the weight groups, and the rule trees walked for each situation
//! ([`RuleTree::outcomes`](super::tree::RuleTree::outcomes)). Stock is the only live
//! input: an award is sold out when its tree takes stock and none is left.

#![cfg_attr(not(test), deny(clippy::as_conversions))]

use super::armory::{AssembledStrategy, ChainRule};
use jiff::civil::DateTime;
use std::collections::HashMap;

/// One award of a table with its exact weight.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedAward {
    pub award_id: i32,
    pub weight: u64,
    /// `weight / totalWeight` as a float, for display; the exact value is the fraction.
    pub probability: f64,
}

/// One award of the strategy: its odds in the default table and its rules.
#[derive(Debug, Clone, PartialEq)]
pub struct AwardOdds {
    pub award_id: i32,
    pub award_title: String,
    pub sort: i32,
    pub weight: u64,
    pub probability: f64,
    /// Today's draws needed before the award can be won (`rule_lock`).
    pub lock_count: Option<i64>,
    /// The award given instead while the award is locked.
    pub locked_award_id: Option<i32>,
    /// Whether winning the award takes a unit of its stock (`rule_stock`).
    pub stock_checked: bool,
    /// The award given instead when its stock is gone.
    pub sold_out_award_id: Option<i32>,
    /// Units left as the store reports them.
    pub stock_left: i64,
    /// Stock is checked and none is left (or none released yet): a draw of it gives
    /// `sold_out_award_id` now.
    pub sold_out: bool,
    /// The award's release plan (`even`, `1h:N`, `1d:N`), if it is paced.
    pub release_plan: Option<String>,
    /// Units released by the plan so far (paced awards).
    pub released: Option<i64>,
}

/// A `rule_weight` group: from the draw after `threshold` draws, its own table.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightGroupOdds {
    /// Applies to the draw made when the user has used exactly this many draws before it.
    pub threshold: i64,
    pub total_weight: u64,
    pub awards: Vec<WeightedAward>,
}

/// An award a rule gives instead of the drawn one (luck award, blacklist award).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAward {
    pub award_id: i32,
    pub award_title: String,
    /// `locked`, `sold_out`, `blacklist`: what sends a draw to it.
    pub reasons: Vec<&'static str>,
}

/// The published odds of an activity's strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyOdds {
    pub strategy_id: i64,
    pub total_weight: u64,
    pub awards: Vec<AwardOdds>,
    pub weight_groups: Vec<WeightGroupOdds>,
    pub rule_awards: Vec<RuleAward>,
}

fn probability(weight: u64, total: u64) -> f64 {
    // Weights are at most 10¹⁸ or so; a float is for display only.
    let to_f64 = |v: u64| v.to_string().parse::<f64>().unwrap_or(0.0);
    if total == 0 {
        0.0
    } else {
        to_f64(weight) / to_f64(total)
    }
}

fn weighted(weights: &[(i32, u64)]) -> (u64, Vec<WeightedAward>) {
    let total = weights.iter().map(|(_, w)| *w).sum();
    let awards = weights
        .iter()
        .map(|(award_id, weight)| WeightedAward {
            award_id: *award_id,
            weight: *weight,
            probability: probability(*weight, total),
        })
        .collect();
    (total, awards)
}

/// The odds of `strategy`, with `stock_left` per award id (awards missing from it have
/// none left).
pub fn strategy_odds(
    strategy: &AssembledStrategy,
    stock_left: &HashMap<i32, i64>,
    now: DateTime,
) -> StrategyOdds {
    let id = strategy.strategy_id();
    let (total_weight, table) = weighted(&strategy.default_weights);
    let mut reasons: Vec<(i32, &'static str)> = Vec::new();
    let awards = strategy
        .awards
        .iter()
        .map(|a| {
            let weight = table
                .iter()
                .find(|w| w.award_id == a.award_id)
                .map_or((0, 0.0), |w| (w.weight, w.probability));
            let outcomes = strategy
                .tree_of(a.award_id)
                .map(|t| t.outcomes(id, a.award_id));
            let replaced = |award: Option<i32>| award.filter(|other| *other != a.award_id);
            let locked_award_id = outcomes.and_then(|o| replaced(o.locked));
            let sold_out_award_id = outcomes.and_then(|o| replaced(o.sold_out));
            let stock_checked = outcomes.is_some_and(|o| o.stock_checked);
            let left = stock_left.get(&a.award_id).copied().unwrap_or(0);
            let held_back = strategy.held_back(a.award_id, now);
            let plan = strategy.release.get(&a.award_id);
            if let Some(other) = locked_award_id {
                reasons.push((other, "locked"));
            }
            if let Some(other) = sold_out_award_id {
                reasons.push((other, "sold_out"));
            }
            AwardOdds {
                award_id: a.award_id,
                award_title: a.award_title.clone(),
                sort: a.sort,
                weight: weight.0,
                probability: weight.1,
                lock_count: outcomes.and_then(|o| o.lock_count),
                locked_award_id,
                stock_checked,
                sold_out_award_id,
                stock_left: left,
                sold_out: stock_checked && left <= held_back.max(0),
                release_plan: plan.map(|p| p.describe()),
                released: plan.map(|_| a.award_count - held_back),
            }
        })
        .collect();
    let weight_groups = strategy
        .weight_groups()
        .unwrap_or(&[])
        .iter()
        .map(|g| {
            let (total_weight, awards) = weighted(&g.weights);
            WeightGroupOdds {
                threshold: g.threshold,
                total_weight,
                awards,
            }
        })
        .collect();
    for rule in &strategy.chain {
        if let ChainRule::Blacklist(b) = rule {
            reasons.push((b.award_id, "blacklist"));
        }
    }
    let mut rule_awards: Vec<RuleAward> = Vec::new();
    for (award_id, reason) in reasons {
        if let Some(existing) = rule_awards.iter_mut().find(|r| r.award_id == award_id) {
            if !existing.reasons.contains(&reason) {
                existing.reasons.push(reason);
            }
            continue;
        }
        let award_title = strategy
            .award(award_id)
            .map(|a| a.award_title.clone())
            .or_else(|| {
                strategy
                    .rule_awards
                    .get(&award_id)
                    .map(|a| a.award_desc.clone())
            })
            .unwrap_or_default();
        rule_awards.push(RuleAward {
            award_id,
            award_title,
            reasons: vec![reason],
        });
    }
    StrategyOdds {
        strategy_id: id,
        total_weight,
        awards,
        weight_groups,
        rule_awards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{SampleData, assembled};
    use crate::strategy::audit::audit_strategy;
    use rand::{SeedableRng, rngs::StdRng};
    use rust_decimal::Decimal;

    fn now() -> DateTime {
        crate::time::parse_datetime("2026-12-02 10:00:00").unwrap()
    }

    /// `a / b == c / d` on exact values.
    fn same_fraction(a: Decimal, b: Decimal, c: u64, d: u64) -> bool {
        a * Decimal::from(d) == Decimal::from(c) * b
    }

    /// For every sample strategy, every table: weights sum to the total, and each
    /// award's `weight / totalWeight` is its configured rate over the table's rate sum,
    /// as exact fractions.
    #[test]
    fn published_odds_are_the_configured_rates_normalised_for_every_sample_strategy() {
        let data = SampleData::upstream();
        assert!(data.strategies.len() >= 7);
        for s in &data.strategies {
            let strategy = assembled(s.strategy_id);
            let odds = strategy_odds(&strategy, &HashMap::new(), now());
            let rate = |aid: i32| strategy.award(aid).map(|a| a.award_rate).unwrap();
            let sum: u64 = odds.awards.iter().map(|a| a.weight).sum();
            assert_eq!(sum, odds.total_weight, "strategy {}", s.strategy_id);
            assert_eq!(odds.awards.len(), strategy.awards.len());
            let rate_sum: Decimal = strategy.awards.iter().map(|a| a.award_rate).sum();
            for a in &odds.awards {
                assert!(
                    same_fraction(rate(a.award_id), rate_sum, a.weight, odds.total_weight),
                    "strategy {} award {}: {} / {} against {} / {}",
                    s.strategy_id,
                    a.award_id,
                    a.weight,
                    odds.total_weight,
                    rate(a.award_id),
                    rate_sum
                );
            }
            let groups = strategy.weight_groups().unwrap_or(&[]);
            assert_eq!(odds.weight_groups.len(), groups.len());
            for (g, spec) in odds.weight_groups.iter().zip(groups) {
                assert_eq!(g.threshold, spec.threshold);
                let sum: u64 = g.awards.iter().map(|a| a.weight).sum();
                assert_eq!(sum, g.total_weight);
                let mut ids: Vec<i32> = g.awards.iter().map(|a| a.award_id).collect();
                let mut configured = spec.award_ids.clone();
                ids.sort_unstable();
                configured.sort_unstable();
                assert_eq!(ids, configured);
                let rate_sum: Decimal = spec.award_ids.iter().map(|a| rate(*a)).sum();
                for a in &g.awards {
                    assert!(same_fraction(
                        rate(a.award_id),
                        rate_sum,
                        a.weight,
                        g.total_weight
                    ));
                }
            }
        }
    }

    /// The sampling audit of the tables the draws use agrees with the published odds.
    #[test]
    fn the_chi_square_audit_agrees_with_the_published_odds() {
        let mut rng = StdRng::seed_from_u64(20261202);
        for s in SampleData::upstream().strategies {
            let strategy = assembled(s.strategy_id);
            let odds = strategy_odds(&strategy, &HashMap::new(), now());
            for table in audit_strategy(&strategy, 200_000, &mut rng) {
                assert!(table.p_value > 1e-6, "{}: p {}", table.key, table.p_value);
                let published: Vec<WeightedAward> = if table.key == s.strategy_id.to_string() {
                    odds.awards
                        .iter()
                        .map(|a| WeightedAward {
                            award_id: a.award_id,
                            weight: a.weight,
                            probability: a.probability,
                        })
                        .collect()
                } else {
                    let group = strategy
                        .weight_groups()
                        .unwrap()
                        .iter()
                        .position(|g| table.key == format!("{}_{}", s.strategy_id, g.token))
                        .unwrap();
                    odds.weight_groups[group].awards.clone()
                };
                for audited in &table.awards {
                    let p = published
                        .iter()
                        .find(|a| a.award_id == audited.award_id)
                        .unwrap()
                        .probability;
                    assert!(
                        (p - audited.expected_probability).abs() < 1e-12,
                        "{}: award {} published {p} audited {}",
                        table.key,
                        audited.award_id,
                        audited.expected_probability
                    );
                }
            }
        }
    }

    /// 100006's awards: locks from the trees, the luck award 101 for locked and sold-out
    /// awards, 105's `tree_lock_3` (unlocking it gives 101 too), the blacklist award.
    #[test]
    fn rules_and_stock_of_100006_are_published() {
        let strategy = assembled(100006);
        let stock = HashMap::from([(101, 100), (102, 0), (103, 5)]);
        let odds = strategy_odds(&strategy, &stock, now());
        let award = |id: i32| odds.awards.iter().find(|a| a.award_id == id).unwrap();
        let a102 = award(102);
        assert!(a102.stock_checked && a102.sold_out);
        assert_eq!(a102.sold_out_award_id, Some(101));
        let a103 = award(103);
        assert!(a103.stock_checked && !a103.sold_out);
        assert_eq!(a103.stock_left, 5);
        for a in &odds.awards {
            let tree = strategy.tree_of(a.award_id);
            assert_eq!(a.lock_count, tree.and_then(|t| t.lock_count()));
            if a.lock_count.is_some_and(|n| n > 1) {
                assert_eq!(a.locked_award_id, Some(101), "award {}", a.award_id);
            }
        }
        let luck = odds.rule_awards.iter().find(|r| r.award_id == 101).unwrap();
        assert!(luck.reasons.contains(&"sold_out"));
        assert!(luck.reasons.contains(&"blacklist"));
        assert!(!luck.award_title.is_empty());
    }
}
