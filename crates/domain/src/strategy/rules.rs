//! Parsers for the strategy-level rule values. They run once at armory time so that a
//! malformed value is a clear configuration error instead of a failure on every draw.

use crate::error::{Error, Result};
use std::collections::HashSet;

/// `rule_blacklist` value `"{awardId}:{user},{user}…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blacklist {
    pub award_id: i32,
    pub users: HashSet<String>,
}

/// The award config a blacklisted user gets (upstream hard-codes 0.01–1 credits).
pub const BLACKLIST_AWARD_CONFIG: &str = "0.01,1";

pub fn parse_blacklist(strategy_id: i64, value: &str) -> Result<Blacklist> {
    let bad = |why: &str| {
        Error::config(format!(
            "strategy {strategy_id} rule_blacklist value {value:?}: {why} (expected \"awardId:user1,user2\")"
        ))
    };
    let (award, users) = value.split_once(':').ok_or_else(|| bad("missing ':'"))?;
    let award_id = award
        .trim()
        .parse::<i32>()
        .map_err(|_| bad("award id is not an integer"))?;
    let users = users
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(Blacklist { award_id, users })
}

/// One group of `rule_weight`: `"{threshold}:{awardId},{awardId}…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightGroupSpec {
    /// Draws used in the activity at which the group applies.
    pub threshold: i64,
    /// The whole token, e.g. `10:102,103` (upstream's table key suffix).
    pub token: String,
    pub award_ids: Vec<i32>,
}

/// Parses a `rule_weight` value: space-separated groups. An empty value yields no group
/// (upstream logs a warning and skips the rule).
pub fn parse_weight(strategy_id: i64, value: &str) -> Result<Vec<WeightGroupSpec>> {
    let mut groups = Vec::new();
    for token in value.split_whitespace() {
        let bad = |why: &str| {
            Error::config(format!(
                "strategy {strategy_id} rule_weight group {token:?}: {why} (expected \"threshold:awardId,awardId\")"
            ))
        };
        let (threshold, awards) = token.split_once(':').ok_or_else(|| bad("missing ':'"))?;
        if awards.contains(':') {
            return Err(bad("more than one ':'"));
        }
        let threshold = threshold
            .parse::<i64>()
            .map_err(|_| bad("threshold is not an integer"))?;
        if threshold < 0 {
            return Err(bad("threshold is negative"));
        }
        let award_ids = awards
            .split(',')
            .map(|a| a.trim().parse::<i32>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("award id is not an integer"))?;
        if groups
            .iter()
            .any(|g: &WeightGroupSpec| g.threshold == threshold)
        {
            return Err(bad("threshold appears twice"));
        }
        groups.push(WeightGroupSpec {
            threshold,
            token: token.to_owned(),
            award_ids,
        });
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blacklist_parses_upstream_sample() {
        let b = parse_blacklist(100001, "101:user001,user002,user003").unwrap();
        assert_eq!(b.award_id, 101);
        assert!(b.users.contains("user002"));
        assert_eq!(b.users.len(), 3);
    }

    #[test]
    fn blacklist_malformed_is_config_error() {
        for v in ["user001", "x:user001", ""] {
            let e = parse_blacklist(1, v).unwrap_err();
            assert!(
                matches!(e, Error::Config(ref m) if m.contains("rule_blacklist")),
                "{v}: {e}"
            );
        }
    }

    #[test]
    fn weight_parses_upstream_sample() {
        let g = parse_weight(100006, "10:102,103 70:106,107 1000:104,105").unwrap();
        assert_eq!(g.len(), 3);
        assert_eq!(g[0].threshold, 10);
        assert_eq!(g[0].token, "10:102,103");
        assert_eq!(g[2].award_ids, vec![104, 105]);
        assert!(parse_weight(1, "  ").unwrap().is_empty());
    }

    #[test]
    fn weight_malformed_is_config_error() {
        for v in ["10", "a:102", "10:x", "10:1:2", "10:1 10:2", "-1:5"] {
            assert!(matches!(parse_weight(1, v), Err(Error::Config(_))), "{v}");
        }
    }
}
