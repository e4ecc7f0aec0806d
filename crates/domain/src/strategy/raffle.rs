//! The raffle: the pre-draw chain, then the drawn award's rule tree.
//!
//! Order as upstream: `strategy.rule_models` in configured order, then `rule_default`.
//! A blacklist hit returns at once. **Deliberate change:** an award picked by
//! `rule_weight` runs its rule tree like a default draw, so award stock can never be
//! exceeded whichever rule picked the award (upstream skips the tree and can over-grant).

use super::armory::{AssembledStrategy, ChainRule};
use super::fair::{FairDraw, fair_number, pick};
use super::model;
use super::rules::BLACKLIST_AWARD_CONFIG;
use crate::error::{Error, Result};
use jiff::civil::DateTime;
use rand::Rng;

/// Award stock, taken inside the draw's unit of work. Implementations must be exact under
/// concurrency: `true` only when a unit was really taken, never below zero.
#[allow(async_fn_in_trait)]
pub trait StockStore {
    ///
    /// `held_back`: units that must stay (not released yet by the award's release plan);
    /// a unit is taken only while more than that are left, in the same guarded write.
    async fn take_award_stock(
        &mut self,
        strategy_id: i64,
        award_id: i32,
        held_back: i64,
    ) -> Result<bool>;
}

/// Who draws and how far they are: the inputs of `rule_weight` and `rule_lock`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaffleFactor {
    pub user_id: String,
    /// Draws used in the strategy's activity, the current one included.
    pub total_used: i64,
    /// Draws used today in the strategy's activity, the current one included.
    pub today_used: i64,
    /// When the draw happens (the release plans of paced awards read it).
    pub now: DateTime,
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

/// Where a draw's random number comes from: the process's generator (the OS-seeded
/// CSPRNG), or the committed seed of a fair activity.
pub enum Randomness<'a, R: ?Sized> {
    Generator(&'a mut R),
    Fair(&'a FairDraw),
}

/// How a fair draw reached its award: the proof's data, less the order and the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FairTrace {
    pub draw_no: i64,
    /// `default`, `weight:N` or `blacklist`.
    pub table: String,
    pub weights: Vec<(i32, u64)>,
    pub sampled_award_id: i32,
    /// `drawn`, `locked`, `sold_out`, `luck_award` or `blacklist`.
    pub reason: &'static str,
}

/// Runs the chain and the tree for one draw.
pub async fn perform_raffle<S: StockStore + ?Sized, R: Rng + ?Sized>(
    strategy: &AssembledStrategy,
    factor: &RaffleFactor,
    stock: &mut S,
    rng: &mut R,
) -> Result<RaffleAward> {
    raffle(strategy, factor, stock, Randomness::Generator(rng))
        .await
        .map(|(award, _)| award)
}

/// Picks from a table: the alias table with the generator, or (fair) the documented
/// HMAC number over the table's exact weights.
fn sample<R: Rng + ?Sized>(
    randomness: &mut Randomness<'_, R>,
    table: &super::AliasTable<i32>,
    weights: &[(i32, u64)],
    name: String,
    factor: &RaffleFactor,
) -> Result<(i32, Option<FairTrace>)> {
    match randomness {
        Randomness::Generator(rng) => Ok((*table.sample(*rng), None)),
        Randomness::Fair(fair) => {
            let total = weights
                .iter()
                .try_fold(0u64, |acc, (_, w)| acc.checked_add(*w))
                .ok_or_else(|| Error::config("table weights overflow"))?;
            let draw_no = factor.total_used;
            let x = fair_number(
                &fair.seed,
                fair.activity_id,
                &factor.user_id,
                draw_no,
                &fair.client_seed,
                total,
            )?;
            let award_id = pick(weights, x)
                .ok_or_else(|| Error::config("a fair number fell outside its table"))?;
            Ok((
                award_id,
                Some(FairTrace {
                    draw_no,
                    table: name,
                    weights: weights.to_vec(),
                    sampled_award_id: award_id,
                    reason: "drawn",
                }),
            ))
        }
    }
}

/// [`perform_raffle`] with the randomness chosen by the caller; a fair draw also returns
/// how it reached its award.
pub async fn raffle<S: StockStore + ?Sized, R: Rng + ?Sized>(
    strategy: &AssembledStrategy,
    factor: &RaffleFactor,
    stock: &mut S,
    mut randomness: Randomness<'_, R>,
) -> Result<(RaffleAward, Option<FairTrace>)> {
    if factor.user_id.trim().is_empty() {
        return Err(Error::illegal("userId is blank"));
    }
    let fair = matches!(randomness, Randomness::Fair(_));
    let mut picked: Option<(i32, &'static str, Option<FairTrace>)> = None;
    for rule in &strategy.chain {
        match rule {
            ChainRule::Blacklist(b) => {
                if b.users.contains(&factor.user_id) {
                    let award = finish(
                        strategy,
                        b.award_id,
                        Some(BLACKLIST_AWARD_CONFIG.to_owned()),
                        model::BLACKLIST,
                        false,
                    )?;
                    let trace = fair.then(|| FairTrace {
                        draw_no: factor.total_used,
                        table: "blacklist".to_owned(),
                        weights: Vec::new(),
                        sampled_award_id: b.award_id,
                        reason: "blacklist",
                    });
                    return Ok((award, trace));
                }
            }
            ChainRule::Weight(groups) => {
                if let Some(g) = groups.iter().find(|g| g.threshold == factor.total_used) {
                    let (award_id, trace) = sample(
                        &mut randomness,
                        &g.table,
                        &g.weights,
                        format!("weight:{}", g.threshold),
                        factor,
                    )?;
                    picked = Some((award_id, model::WEIGHT, trace));
                    break;
                }
            }
        }
    }
    let (award_id, rule_model, trace) = match picked {
        Some(p) => p,
        None => {
            let (award_id, trace) = sample(
                &mut randomness,
                &strategy.default_table,
                &strategy.default_weights,
                "default".to_owned(),
                factor,
            )?;
            (award_id, model::DEFAULT, trace)
        }
    };

    let Some(tree) = strategy.tree_of(award_id) else {
        return Ok((finish(strategy, award_id, None, rule_model, false)?, trace));
    };
    let decided = tree
        .process(
            strategy.strategy_id(),
            award_id,
            factor.today_used,
            strategy.held_back(award_id, factor.now),
            stock,
        )
        .await?;
    let trace = trace.map(|t| FairTrace {
        reason: decided.reason,
        ..t
    });
    let by_luck = decided.award_id != award_id;
    Ok((
        finish(
            strategy,
            decided.award_id,
            decided.award_config,
            rule_model,
            by_luck,
        )?,
        trace,
    ))
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
        async fn take_award_stock(
            &mut self,
            _: i64,
            award_id: i32,
            held_back: i64,
        ) -> Result<bool> {
            let left = self.0.entry(award_id).or_insert(0);
            if *left > held_back {
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
            now: crate::time::parse_datetime("2026-12-02 10:00:00").unwrap(),
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
