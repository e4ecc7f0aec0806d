//! Vose alias tables over exact integer weights.
//!
//! Why not upstream's slot table: upstream repeats each award `rate × range` times, so a
//! rate of 1e-8 needs 10⁸ slots, and its truncation changes the odds. An alias table has
//! one column per award whatever the precision, draws in O(1) with one random number, and
//! (because it is built with integers only) gives every award exactly `weight / total`.

#![cfg_attr(not(test), deny(clippy::as_conversions))]

use rand::Rng;

/// One column: with `threshold / total` keep the column's own entry, otherwise take `alias`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Column {
    threshold: u64,
    alias: usize,
}

/// An alias table over entries of type `T` (award ids in practice).
#[derive(Debug, Clone)]
pub struct AliasTable<T> {
    entries: Vec<T>,
    columns: Vec<Column>,
    /// Sum of the positive weights; each column spans `total` units.
    total: u64,
    /// `columns.len() × total`: one uniform draw in `[0, span)` picks column and offset.
    span: u64,
}

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasError {
    /// No entry has a positive weight.
    Empty,
    /// The weights do not fit the integer arithmetic (sum × count over `u64`).
    Overflow,
}

impl<T: Clone> AliasTable<T> {
    /// Builds the table. Entries with weight 0 are dropped: they can never be drawn.
    pub fn new(weighted: impl IntoIterator<Item = (T, u64)>) -> Result<Self, AliasError> {
        let (entries, weights): (Vec<T>, Vec<u64>) =
            weighted.into_iter().filter(|(_, w)| *w > 0).unzip();
        let n = u64::try_from(entries.len()).map_err(|_| AliasError::Overflow)?;
        if n == 0 {
            return Err(AliasError::Empty);
        }
        if u32::try_from(n).is_err() {
            return Err(AliasError::Overflow);
        }
        let total = weights
            .iter()
            .try_fold(0u64, |acc, w| acc.checked_add(*w))
            .ok_or(AliasError::Overflow)?;
        let span = total.checked_mul(n).ok_or(AliasError::Overflow)?;

        // Scaled weights: each column holds `total` units, the weights sum to `n × total`.
        // Column `i` is `columns[i]`; its scaled weight travels with it while unsettled.
        let mut columns = vec![
            Column {
                threshold: total,
                alias: 0
            };
            entries.len()
        ];
        // (column, scaled weight) of the columns under and over `total`.
        type Columns = Vec<(usize, u64)>;
        let (mut small, mut large): (Columns, Columns) = weights
            .iter()
            .map(|w| w * n)
            .enumerate()
            .partition(|&(_, w)| w < total);
        while let (Some((s, ws)), Some((l, wl))) = (small.pop(), large.pop()) {
            if let Some(column) = columns.get_mut(s) {
                *column = Column {
                    threshold: ws,
                    alias: l,
                };
            }
            // The large entry gives `total - ws` units to fill column `s`.
            let left = wl - (total - ws);
            if left < total {
                small.push((l, left));
            } else {
                large.push((l, left));
            }
        }
        // Whatever is left is exactly full (integer arithmetic leaves no rounding residue):
        // the column keeps its own entry, which `threshold: total` already says.
        Ok(Self {
            entries,
            columns,
            total,
            span,
        })
    }

