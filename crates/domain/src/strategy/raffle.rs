//! The raffle: the pre-draw chain, then the drawn award's rule tree.
//!
//! Order as upstream: `strategy.rule_models` in configured order, then `rule_default`.
//! A blacklist hit returns at once. **Deliberate change:** an award picked by
//! `rule_weight` runs its rule tree like a default draw, so award stock can never be
//! exceeded whichever rule picked the award (upstream skips the tree and can over-grant).

use super::armory::{AssembledStrategy, ChainRule};
use super::model;
use super::rules::BLACKLIST_AWARD_CONFIG;
use crate::error::{Error, Result};
use rand::Rng;

/// Award stock, taken inside the draw's unit of work. Implementations must be exact under
/// concurrency: `true` only when a unit was really taken, never below zero.
#[allow(async_fn_in_trait)]
pub trait StockStore {
    async fn take_award_stock(&mut self, strategy_id: i64, award_id: i32) -> Result<bool>;
}

/// Who draws and how far they are: the inputs of `rule_weight` and `rule_lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaffleFactor {
    pub user_id: String,
    /// Draws used in the strategy's activity, the current one included.
    pub total_used: i64,
    /// Draws used today in the strategy's activity, the current one included.
    pub today_used: i64,
}

/// The result of a raffle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaffleAward {
    pub award_id: i32,
    pub award_title: String,
    /// Passed to award delivery, e.g. `1,100` (luck award) or `0.01,1` (blacklist).
    pub award_config: Option<String>,
    /// `strategy_award.sort`, upstream's `awardIndex`.
    pub sort: i32,
    /// Which chain rule picked the award before the tree ran.
    pub rule_model: &'static str,
    /// Whether the tree replaced the picked award with its luck award.
    pub by_luck: bool,
}

