//! Prize pacing: an award's stock released over the activity's time instead of all at
//! once. A unit not yet released counts as sold out for now: the rule tree's stock node
//! fails and the luck award is given.
//!
//! A plan is a `strategy_rule` row of the award (`rule_model = 'rule_release'`):
//! `even` releases the stock linearly between the activity's begin and end,
//! `released(t) = ceil(stock × (t − begin) / (end − begin))`; `1h:N` or `1d:N` releases
//! `N` units at the begin and `N` more every hour or day. Exact under concurrency: a store
//! takes a unit only while more than `stock − released(t)` are left
//! ([`StockStore::take_award_stock`](super::StockStore)'s `held_back`), in the same guarded
//! write that keeps stock from going below zero, so `granted ≤ released(t)` at every
//! moment and `granted + left = stock`.

#![cfg_attr(not(test), deny(clippy::as_conversions))]

use crate::error::{Error, Result};
use jiff::civil::DateTime;

/// How an award's stock is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleasePlan {
    /// Linearly between the activity's begin and end.
    Even,
    /// `units` at the begin and `units` more every `period_secs`.
    Every { period_secs: i64, units: i64 },
}

/// The rule model of a release plan.
pub const RULE_RELEASE: &str = "rule_release";

impl ReleasePlan {
    /// Parses `even`, `1h:N` or `1d:N` (N ≥ 1).
    pub fn parse(strategy_id: i64, award_id: i32, value: &str) -> Result<Self> {
        let bad = || {
            Error::config(format!(
                "strategy {strategy_id} award {award_id}: rule_release {value:?} is not even, 1h:N or 1d:N"
            ))
        };
        let value = value.trim();
        if value == "even" {
            return Ok(Self::Even);
        }
        let (period, units) = value.split_once(':').ok_or_else(bad)?;
        let period_secs = match period.trim() {
            "1h" => 3_600,
            "1d" => 86_400,
            _ => return Err(bad()),
        };
        let units: i64 = units.trim().parse().map_err(|_| bad())?;
        if units < 1 {
            return Err(bad());
        }
        Ok(Self::Every { period_secs, units })
    }

    /// Units of `stock` released at `now` for an activity from `begin` to `end`, in
    /// `[0, stock]`.
    pub fn released(&self, stock: i64, begin: DateTime, end: DateTime, now: DateTime) -> i64 {
        let stock = stock.max(0);
        if now < begin {
            return 0;
        }
        let elapsed = i128::from(now.duration_since(begin).as_secs());
        let released = match *self {
            Self::Even => {
                let span = i128::from(end.duration_since(begin).as_secs());
                if span <= 0 || now >= end {
                    i128::from(stock)
                } else {
                    // ceil(stock × elapsed / span), in integers.
                    (i128::from(stock) * elapsed + span - 1) / span
                }
            }
            Self::Every { period_secs, units } => {
                (elapsed / i128::from(period_secs.max(1)) + 1) * i128::from(units)
            }
        };
        i64::try_from(released.clamp(0, i128::from(stock))).unwrap_or(stock)
    }

    /// Units that must stay in stock at `now`: `stock − released(now)`.
    pub fn held_back(&self, stock: i64, begin: DateTime, end: DateTime, now: DateTime) -> i64 {
        stock.max(0) - self.released(stock, begin, end, now)
    }

    /// The plan as configured (`even`, `1h:N`, `1d:N`).
    pub fn describe(&self) -> String {
        match self {
            Self::Even => "even".to_owned(),
            Self::Every { period_secs, units } => {
                let period = if *period_secs == 3_600 { "1h" } else { "1d" };
                format!("{period}:{units}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime {
        crate::time::parse_datetime(s).unwrap()
    }

    #[test]
    fn plans_parse_and_bad_ones_name_the_award() {
        assert_eq!(
            ReleasePlan::parse(1, 2, " even ").unwrap(),
            ReleasePlan::Even
        );
        assert_eq!(
            ReleasePlan::parse(1, 2, "1h:5").unwrap(),
            ReleasePlan::Every {
                period_secs: 3600,
                units: 5
            }
        );
        for bad in ["", "2h:1", "1d:0", "1d:x", "odd"] {
            let e = ReleasePlan::parse(1, 2, bad).unwrap_err();
            assert!(e.to_string().contains("award 2"), "{e}");
        }
    }

    /// `even` over ten days: ceil(stock × elapsed / span), 0 before, all after.
    #[test]
    fn even_release_is_the_ceiling_of_the_elapsed_share() {
        let (begin, end) = (at("2026-12-01 00:00:00"), at("2026-12-11 00:00:00"));
        let plan = ReleasePlan::Even;
        let cases = [
            ("2026-11-30 00:00:00", 0),
            ("2026-12-01 00:00:00", 0),
            ("2026-12-01 00:00:01", 1),
            ("2026-12-02 00:00:00", 10),
            ("2026-12-02 00:00:01", 11),
            ("2026-12-06 00:00:00", 50),
            ("2026-12-11 00:00:00", 100),
            ("2027-01-01 00:00:00", 100),
        ];
        for (now, released) in cases {
            assert_eq!(plan.released(100, begin, end, at(now)), released, "{now}");
            assert_eq!(plan.held_back(100, begin, end, at(now)), 100 - released);
        }
    }

    #[test]
    fn periodic_release_adds_units_each_period_up_to_the_stock() {
        let (begin, end) = (at("2026-12-01 00:00:00"), at("2026-12-02 00:00:00"));
        let plan = ReleasePlan::parse(1, 2, "1h:3").unwrap();
        assert_eq!(plan.released(10, begin, end, at("2026-11-30 23:59:59")), 0);
        assert_eq!(plan.released(10, begin, end, at("2026-12-01 00:00:00")), 3);
        assert_eq!(plan.released(10, begin, end, at("2026-12-01 01:59:59")), 6);
        assert_eq!(plan.released(10, begin, end, at("2026-12-01 05:00:00")), 10);
        assert_eq!(plan.describe(), "1h:3");
    }
}
