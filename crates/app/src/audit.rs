//! `big-market audit`: draws samples from each strategy's tables and prints the
//! configured odds against the observed ones, with a chi-square p-value.

use big_market_domain::strategy::AssembledStrategy;
use big_market_domain::strategy::audit::{TableAudit, audit_strategy};
use std::fmt::Write;

/// Audits `strategies` with `samples` draws per table using the OS-seeded CSPRNG.
pub fn run(strategies: &[std::sync::Arc<AssembledStrategy>], samples: u64) -> Vec<TableAudit> {
    let mut rng = rand::rng();
    strategies
        .iter()
        .flat_map(|s| audit_strategy(s, samples, &mut rng))
        .collect()
}

/// The report as text.
pub fn render(tables: &[TableAudit]) -> String {
    let mut out = String::new();
    for t in tables {
        let _ = writeln!(
            out,
            "table {}  samples {}  chi2 {:.3}  df {}  p-value {:.4}{}",
            t.key,
            t.samples,
            t.chi_square,
            t.degrees_of_freedom,
            t.p_value,
            if t.p_value < 1e-6 { "  DEVIATES" } else { "" }
        );
        let _ = writeln!(
            out,
            "  {:>8}  {:>8}  {:>12}  {:>10}  {:>12}  {:>10}",
            "award", "rate", "probability", "observed", "frequency", "rel.dev"
        );
        for a in &t.awards {
            let _ = writeln!(
                out,
                "  {:>8}  {:>8}  {:>12.6}  {:>10}  {:>12.6}  {:>+9.3}%",
                a.award_id,
                a.rate.to_string(),
                a.expected_probability,
                a.observed,
                a.observed_frequency,
                a.relative_deviation * 100.0
            );
        }
        out.push('\n');
    }
    out
}
