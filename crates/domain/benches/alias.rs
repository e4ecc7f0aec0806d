//! One draw from an alias table, the RNG included (`rand::rng()`, a ChaCha CSPRNG seeded
//! by the OS). Run: `cargo bench -p big-market-domain --bench alias`.

use big_market_domain::sample;
use big_market_domain::strategy::{AssembledStrategy, Strategy, StrategyAward, StrategyConfig};
use rand::Rng;
use rust_decimal::Decimal;
use std::hint::black_box;

fn main() {
    divan::main();
}

/// A strategy of `n` awards whose rates are multiples of 1e-6 summing to 1.
fn generated(n: usize) -> AssembledStrategy {
    let mut rng = rand::rng();
    let mut weights: Vec<i64> = (0..n).map(|_| rng.random_range(1..2_000)).collect();
    let sum: i64 = weights.iter().sum();
    // Scale to a total of exactly 1_000_000 micro-units.
    let mut scaled: Vec<i64> = weights
        .iter()
        .map(|w| (w * 1_000_000 / sum).max(1))
        .collect();
    let diff = 1_000_000 - scaled.iter().sum::<i64>();
    scaled[0] += diff;
    weights = scaled;
    let awards = weights
        .iter()
        .enumerate()
        .map(|(i, w)| StrategyAward {
            strategy_id: 1,
            award_id: i as i32 + 1,
            award_title: format!("award {i}"),
            award_subtitle: None,
            award_count: 1,
            award_count_surplus: 1,
            award_rate: Decimal::new(*w, 6),
            rule_models: None,
            sort: i as i32,
        })
        .collect();
    AssembledStrategy::assemble(StrategyConfig {
        strategy: Some(Strategy {
            strategy_id: 1,
            strategy_desc: "generated".into(),
            rule_models: None,
        }),
        awards,
        ..StrategyConfig::default()
    })
    .expect("generated strategy assembles")
}

#[divan::bench]
fn draw_100001_default_table(bencher: divan::Bencher) {
    let s = sample::assembled(100001);
    let mut rng = rand::rng();
    bencher.bench_local(|| *black_box(&s.default_table).sample(&mut rng));
}

#[divan::bench]
fn draw_generated_1000_awards_1e6_resolution(bencher: divan::Bencher) {
    let s = generated(1000);
    assert_eq!(s.default_table.len(), 1000, "one column per award");
    let mut rng = rand::rng();
    bencher.bench_local(|| *black_box(&s.default_table).sample(&mut rng));
}