    /// Draws one entry: O(1), one random number.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> &T {
        let r = rng.random_range(0..self.span);
        // `span = total × columns`, so the column is always in range, and so is every
        // alias (set from an entry's index): the fallbacks are never taken.
        let col = usize::try_from(r / self.total).unwrap_or_default();
        let offset = r % self.total;
        let index = match self.columns.get(col) {
            Some(column) if offset >= column.threshold => column.alias,
            _ => col,
        };
        self.entries
            .get(index)
            .or_else(|| self.entries.first())
            .unwrap_or_else(|| unreachable!("an alias table has at least one entry"))
    }

    /// The entries that can be drawn, in construction order.
    pub fn entries(&self) -> &[T] {
        &self.entries
    }

    /// Number of drawable entries (columns).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The exact probability of each entry as `(numerator, denominator)` reconstructed from
    /// the columns; used by the tests to prove the construction is exact.
    pub fn exact_mass(&self) -> Vec<(u64, u64)> {
        let mut mass = vec![0u64; self.columns.len()];
        for (i, c) in self.columns.iter().enumerate() {
            if let Some(m) = mass.get_mut(i) {
                *m += c.threshold;
            }
            if let Some(m) = mass.get_mut(c.alias) {
                *m += self.total - c.threshold;
            }
        }
        mass.into_iter().map(|m| (m, self.span)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn empty_or_all_zero_is_rejected() {
        assert_eq!(
            AliasTable::<u32>::new(vec![]).unwrap_err(),
            AliasError::Empty
        );
        assert_eq!(
            AliasTable::new(vec![(1u32, 0)]).unwrap_err(),
            AliasError::Empty
        );
    }

    #[test]
    fn single_entry_always_drawn() {
        let t = AliasTable::new(vec![(7u32, 3), (8, 0)]).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            assert_eq!(*t.sample(&mut rng), 7);
        }
    }

    #[test]
    fn upstream_sample_100001_is_exact() {
        // 0.30 0.20 0.20 0.10 0.10 0.05 0.04 0.0099 0.0001 as basis points.
        let w = [3000u64, 2000, 2000, 1000, 1000, 500, 400, 99, 1];
        let t = AliasTable::new(w.iter().enumerate().map(|(i, w)| (i, *w))).unwrap();
        let total: u64 = w.iter().sum();
        for (i, (num, den)) in t.exact_mass().into_iter().enumerate() {
            // num/den == w[i]/total, cross-multiplied to stay exact.
            assert_eq!(
                u128::from(num) * u128::from(total),
                u128::from(w[i]) * u128::from(den)
            );
        }
    }

    proptest! {
        /// Any weights, including tiny and very skewed ones: the reconstructed mass is
        /// exactly weight/total, zero weights are never drawable.
        #[test]
        fn mass_is_exact(weights in prop::collection::vec(prop_oneof![Just(0u64), 1u64..10, 1u64..1_000_000_000], 1..60)) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let t = AliasTable::new(weights.iter().enumerate().map(|(i, w)| (i, *w))).unwrap();
            let total: u64 = weights.iter().sum();
            let positive: Vec<usize> = (0..weights.len()).filter(|i| weights[*i] > 0).collect();
            prop_assert_eq!(t.entries(), positive.as_slice());
            for (k, (num, den)) in t.exact_mass().into_iter().enumerate() {
                let w = weights[t.entries()[k]];
                prop_assert!(num > 0, "positive weight must be reachable");
                prop_assert_eq!(u128::from(num) * u128::from(total), u128::from(w) * u128::from(den));
            }
        }

        /// Sampling: zero-weight entries never come out, and observed frequencies converge
        /// to the weights (bound 6 standard deviations plus slack: cannot flake in practice).
        #[test]
        fn sampling_converges(weights in prop::collection::vec(prop_oneof![Just(0u64), 1u64..5, 1u64..10_000], 1..12), seed in any::<u64>()) {
            prop_assume!(weights.iter().any(|w| *w > 0));
            let t = AliasTable::new(weights.iter().enumerate().map(|(i, w)| (i, *w))).unwrap();
            let total: u64 = weights.iter().sum();
            let n = 40_000u64;
            let mut counts = vec![0u64; weights.len()];
            let mut rng = StdRng::seed_from_u64(seed);
            for _ in 0..n { counts[*t.sample(&mut rng)] += 1; }
            for (i, w) in weights.iter().enumerate() {
                if *w == 0 { prop_assert_eq!(counts[i], 0); continue; }
                let p = *w as f64 / total as f64;
                let expected = p * n as f64;
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                prop_assert!((counts[i] as f64 - expected).abs() <= 6.0 * sd + 3.0,
                    "entry {i}: observed {} expected {expected:.1}", counts[i]);
            }
        }
    }
}