/// Runs the chain and the tree for one draw.
pub async fn perform_raffle<S: StockStore + ?Sized, R: Rng + ?Sized>(
    strategy: &AssembledStrategy,
    factor: &RaffleFactor,
    stock: &mut S,
    rng: &mut R,
) -> Result<RaffleAward> {
    if factor.user_id.trim().is_empty() {
        return Err(Error::illegal("userId is blank"));
    }
    let mut picked: Option<(i32, &'static str)> = None;
    for rule in &strategy.chain {
        match rule {
            ChainRule::Blacklist(b) => {
                if b.users.contains(&factor.user_id) {
                    return finish(
                        strategy,
                        b.award_id,
                        Some(BLACKLIST_AWARD_CONFIG.to_owned()),
                        model::BLACKLIST,
                        false,
                    );
                }
            }
            ChainRule::Weight(groups) => {
                if let Some(g) = groups.iter().find(|g| g.threshold == factor.total_used) {
                    picked = Some((*g.table.sample(rng), model::WEIGHT));
                    break;
                }
            }
        }
    }
    let (award_id, rule_model) =
        picked.unwrap_or_else(|| (*strategy.default_table.sample(rng), model::DEFAULT));

    let Some(tree) = strategy.tree_of(award_id) else {
        return finish(strategy, award_id, None, rule_model, false);
    };
    let decided = tree
        .process(strategy.strategy_id(), award_id, factor.today_used, stock)
        .await?;
    let by_luck = decided.award_id != award_id;
    finish(
        strategy,
        decided.award_id,
        decided.award_config,
        rule_model,
        by_luck,
    )
}

fn finish(
    strategy: &AssembledStrategy,
    award_id: i32,
    award_config: Option<String>,
    rule_model: &'static str,
    by_luck: bool,
) -> Result<RaffleAward> {
    // An award of the strategy, or one a rule names from the award table: it is on no
    // cell of the strategy's grid, so its `awardIndex` is 0.
    let (award_title, sort) = match strategy.award(award_id) {
        Some(award) => (award.award_title.clone(), award.sort),
        None => match strategy.rule_awards.get(&award_id) {
            Some(award) => (award.award_desc.clone(), 0),
            None => {
                return Err(Error::config(format!(
                    "strategy {} has no award {award_id} (named by a rule)",
                    strategy.strategy_id()
                )));
            }
        },
    };
    Ok(RaffleAward {
        award_id,
        award_title,
        award_config,
        sort,
        rule_model,
        by_luck,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;
    use rand::{SeedableRng, rngs::StdRng};
    use std::collections::HashMap;

    /// In-memory stock with exact counts.
    #[derive(Default)]
    struct MemStock(HashMap<i32, i64>);
    impl StockStore for MemStock {
        async fn take_award_stock(&mut self, _: i64, award_id: i32) -> Result<bool> {
            let left = self.0.entry(award_id).or_insert(0);
            if *left > 0 {
                *left -= 1;
                Ok(true)
            } else {
                Ok(false)
            }
        }
    }

    fn factor(user: &str, total: i64, today: i64) -> RaffleFactor {
        RaffleFactor {
            user_id: user.into(),
            total_used: total,
            today_used: today,
        }
    }

    fn draw(
        s: &AssembledStrategy,
        f: &RaffleFactor,
        stock: &mut MemStock,
        rng: &mut StdRng,
    ) -> RaffleAward {
        pollster::block_on(perform_raffle(s, f, stock, rng)).unwrap()
    }

    /// Upstream's 100004 gives luck award 101 once 109's one unit is gone, but 101 is not
    /// among its awards: it is served as the award table describes it, off the grid.
    #[test]
    fn a_luck_award_outside_the_strategy_comes_from_the_award_table() {
        let s = sample::assembled(100004);
        let mut stock = MemStock(HashMap::from([(109, 1)]));
        let mut rng = StdRng::seed_from_u64(7);
        let first = draw(&s, &factor("system", 0, 0), &mut stock, &mut rng);
        assert_eq!((first.award_id, first.sort), (109, 9));
        let second = draw(&s, &factor("system", 0, 0), &mut stock, &mut rng);
        assert_eq!(
            (
                second.award_id,
                second.award_title.as_str(),
                second.award_config.as_deref(),
                second.sort
            ),
            (
                101,
                "用户积分【优先透彻规则范围，如果没有则走配置】",
                Some("1,100"),
                0
            )
        );
    }

    /// A rule naming an award that neither the strategy nor the award table has stops
    /// the strategy at armory, not at a user's draw.
    #[test]
    fn a_luck_award_nobody_has_is_refused_at_armory() {
        let mut config = sample::SampleData::upstream().strategy_config(100004);
        config.award_table.retain(|a| a.award_id != 101);
        let err = AssembledStrategy::assemble(config).unwrap_err();
        assert!(
            err.to_string()
                .contains("strategy 100004 has no award 101 (named by a rule)"),
            "{err}"
        );
    }

    #[test]
    fn blacklist_takes_over_without_stock() {
        let s = sample::assembled(100006);
        let mut stock = MemStock::default();
        let mut rng = StdRng::seed_from_u64(7);
        let a = draw(&s, &factor("user001", 10, 1), &mut stock, &mut rng);
        assert_eq!(
            (a.award_id, a.award_config.as_deref(), a.rule_model),
            (101, Some("0.01,1"), "rule_blacklist")
        );
    }

    #[test]
    fn weight_applies_exactly_at_thresholds() {
        let s = sample::assembled(100006);
        let mut rng = StdRng::seed_from_u64(7);
        for (used, allowed) in [
            (10, vec![102, 103]),
            (70, vec![106, 107]),
            (1000, vec![104, 105]),
        ] {
            for _ in 0..50 {
                let mut stock = MemStock(HashMap::from([
                    (102, 9),
                    (103, 9),
                    (104, 9),
                    (105, 9),
                    (106, 9),
                    (107, 9),
                ]));
                let a = draw(&s, &factor("xiaofuge", used, 5), &mut stock, &mut rng);
                assert_eq!(a.rule_model, "rule_weight");
                // 105's tree (tree_lock_3) always ends with the luck award 101.
                assert!(
                    allowed.contains(&a.award_id) || a.award_id == 101,
                    "{used}: {a:?}"
                );
            }
        }
        for used in [0, 9, 11, 69, 71, 999, 1001] {
            let mut stock = MemStock::default();
            let a = draw(&s, &factor("xiaofuge", used, 0), &mut stock, &mut rng);
            assert_eq!(a.rule_model, "rule_default", "{used}");
        }
    }

    #[test]
    fn weight_award_runs_its_tree_and_respects_stock() {
        let s = sample::assembled(100006);
        let mut rng = StdRng::seed_from_u64(3);
        // 102 and 103 have no stock: the weight draw must fall back to the luck award.
        let mut stock = MemStock::default();
        for _ in 0..100 {
            let a = draw(&s, &factor("xiaofuge", 10, 1), &mut stock, &mut rng);
            assert_eq!(
                (a.award_id, a.award_config.as_deref()),
                (101, Some("1,100"))
            );
        }
    }

    #[test]
    fn default_draw_grants_exactly_the_stock() {
        let s = sample::assembled(100006);
        let mut rng = StdRng::seed_from_u64(11);
        let mut stock = MemStock(HashMap::from([
            (101, 1_000_000),
            (102, 3),
            (103, 3),
            (104, 3),
            (106, 3),
            (107, 3),
            (108, 3),
        ]));
        let mut granted: HashMap<i32, i64> = HashMap::new();
        for _ in 0..20_000 {
            let a = draw(&s, &factor("u", 1, 5), &mut stock, &mut rng);
            *granted.entry(a.award_id).or_default() += 1;
        }
        for aid in [102, 103, 104, 106, 107] {
            assert_eq!(granted.get(&aid).copied().unwrap_or(0), 3, "award {aid}");
        }
        assert!(!granted.contains_key(&105), "tree_lock_3 never grants 105");
    }

    #[test]
    fn blank_user_is_illegal() {
        let s = sample::assembled(100001);
        let e = pollster::block_on(perform_raffle(
            &s,
            &factor(" ", 0, 0),
            &mut MemStock::default(),
            &mut StdRng::seed_from_u64(1),
        ))
        .unwrap_err();
        assert_eq!(e.code(), crate::error::ResponseCode::IllegalParameter);
    }
}
