//! `big-market reshard --plan`: which users' rows move where when `db_count × tb_count`
//! changes (upstream has no resharding).
//!
//! The router keeps the low bits of the spread hash (`(size − 1) & spread`), so growing
//! the size by a power of two keeps every user's low bits: going from 2 × 4 to 4 × 4 a
//! user either stays where it is or moves from database `d` to `d + 2`, same table
//! suffix, about half the users each way. The plan lists the moves from the rows found
//! on every server; moving them is the procedure in docs/SCALING.md.

use super::store::{MysqlStore, UserDb};
use super::{MysqlError, MysqlOptions};
use crate::router::{Route, Router};
use std::collections::BTreeMap;

/// Tables holding one row set per user database, not per table suffix.
pub const PER_DATABASE_TABLES: &[&str] = &[
    "raffle_activity_account",
    "raffle_activity_account_day",
    "raffle_activity_account_month",
    "user_credit_account",
    "task",
];

/// Tables split into `tb_count` copies (`_000`, …).
pub const SHARDED_TABLES: &[&str] = &[
    "raffle_activity_order",
    "user_award_record",
    "user_behavior_rebate_order",
    "user_credit_order",
    "user_raffle_order",
];

/// One user whose rows change place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub user_id: String,
    pub from: Route,
    pub to: Route,
}

/// The moves of `users` from `old` to `new`, in the order given; users that stay are
/// left out.
pub fn moves<'a>(
    old: &Router,
    new: &Router,
    users: impl IntoIterator<Item = &'a str>,
) -> Vec<Move> {
    users
        .into_iter()
        .filter_map(|user| {
            let (from, to) = (old.route(user), new.route(user));
            (from != to).then(|| Move {
                user_id: user.to_owned(),
                from,
                to,
            })
        })
        .collect()
}

/// How many users go from each old place to each new one (staying users included).
pub fn summary<'a>(
    old: &Router,
    new: &Router,
    users: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<(Route, Route), u64> {
    let mut out = BTreeMap::new();
    for user in users {
        *out.entry((old.route(user), new.route(user))).or_default() += 1;
    }
    out
}

impl PartialOrd for Route {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Route {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.db, self.table).cmp(&(other.db, other.table))
    }
}

impl MysqlStore {
    /// Every user id with a row in any user table, on every server, sorted.
    pub async fn user_ids(&self, options: &MysqlOptions) -> Result<Vec<String>, MysqlError> {
        let mut users = std::collections::BTreeSet::new();
        for db in self.user_dbs() {
            users.extend(users_of(db, options).await?);
        }
        Ok(users.into_iter().collect())
    }
}

async fn users_of(db: &UserDb, options: &MysqlOptions) -> Result<Vec<String>, MysqlError> {
    let mut selects: Vec<String> = PER_DATABASE_TABLES
        .iter()
        .map(|t| format!("SELECT user_id FROM {db}.{t}"))
        .collect();
    for t in SHARDED_TABLES {
        for sfx in options.table_suffixes() {
            selects.push(format!("SELECT user_id FROM {db}.{t}{sfx}"));
        }
    }
    let sql = selects.join(" UNION ");
    let rows: Vec<(String,)> = sqlx::query_as(&sql).fetch_all(&db.pool).await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubling_the_databases_moves_users_to_d_plus_2_same_table() {
        let old = Router::new(2, 4).unwrap();
        let new = Router::new(4, 4).unwrap();
        let users: Vec<String> = (0..10_000).map(|i| format!("user{i}")).collect();
        let moved = moves(&old, &new, users.iter().map(String::as_str));
        for m in &moved {
            assert_eq!(
                (m.to.db, m.to.table),
                (m.from.db + 2, m.from.table),
                "{m:?}"
            );
        }
        // Those that stay keep database and table.
        let stay = users.len() - moved.len();
        assert!(moved.len() > 4_000 && stay > 4_000, "{} moved", moved.len());
        let total: u64 = summary(&old, &new, users.iter().map(String::as_str))
            .values()
            .sum();
        assert_eq!(total, users.len() as u64);
    }

    #[test]
    fn upstream_vectors_under_4_by_4() {
        let old = Router::new(2, 4).unwrap();
        let new = Router::new(4, 4).unwrap();
        let users = [
            "xiaofuge", "user001", "user002", "user003", "chen", "system",
        ];
        let route = |db, table| Route { db, table };
        assert_eq!(
            moves(&old, &new, users),
            vec![
                Move {
                    user_id: "user001".into(),
                    from: route(2, 0),
                    to: route(4, 0)
                },
                Move {
                    user_id: "user002".into(),
                    from: route(2, 1),
                    to: route(4, 1)
                },
            ]
        );
    }
}
