//! Simulation: what a campaign gives away, found by running the draw itself.
//!
//! The document is assembled by the real armory and every draw runs the real chain and
//! tree ([`perform_raffle`]) against award stock held in memory, with a seeded random
//! generator: the same input gives the same answer, and nothing is stored. Users draw in
//! rounds (each user's first draw, then each user's second, …), all on one day, so
//! `rule_weight` applies at a user's draw number equal to a threshold and `rule_lock`
//! opens at the lock count. The blacklist's users, if any, are the first users.

use super::apply::to_strategy_config;
use super::document::CampaignDocument;
use crate::error::{Error, Result};
use crate::strategy::armory::ChainRule;
use crate::strategy::{AssembledStrategy, RaffleFactor, StockStore, model, perform_raffle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Most draws one simulation may run (about a second of one CPU per million).
pub const MAX_SIMULATED_DRAWS: u64 = 1_000_000;

/// How many users draw how often, with which seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationRequest {
    pub users: u32,
    pub draws_per_user: u32,
    pub seed: u64,
}

impl SimulationRequest {
    pub fn check(&self) -> Result<()> {
        let draws = u64::from(self.users) * u64::from(self.draws_per_user);
        if self.users == 0 || self.draws_per_user == 0 || draws > MAX_SIMULATED_DRAWS {
            return Err(Error::illegal(format!(
                "users and drawsPerUser must be at least 1, and users × drawsPerUser at most {MAX_SIMULATED_DRAWS}"
            )));
        }
        Ok(())
    }
}

/// Awards won, by the rule that decided them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ByRule {
    pub default: u64,
    pub weight: u64,
    /// The tree replaced the drawn award with its luck award (locked, or out of stock).
    pub luck: u64,
    pub blacklist: u64,
}

/// One award's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwardOutcome {
    pub award_id: i32,
    pub award_title: String,
    /// Draws × the award's share of the rates: what the configured odds alone would give.
    pub expected: f64,
    pub granted: u64,
    /// The draw (1-based, over all users) that took the last unit; `null` if stock lasted.
    pub stock_out_at_draw: Option<u64>,
    pub by_rule: ByRule,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Simulation {
    pub strategy_id: i64,
    pub users: u32,
    pub draws_per_user: u32,
    pub seed: u64,
    pub draws: u64,
    /// In the strategy's order (`sort`).
    pub awards: Vec<AwardOutcome>,
}

/// Award stock in memory: exact, never below zero; notes the draw that emptied it.
struct MemoryStock {
    left: HashMap<i32, i64>,
    draw: u64,
    emptied: HashMap<i32, u64>,
}

impl StockStore for MemoryStock {
    async fn take_award_stock(&mut self, _strategy_id: i64, award_id: i32) -> Result<bool> {
        let Some(left) = self.left.get_mut(&award_id) else {
            return Ok(false);
        };
        if *left <= 0 {
            return Ok(false);
        }
        *left -= 1;
        if *left == 0 {
            self.emptied.insert(award_id, self.draw);
        }
        Ok(true)
    }
}

/// A validated document with the award table its rules may name.
#[derive(Debug, Clone)]
pub struct SimulationInput {
    pub doc: CampaignDocument,
    pub award_table: Vec<crate::award::Award>,
}

/// Runs the simulation (see `CampaignService::simulation_input` for its input).
pub fn simulate(input: &SimulationInput, request: &SimulationRequest) -> Result<Simulation> {
    request.check()?;
    let strategy =
        AssembledStrategy::assemble(to_strategy_config(&input.doc, &input.award_table)?)?;
    let mut users: Vec<String> = Vec::new();
    for rule in &strategy.chain {
        if let ChainRule::Blacklist(b) = rule {
            let mut listed: Vec<&String> = b.users.iter().collect();
            listed.sort();
            users.extend(listed.into_iter().cloned());
        }
    }
    let wanted = request.users as usize;
    users.truncate(wanted);
    let mut n = 0u32;
    while users.len() < wanted {
        n += 1;
        let id = format!("sim-{n:07}");
        if !users.contains(&id) {
            users.push(id);
        }
    }
    let mut stock = MemoryStock {
        left: strategy
            .awards
            .iter()
            .map(|a| (a.award_id, a.award_count))
            .collect(),
        draw: 0,
        emptied: HashMap::new(),
    };
    let mut rng = StdRng::seed_from_u64(request.seed);
    let mut won: HashMap<i32, ByRule> = HashMap::new();
    for round in 1..=i64::from(request.draws_per_user) {
        for user in &users {
            stock.draw += 1;
            let factor = RaffleFactor {
                user_id: user.clone(),
                total_used: round,
                today_used: round,
            };
            // The stock store and every rule are synchronous in memory: the future is
            // ready at its first poll.
            let award = block_on_ready(perform_raffle(&strategy, &factor, &mut stock, &mut rng))?;
            let by = won.entry(award.award_id).or_default();
            if award.by_luck {
                by.luck += 1;
            } else {
                match award.rule_model {
                    model::BLACKLIST => by.blacklist += 1,
                    model::WEIGHT => by.weight += 1,
                    _ => by.default += 1,
                }
            }
        }
    }
    let draws = stock.draw;
    let total_rate: Decimal = strategy.awards.iter().map(|a| a.award_rate).sum();
    let awards = strategy
        .awards
        .iter()
        .map(|a| {
            let by_rule = won.get(&a.award_id).copied().unwrap_or_default();
            let share = if total_rate.is_zero() {
                0.0
            } else {
                (a.award_rate / total_rate).to_f64().unwrap_or(0.0)
            };
            AwardOutcome {
                award_id: a.award_id,
                award_title: a.award_title.clone(),
                expected: share * draws as f64,
                granted: by_rule.default + by_rule.weight + by_rule.luck + by_rule.blacklist,
                stock_out_at_draw: stock.emptied.get(&a.award_id).copied(),
                by_rule,
            }
        })
        .collect();
    Ok(Simulation {
        strategy_id: strategy.strategy_id(),
        users: request.users,
        draws_per_user: request.draws_per_user,
        seed: request.seed,
        draws,
        awards,
    })
}

/// Polls a future that never waits (in-memory ports) to its end.
fn block_on_ready<F: Future>(f: F) -> F::Output {
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
