//! Auditable odds: draw N samples from a table and compare with the configured rates.
//!
//! Reports per award the configured probability (rate normalised by the table's total),
//! the observed frequency and the relative deviation, and a chi-square goodness-of-fit
//! p-value. `big-market audit` prints it; the test suite fails on a real deviation.

use super::alias::AliasTable;
use super::armory::AssembledStrategy;
use rand::Rng;
use rust_decimal::Decimal;

/// One award's line of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct AwardAudit {
    pub award_id: i32,
    pub rate: Decimal,
    pub expected_probability: f64,
    pub observed: u64,
    pub observed_frequency: f64,
    /// `(observed − expected) / expected`.
    pub relative_deviation: f64,
}

/// The report of one table (`{strategyId}` or `{strategyId}_{group}`).
#[derive(Debug, Clone, PartialEq)]
pub struct TableAudit {
    pub key: String,
    pub samples: u64,
    pub awards: Vec<AwardAudit>,
    pub chi_square: f64,
    pub degrees_of_freedom: u64,
    pub p_value: f64,
}

/// Audits the default table and every weight-group table of a strategy.
pub fn audit_strategy<R: Rng + ?Sized>(
    strategy: &AssembledStrategy,
    samples: u64,
    rng: &mut R,
) -> Vec<TableAudit> {
    let id = strategy.strategy_id();
    let mut out = vec![audit_table(
        id.to_string(),
        strategy,
        &strategy.default_table,
        samples,
        rng,
    )];
    for g in strategy.weight_groups().unwrap_or(&[]) {
        out.push(audit_table(
            format!("{id}_{}", g.token),
            strategy,
            &g.table,
            samples,
            rng,
        ));
    }
    out
}

fn audit_table<R: Rng + ?Sized>(
    key: String,
    strategy: &AssembledStrategy,
    table: &AliasTable<i32>,
    samples: u64,
    rng: &mut R,
) -> TableAudit {
    let ids = table.entries();
    let mut counts = vec![0u64; ids.len()];
    for _ in 0..samples {
        let drawn = table.sample(rng);
        if let Some(count) = ids
            .iter()
            .position(|a| a == drawn)
            .and_then(|i| counts.get_mut(i))
        {
            *count += 1;
        }
    }
    let rates: Vec<Decimal> = ids
        .iter()
        .map(|a| strategy.award(*a).map(|x| x.award_rate).unwrap_or_default())
        .collect();
    let total: Decimal = rates.iter().copied().sum();
    let mut chi_square = 0.0;
    let awards = ids
        .iter()
        .zip(&counts)
        .zip(&rates)
        .map(|((award_id, observed), rate)| {
            let p = decimal_ratio(*rate, total);
            let expected = p * samples as f64;
            let observed_f = *observed as f64;
            chi_square += (observed_f - expected).powi(2) / expected;
            AwardAudit {
                award_id: *award_id,
                rate: *rate,
                expected_probability: p,
                observed: *observed,
                observed_frequency: observed_f / samples as f64,
                relative_deviation: (observed_f - expected) / expected,
            }
        })
        .collect();
    let dof = (ids.len() as u64).saturating_sub(1);
    let p_value = if dof == 0 {
        1.0
    } else {
        chi_square_survival(chi_square, dof as f64)
    };
    TableAudit {
        key,
        samples,
        awards,
        chi_square,
        degrees_of_freedom: dof,
        p_value,
    }
}

fn decimal_ratio(a: Decimal, b: Decimal) -> f64 {
    use rust_decimal::prelude::ToPrimitive;
    (a / b).to_f64().unwrap_or(0.0)
}

/// P(X ≥ x) for a chi-square variable with `k` degrees of freedom: Q(k/2, x/2).
pub fn chi_square_survival(x: f64, k: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(k / 2.0, x / 2.0)
}

/// Regularised upper incomplete gamma Q(a, x): series for x < a + 1, else a continued
/// fraction (Lentz), both to double precision.
fn gamma_q(a: f64, x: f64) -> f64 {
    let ln_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        let (mut sum, mut term, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..10_000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        1.0 - sum * ln_prefix.exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        ln_prefix.exp() * h
    }
}

/// ln Γ(x) by the Lanczos approximation (g = 7, n = 9), x > 0.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let [mut a, rest @ ..] = G;
    let t = x + 7.5;
    for (i, g) in (1u32..).zip(rest) {
        a += g / (x + f64::from(i));
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{SampleData, assembled};
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn chi_square_survival_matches_tables() {
        // Critical values from standard chi-square tables.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-4;
        assert!(close(chi_square_survival(3.841, 1.0), 0.05));
        assert!(close(chi_square_survival(15.507, 8.0), 0.05));
        assert!(close(chi_square_survival(20.090, 8.0), 0.01));
        assert!(close(chi_square_survival(0.0, 3.0), 1.0));
        assert!(chi_square_survival(200.0, 8.0) < 1e-30);
    }

    /// Every table of every sample strategy matches its configured odds. The seed is fixed
    /// so the run is reproducible; a broken table gives p ≈ 0, far below the bound.
    #[test]
    fn sample_strategies_have_exactly_their_configured_odds() {
        let mut rng = StdRng::seed_from_u64(20261125);
        for s in SampleData::upstream().strategies {
            let a = assembled(s.strategy_id);
            for t in audit_strategy(&a, 400_000, &mut rng) {
                assert!(
                    t.p_value > 1e-6,
                    "{}: chi2 {} p {}",
                    t.key,
                    t.chi_square,
                    t.p_value
                );
                for aw in &t.awards {
                    // Large awards must be within 2% relative; rare ones are covered by chi-square.
                    if aw.expected_probability > 0.05 {
                        assert!(aw.relative_deviation.abs() < 0.02, "{}: {aw:?}", t.key);
                    }
                }
            }
        }
    }

    /// The audit notices a table that does not match: here 100002's rates are audited
    /// against a table built with one award's weight doubled.
    #[test]
    fn audit_detects_a_wrong_table() {
        let a = assembled(100002);
        let wrong = AliasTable::new(vec![(101, 5000u64), (102, 2000), (106, 100)]).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let t = audit_table("wrong".into(), &a, &wrong, 200_000, &mut rng);
        assert!(t.p_value < 1e-6, "p {}", t.p_value);
    }
}
