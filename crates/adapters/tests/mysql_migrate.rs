//! `migrate` against the MariaDB/MySQL server of this machine (127.0.0.1:3306, root, or
//! `TEST_MYSQL_URL`): fresh databases, then databases made from upstream's own
//! dumps. Each test uses databases of its own name and drops them at the end.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

use big_market_adapters::mysql::migrate::{connect, load_upstream_dumps};
use big_market_adapters::mysql::{MysqlOptions, migrate};
use big_market_domain::sample::SampleData;
use sqlx::{Executor, MySqlConnection, Row};
use std::path::PathBuf;

fn options() -> MysqlOptions {
    let url =
        std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let unique = format!(
        "bmt_{}_{}",
        std::process::id(),
        rand::random::<u32>() % 1_000_000
    );
    MysqlOptions {
        url,
        database: unique,
        ..MysqlOptions::default()
    }
}

async fn server(options: &MysqlOptions) -> MySqlConnection {
    connect(options).await.unwrap_or_else(|e| {
        panic!("{e}: the tests need MariaDB/MySQL (set TEST_MYSQL_URL to use another)")
    })
}

async fn drop_all(conn: &mut MySqlConnection, options: &MysqlOptions) {
    for db in std::iter::once(options.database.clone()).chain(options.user_databases()) {
        conn.execute(sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{db}`")))
            .await
            .unwrap();
    }
}

async fn tables(conn: &mut MySqlConnection, db: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = ? ORDER BY 1",
    )
    .bind(db)
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn count(conn: &mut MySqlConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

#[tokio::test]
async fn fresh_databases_get_upstream_layout_and_the_sample_once() {
    let options = options();
    let mut conn = server(&options).await;
    let sample = SampleData::upstream();

    let first = migrate(&options, Some(&sample)).await.unwrap();
    assert!(first.sample_loaded);
    // Config database: init, dcc_config, campaign_version, fairness, stock_baseline; each
    // user database: 7.
    assert_eq!(first.applied.len(), 5 + 2 * 7, "{:?}", first.applied);

    let config = tables(&mut conn, &options.database).await;
    for t in [
        "award",
        "campaign_version",
        "daily_behavior_rebate",
        "raffle_activity",
        "raffle_activity_count",
        "raffle_activity_fairness",
        "raffle_fairness_seed",
        "raffle_activity_sku",
        "raffle_activity_stage",
        "rule_tree",
        "rule_tree_node",
        "rule_tree_node_line",
        "strategy",
        "strategy_award",
        "strategy_rule",
        "stock_baseline",
    ] {
        assert!(config.contains(&t.to_string()), "{t} in {config:?}");
    }
    for db in options.user_databases() {
        let user = tables(&mut conn, &db).await;
        // 5 per-database tables, 5 sharded ones × 4, and the migrations table.
        assert_eq!(user.len(), 5 + 5 * 4 + 1, "{db}: {user:?}");
        assert!(user.contains(&"user_raffle_order_003".to_string()));
        assert!(user.contains(&"raffle_activity_account_month".to_string()));
    }
    let db = &options.database;
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT COUNT(*) FROM `{db}`.strategy_award")
        )
        .await,
        sample.strategy_awards.len() as i64
    );
    let user_02 = &options.user_databases()[1];
    let attempts: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(column_name AS CHAR) FROM information_schema.columns
         WHERE table_schema = ? AND table_name = 'task' AND column_name IN ('attempts', 'next_attempt_time', 'last_error')",
    )
    .bind(user_02)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(attempts.len(), 3, "{attempts:?}");

    // A second run applies nothing and leaves the configuration alone.
    let second = migrate(&options, Some(&sample)).await.unwrap();
    assert_eq!(second, Default::default());
    drop_all(&mut conn, &options).await;
}

/// Upstream's dumps, from `UPSTREAM_SQL_DIR` (`.ci/run` sets it).
fn upstream_sql_dir() -> PathBuf {
    let dir = std::env::var("UPSTREAM_SQL_DIR")
        .map(PathBuf::from)
        .expect("UPSTREAM_SQL_DIR must name the directory of upstream's dumps (big_market.sql …)");
    assert!(
        dir.join("big_market.sql").exists(),
        "upstream's dumps are expected in {} (UPSTREAM_SQL_DIR)",
        dir.display()
    );
    dir
}

#[tokio::test]
async fn databases_made_by_upstream_dumps_migrate_in_place() {
    let options = options();
    let mut conn = server(&options).await;
    load_upstream_dumps(&options, &upstream_sql_dir())
        .await
        .unwrap_or_else(|e| panic!("loading upstream's dumps: {e}"));
    let report = migrate(&options, Some(&SampleData::upstream()))
        .await
        .unwrap();
    assert!(
        !report.sample_loaded,
        "upstream's own configuration is kept"
    );
    // Every user database has one credit account per user (upstream's second dump
    // lacks the key).
    for db in options.user_databases() {
        let n = count(
            &mut conn,
            &format!(
                "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = '{db}'
                 AND table_name = 'user_credit_account' AND index_name = 'uq_user_id'"
            ),
        )
        .await;
        assert_eq!(n, 1, "{db}: unique user_id on user_credit_account");
    }
    // Our additive columns now exist on upstream's tables.
    for db in options.user_databases() {
        let n = count(
            &mut conn,
            &format!(
                "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = '{db}'
                 AND ((table_name = 'task' AND column_name = 'attempts')
                   OR (table_name LIKE 'user_award_record_00_' AND column_name = 'delivery_note'))"
            ),
        )
        .await;
        assert_eq!(n, 1 + 4, "{db}");
    }
    // The sample we ship is upstream's configuration: same awards, rates, stock, rules.
    let sample = SampleData::upstream();
    let db = &options.database;
    let rows = sqlx::query(&format!(
        "SELECT strategy_id, award_id, award_count, award_count_surplus, CAST(award_rate AS CHAR), sort
         FROM `{db}`.strategy_award ORDER BY strategy_id, award_id"
    ))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut theirs: Vec<(i64, i64, i64, i64, String, i64)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<i64, _>(0),
                r.get::<i64, _>(1),
                r.get::<i64, _>(2),
                r.get::<i64, _>(3),
                r.get::<String, _>(4),
                r.get::<i64, _>(5),
            )
        })
        .collect();
    let mut ours: Vec<(i64, i64, i64, i64, String, i64)> = sample
        .strategy_awards
        .iter()
        .map(|a| {
            (
                a.strategy_id,
                i64::from(a.award_id),
                a.award_count,
                a.award_count_surplus,
                format!("{:.4}", a.award_rate),
                i64::from(a.sort),
            )
        })
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(theirs, ours);
    drop_all(&mut conn, &options).await;
}
