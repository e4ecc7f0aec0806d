//! The MariaDB/MySQL store against this machine's server (127.0.0.1:3306, root, or
//! `TEST_MYSQL_URL`), through the domain services as the application wires them. Each
//! test migrates fresh databases of its own name (with upstream's sample) and drops them
//! at the end; a server that cannot be reached fails the test.
//!
//! Concurrency is real: many tokio tasks on a multi-thread runtime, exact counts.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

mod redis_common;

use big_market_adapters::mysql::{MAX_GROUP, MysqlOptions, MysqlStore, migrate, migrate::connect};
use big_market_adapters::redis_store::StockKey;
use big_market_domain::activity::ActivityService;
use big_market_domain::activity::quota::{OrderTradeType, SkuRecharge};
use big_market_domain::award::{AwardRepository, SendAwardMessage};
use big_market_domain::credit::{CreditService, TradeName, TradeType};
use big_market_domain::rebate::RebateService;
use big_market_domain::sample::SampleData;
use big_market_domain::strategy::StrategyService;
use big_market_domain::task::{NoNotifier, TaskOutcome, TaskRepository};
use big_market_domain::time::{Clock, FixedClock};
use big_market_domain::{Error, Result};
use redis_common::TestRedis;
use rust_decimal::Decimal;
use sqlx::{Executor, MySqlConnection};
use std::collections::BTreeMap;
use std::sync::Arc;

const ACTIVITY: i64 = 100301;

fn options() -> MysqlOptions {
    let url =
        std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let unique = format!(
        "bms_{}_{}",
        std::process::id(),
        rand::random::<u32>() % 1_000_000
    );
    MysqlOptions {
        url,
        database: unique,
        ..MysqlOptions::default()
    }
}

fn clock() -> Arc<FixedClock> {
    let now: jiff::Zoned = "2026-11-26T10:00:00+08:00[Asia/Shanghai]".parse().unwrap();
    Arc::new(FixedClock::new(now))
}

/// Fresh databases with the sample, the store, and the services wired as
/// `Services::build` wires them.
struct Fixture {
    options: MysqlOptions,
    conn: MySqlConnection,
    store: MysqlStore,
    activity: Arc<ActivityService>,
    credit: Arc<CreditService>,
    rebate: Arc<RebateService>,
    /// With Redis stock: the test's key space.
    redis: Option<TestRedis>,
}

/// Where award and SKU stock is kept.
#[derive(Clone, Copy, Debug)]
enum Stock {
    Sql,
    Redis,
    /// Redis stock, and draws, points prizes and task completions in groups.
    Grouped,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_config(&[]).await
    }

    async fn with_config(statements: &[&str]) -> Self {
        Self::with_stock(statements, Stock::Sql).await
    }

    /// As `new`, running `statements` on the config database (`{cfg}` names it) before
    /// the armory reads it.
    async fn with_stock(statements: &[&str], stock: Stock) -> Self {
        let options = options();
        let mut conn = connect(&options).await.unwrap_or_else(|e| {
            panic!("{e}: the tests need MariaDB/MySQL (set TEST_MYSQL_URL to use another)")
        });
        let clock = clock();
        let sample = SampleData::upstream().with_open_activities(clock.now().datetime());
        migrate(&options, Some(&sample)).await.unwrap();
        let cfg = format!("`{}`", options.database);
        for s in statements {
            conn.execute(sqlx::raw_sql(&s.replace("{cfg}", &cfg)))
                .await
                .unwrap();
        }
        let mut store = MysqlStore::connect(&options).await.unwrap();
        let redis = match stock {
            Stock::Sql => None,
            Stock::Redis | Stock::Grouped => {
                let redis = TestRedis::start().await;
                store = store.with_redis_stock(redis.stock().await);
                if matches!(stock, Stock::Grouped) {
                    store = store.with_grouped_writes(1, MAX_GROUP);
                }
                Some(redis)
            }
        };
        let clock: Arc<dyn Clock> = clock;
        let strategy = Arc::new(StrategyService::new(Arc::new(store.clone()), clock.clone()));
        let failures = strategy.armory_all().await.unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        let notifier = Arc::new(NoNotifier);
        let activity = Arc::new(ActivityService::new(
            Arc::new(store.clone()),
            strategy.clone(),
            clock.clone(),
            notifier.clone(),
        ));
        activity.armory_all().await.unwrap();
        let credit = Arc::new(CreditService::new(
            Arc::new(store.clone()),
            clock.clone(),
            notifier.clone(),
        ));
        let rebate = Arc::new(RebateService::new(
            Arc::new(store.clone()),
            clock.clone(),
            notifier,
            activity.clone(),
            credit.clone(),
        ));
        Self {
            options,
            conn,
            store,
            activity,
            credit,
            rebate,
            redis,
        }
    }

    /// `big_market_01` with this test's prefix.
    fn db(&self, n: u32) -> String {
        format!("`{}_{n:02}`", self.options.database)
    }

    async fn count(&mut self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&mut self.conn)
            .await
            .unwrap()
    }

    /// Rows of `table{suffix}` matching `filter` over every shard.
    async fn count_all(&mut self, table: &str, filter: &str) -> i64 {
        let mut n = 0;
        for db in 1..=self.options.db_count {
            for sfx in self.options.table_suffixes() {
                let sql = format!(
                    "SELECT COUNT(*) FROM {}.{table}{sfx} WHERE {filter}",
                    self.db(db)
                );
                n += self.count(&sql).await;
            }
        }
        n
    }

    /// With Redis stock: no reservation is left open, the counter reads `left`, and the
    /// write-back brings the SQL surplus column to it.
    async fn settle_stock(&self, key: StockKey, left: i64) {
        let Some(stock) = self.store.redis_stock() else {
            return;
        };
        assert_eq!(
            stock.pending(key).await.unwrap(),
            0,
            "{key}: open reservations"
        );
        assert_eq!(stock.surplus(key).await.unwrap(), Some(left), "{key}");
        assert!(self.store.write_back_stock().await.unwrap() > 0);
    }

    async fn recharge(&self, user: &str, sku: i64, out_business_no: &str) -> Result<String> {
        self.activity
            .recharge(SkuRecharge {
                user_id: user.into(),
                sku,
                out_business_no: out_business_no.into(),
                trade_type: OrderTradeType::RebateNoPayTrade,
            })
            .await
            .map(|o| o.order_id)
    }

    async fn drop_databases(mut self) {
        if let Some(redis) = self.redis.take() {
            redis.cleanup().await;
        }
        self.store.pool().close().await;
        for db in
            std::iter::once(self.options.database.clone()).chain(self.options.user_databases())
        {
            self.conn
                .execute(sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{db}`")))
                .await
                .unwrap();
        }
    }
}

/// Outcomes by code (`0000` for success).
fn tally<T>(results: Vec<Result<T>>) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for r in results {
        let code = match r {
            Ok(_) => "0000",
            Err(e) => {
                if e.code().code() == "0001" {
                    eprintln!("unexpected: {e}");
                }
                e.code().code()
            }
        };
        *m.entry(code).or_default() += 1;
    }
    m
}

async fn join_all<T: Send + 'static>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_naming_it() {
    let options = MysqlOptions {
        url: "mysql://root@127.0.0.1:1".into(),
        connect_timeout: std::time::Duration::from_secs(2),
        ..MysqlOptions::default()
    };
    let e = MysqlStore::connect(&options)
        .await
        .err()
        .expect("no server on port 1");
    assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_awards_and_tasks_land_on_upstreams_shards() {
    let mut fx = Fixture::new().await;
    for user in ["xiaofuge", "user001", "chen"] {
        fx.recharge(user, 9011, &format!("place_{user}"))
            .await
            .unwrap();
    }
    let (db1, db2) = (fx.db(1), fx.db(2));
    for (table, user) in [
        (format!("{db1}.raffle_activity_order_001"), "xiaofuge"),
        (format!("{db2}.raffle_activity_order_000"), "user001"),
        (format!("{db1}.raffle_activity_order_000"), "chen"),
    ] {
        let here = fx
            .count(&format!(
                "SELECT COUNT(*) FROM {table} WHERE user_id = '{user}'"
            ))
            .await;
        assert_eq!(here, 1, "{user} in {table}");
        let everywhere = fx
            .count_all("raffle_activity_order", &format!("user_id = '{user}'"))
            .await;
        assert_eq!(everywhere, 1, "{user} only in {table}");
    }
    let account = fx
        .count(&format!(
            "SELECT total_count_surplus FROM {db1}.raffle_activity_account WHERE user_id = 'xiaofuge'"
        ))
        .await;
    assert_eq!(account, 150);

    let drawn = fx.activity.draw("xiaofuge".into(), ACTIVITY).await.unwrap();
    let q = |t: &str| {
        format!(
            "SELECT COUNT(*) FROM {db1}.{t} WHERE user_id = 'xiaofuge' AND order_id = '{}'",
            drawn.order_id
        )
    };
    assert_eq!(fx.count(&q("user_raffle_order_001")).await, 1);
    assert_eq!(fx.count(&q("user_award_record_001")).await, 1);
    let tasks = fx
        .count(&format!(
            "SELECT COUNT(*) FROM {db1}.task WHERE user_id = 'xiaofuge' AND topic = 'send_award'"
        ))
        .await;
    assert_eq!(tasks, 1);
    let view = fx.activity.account("xiaofuge", ACTIVITY).await.unwrap();
    assert_eq!((view.total_count, view.total_count_surplus), (150, 149));
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_recharges_with_one_key_grant_once() {
    let fx = Fixture::new().await;
    let fx = Arc::new(fx);
    let handles = (0..32)
        .map(|_| {
            let fx = fx.clone();
            tokio::spawn(async move { fx.recharge("idem_user", 9011, "same_key_0001").await })
        })
        .collect();
    let outcomes = tally(join_all(handles).await);
    assert_eq!(
        outcomes,
        BTreeMap::from([("0000", 1), ("0003", 31)]),
        "one grant, the rest duplicates"
    );
    let mut fx = Arc::into_inner(fx).unwrap();
    assert_eq!(
        fx.count_all("raffle_activity_order", "user_id = 'idem_user'")
            .await,
        1
    );
    let view = fx.activity.account("idem_user", ACTIVITY).await.unwrap();
    assert_eq!((view.total_count, view.total_count_surplus), (150, 150));
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sku_stock_is_exact_under_concurrent_recharges() {
    sku_stock_is_exact(Stock::Sql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_sku_stock_is_exact_under_concurrent_recharges() {
    sku_stock_is_exact(Stock::Redis).await;
}

async fn sku_stock_is_exact(stock: Stock) {
    let fx = Fixture::with_stock(
        &["UPDATE {cfg}.raffle_activity_sku SET stock_count = 20, stock_count_surplus = 20 WHERE sku = 9014"],
        stock,
    )
    .await;
    let fx = Arc::new(fx);
    let handles = (0..60)
        .map(|i| {
            let fx = fx.clone();
            tokio::spawn(async move {
                fx.recharge(&format!("sku_user_{i}"), 9014, &format!("sku_key_{i}"))
                    .await
            })
        })
        .collect();
    let outcomes = tally(join_all(handles).await);
    assert_eq!(
        outcomes,
        BTreeMap::from([("0000", 20), ("ERR_BIZ_005", 40)])
    );
    let mut fx = Arc::into_inner(fx).unwrap();
    fx.settle_stock(StockKey::Sku { sku: 9014 }, 0).await;
    assert_eq!(fx.store.sku_stock(9014).await.unwrap(), (20, 0));
    assert_eq!(fx.store.deadlocks(), 0);
    assert_eq!(
        fx.count_all("raffle_activity_order", "sku = 9014").await,
        20,
        "a sold-out recharge leaves no order"
    );
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_quota_of_five_allows_five_of_twenty_concurrent_draws() {
    let fx = Fixture::new().await;
    // SKU 9013 grants 5 total, 5 a day, 5 a month.
    fx.recharge("quota_user", 9013, "quota_key").await.unwrap();
    let fx = Arc::new(fx);
    let handles = (0..20)
        .map(|_| {
            let fx = fx.clone();
            tokio::spawn(async move { fx.activity.draw("quota_user".into(), ACTIVITY).await })
        })
        .collect();
    let outcomes = tally(join_all(handles).await);
    assert_eq!(outcomes, BTreeMap::from([("0000", 5), ("ERR_BIZ_006", 15)]));
    let mut fx = Arc::into_inner(fx).unwrap();
    let view = fx.activity.account("quota_user", ACTIVITY).await.unwrap();
    assert_eq!(
        (
            view.total_count_surplus,
            view.day_count_surplus,
            view.month_count_surplus
        ),
        (0, 0, 0)
    );
    assert_eq!(
        fx.count_all("user_raffle_order", "user_id = 'quota_user'")
            .await,
        5
    );
    assert_eq!(
        fx.count_all("user_award_record", "user_id = 'quota_user'")
            .await,
        5
    );
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn award_stock_is_exact_under_concurrent_draws() {
    award_stock_is_exact(Stock::Sql).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn redis_award_stock_is_exact_under_concurrent_draws() {
    award_stock_is_exact(Stock::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn grouped_award_stock_is_exact_under_concurrent_draws() {
    award_stock_is_exact(Stock::Grouped).await;
}

async fn award_stock_is_exact(stock: Stock) {
    // Strategy 100006 reduced to award 104 (stock 37, rule_stock then the luck award 101)
    // and a sliver of 101, without the chain rules.
    let fx = Fixture::with_stock(&[
        "UPDATE {cfg}.strategy SET rule_models = NULL WHERE strategy_id = 100006",
        "DELETE FROM {cfg}.strategy_award WHERE strategy_id = 100006 AND award_id NOT IN (101, 104)",
        "UPDATE {cfg}.strategy_award SET award_rate = 0.0001 WHERE strategy_id = 100006 AND award_id = 101",
        "UPDATE {cfg}.strategy_award SET award_rate = 0.9999, award_count = 37, award_count_surplus = 37
         WHERE strategy_id = 100006 AND award_id = 104",
    ], stock)
    .await;
    let users: Vec<String> = (0..5).map(|i| format!("stock_user_{i}")).collect();
    for u in &users {
        fx.recharge(u, 9011, &format!("stock_key_{u}"))
            .await
            .unwrap();
    }
    let fx = Arc::new(fx);
    let handles = (0..100)
        .map(|i| {
            let fx = fx.clone();
            let user = users[i % users.len()].clone();
            tokio::spawn(async move { fx.activity.draw(user, ACTIVITY).await })
        })
        .collect();
    let results = join_all(handles).await;
    let mut by_award: BTreeMap<i32, usize> = BTreeMap::new();
    for r in &results {
        let r = r
            .as_ref()
            .unwrap_or_else(|e| panic!("every draw succeeds: {e}"));
        *by_award.entry(r.award_id).or_default() += 1;
    }
    assert_eq!(by_award.get(&104), Some(&37), "{by_award:?}");
    assert_eq!(by_award.values().sum::<usize>(), 100);
    let mut fx = Arc::into_inner(fx).unwrap();
    let key = StockKey::Award {
        strategy_id: 100006,
        award_id: 104,
    };
    fx.settle_stock(key, 0).await;
    assert_eq!(fx.store.award_stock(100006, 104).await.unwrap(), (37, 0));
    assert_eq!(fx.store.deadlocks(), 0);
    assert_eq!(
        fx.count_all("user_award_record", "award_id = 104").await,
        37
    );
    assert_eq!(
        fx.count_all("user_award_record", "user_id LIKE 'stock_user_%'")
            .await,
        100
    );
    fx.drop_databases().await;
}

fn trade(user: &str, kind: TradeType, amount: i64, key: &str) -> big_market_domain::credit::Trade {
    big_market_domain::credit::Trade {
        user_id: user.into(),
        trade_name: TradeName::Rebate,
        trade_type: kind,
        amount: Decimal::from(amount),
        out_business_no: key.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credit_is_never_taken_beyond_the_balance() {
    let fx = Fixture::new().await;
    let user = "credit_user";
    fx.credit
        .adjust(trade(user, TradeType::Forward, 100, "fwd_1"))
        .await
        .unwrap();
    let again = fx
        .credit
        .adjust(trade(user, TradeType::Forward, 100, "fwd_1"))
        .await
        .unwrap_err();
    assert_eq!(again.code().code(), "0003", "{again}");
    assert_eq!(fx.credit.available(user).await.unwrap(), Decimal::from(100));

    let fx = Arc::new(fx);
    let handles = (0..20)
        .map(|i| {
            let fx = fx.clone();
            tokio::spawn(async move {
                fx.credit
                    .adjust(trade(user, TradeType::Reverse, -10, &format!("rev_{i}")))
                    .await
            })
        })
        .collect();
    let outcomes = tally(join_all(handles).await);
    assert_eq!(
        outcomes,
        BTreeMap::from([("0000", 10), ("ERR_CREDIT_001", 10)])
    );
    let fx = Arc::into_inner(fx).unwrap();
    assert_eq!(fx.credit.available(user).await.unwrap(), Decimal::ZERO);
    let e: Error = fx
        .credit
        .adjust(trade(user, TradeType::Reverse, -1, "rev_more"))
        .await
        .unwrap_err();
    assert_eq!(e.code().code(), "ERR_CREDIT_001");
    assert_eq!(fx.credit.available(user).await.unwrap(), Decimal::ZERO);
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sign_in_is_recorded_once_and_one_claimant_wins_each_task() {
    let mut fx = Fixture::new().await;
    let user = "sign_user";
    fx.rebate.sign(user).await.unwrap();
    let again = fx.rebate.sign(user).await.unwrap_err();
    assert_eq!(again.code().code(), "0003", "{again}");
    assert!(fx.rebate.signed_today(user).await.unwrap());
    assert_eq!(
        fx.count_all("user_behavior_rebate_order", &format!("user_id = '{user}'"))
            .await,
        2,
        "one order per sign-in rebate row (credit and SKU)"
    );
    let db = fx.store.shard(user).db.clone();
    let ids: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT message_id FROM {db}.task WHERE user_id = ? AND topic = 'send_rebate' ORDER BY id"
    ))
    .bind(user)
    .fetch_all(&mut fx.conn)
    .await
    .unwrap();
    assert_eq!(ids.len(), 2, "{ids:?}");

    // Fresh tasks belong to their dispatcher for one lease; an hour later they are stale.
    assert!(fx.store.due_tasks(60, 100).await.unwrap().is_empty());
    fx.conn
        .execute(sqlx::raw_sql(&format!(
            "UPDATE {db}.task SET update_time = NOW(3) - INTERVAL 1 HOUR"
        )))
        .await
        .unwrap();
    let due = fx.store.due_tasks(60, 100).await.unwrap();
    assert_eq!(due.len(), 2, "{due:?}");
    let store = Arc::new(fx.store.clone());
    let handles = (0..32)
        .map(|_| {
            let (store, id) = (store.clone(), ids[0].clone());
            tokio::spawn(async move { store.claim(&id, 60).await })
        })
        .collect();
    let claims: Vec<_> = join_all(handles)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let won: Vec<_> = claims.into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "exactly one claimant holds the task");
    let lease = won[0].lease.clone().expect("a claim sets the lease");
    assert_eq!(
        fx.store.due_tasks(60, 100).await.unwrap().len(),
        1,
        "a claimed task is not due"
    );

    // Only the lease holder records.
    let done = TaskOutcome::Completed(None);
    fx.store.record(&ids[0], None, &done).await.unwrap();
    assert_eq!(
        fx.store.task(&ids[0]).await.unwrap().unwrap().state,
        "create"
    );
    fx.store.record(&ids[0], Some(&lease), &done).await.unwrap();
    assert_eq!(
        fx.store.task(&ids[0]).await.unwrap().unwrap().state,
        "completed"
    );
    // A retry puts the other task back with backoff; parked and requeued.
    fx.store
        .record(
            &ids[1],
            None,
            &TaskOutcome::Retry {
                error: "broker down".into(),
                retry_after_secs: 3600,
            },
        )
        .await
        .unwrap();
    let t = fx.store.task(&ids[1]).await.unwrap().unwrap();
    assert_eq!((t.state.as_str(), t.attempts), ("fail", 1));
    assert!(fx.store.due_tasks(60, 100).await.unwrap().is_empty());
    fx.store
        .record(
            &ids[1],
            t.lease.as_deref(),
            &TaskOutcome::Parked("gave up".into()),
        )
        .await
        .unwrap();
    assert_eq!(fx.store.parked(10).await.unwrap().len(), 1);
    assert!(fx.store.requeue(&ids[1]).await.unwrap());
    assert_eq!(fx.store.due_tasks(60, 100).await.unwrap().len(), 1);
    assert_eq!(
        fx.store.task_states().await.unwrap(),
        vec![("completed".to_owned(), 1), ("fail".to_owned(), 1)]
    );
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn first_draws_of_many_new_users_run_side_by_side_without_deadlocks() {
    let fx = Fixture::new().await;
    let users: Vec<String> = (0..48).map(|i| format!("new_user_{i:02}")).collect();
    let fx = Arc::new(fx);
    let recharges = users
        .iter()
        .map(|u| {
            let (fx, u) = (fx.clone(), u.clone());
            tokio::spawn(async move { fx.recharge(&u, 9011, &format!("new_key_{u}")).await })
        })
        .collect();
    assert_eq!(
        tally(join_all(recharges).await),
        BTreeMap::from([("0000", 48)])
    );
    // Each user's first draw creates their month and day rows, next to each other's.
    let draws = users
        .iter()
        .map(|u| {
            let (fx, u) = (fx.clone(), u.clone());
            tokio::spawn(async move { fx.activity.draw(u, ACTIVITY).await })
        })
        .collect();
    assert_eq!(tally(join_all(draws).await), BTreeMap::from([("0000", 48)]));
    let mut fx = Arc::into_inner(fx).unwrap();
    assert_eq!(
        fx.store.deadlocks(),
        0,
        "no transaction had to be run again"
    );
    assert_eq!(
        fx.count_all("user_raffle_order", "user_id LIKE 'new_user_%'")
            .await,
        48
    );
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn due_tasks_take_from_every_user_database_in_turn() {
    let mut fx = Fixture::new().await;
    // xiaofuge and chen live in database 01, user001 in 02.
    for user in ["xiaofuge", "chen", "user001"] {
        fx.rebate.sign(user).await.unwrap();
    }
    for n in 1..=2 {
        let db = fx.db(n);
        fx.conn
            .execute(sqlx::raw_sql(&format!(
                "UPDATE {db}.task SET update_time = NOW(3) - INTERVAL 1 HOUR"
            )))
            .await
            .unwrap();
    }
    assert_eq!(fx.store.due_tasks(60, 100).await.unwrap().len(), 6);
    let page = fx.store.due_tasks(60, 2).await.unwrap();
    let users: Vec<&str> = page.iter().map(|t| t.user_id.as_str()).collect();
    assert!(
        users.contains(&"user001") && users.len() == 2,
        "one from each database: {users:?}"
    );
    fx.drop_databases().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sweeper_keeps_committed_units_and_returns_the_rest() {
    let fx = Fixture::with_stock(
        &["UPDATE {cfg}.raffle_activity_sku SET stock_count = 10, stock_count_surplus = 10 WHERE sku = 9014"],
        Stock::Redis,
    )
    .await;
    let key = StockKey::Sku { sku: 9014 };
    let stock = fx.store.redis_stock().unwrap().clone();
    // Three recharges commit (each reservation confirmed after its commit).
    for i in 0..3 {
        fx.recharge(&format!("sweep_user_{i}"), 9014, &format!("sweep_key_{i}"))
            .await
            .unwrap();
    }
    assert_eq!(stock.surplus(key).await.unwrap(), Some(7));
    // A process that died between reserving and settling: one order committed (its
    // reservation still open), two never did.
    let committed = fx
        .recharge("sweep_user_9", 9014, "sweep_key_9")
        .await
        .unwrap();
    let open = format!("a:{committed}:sweep_user_9");
    // Ten minutes ago, as the dead process would have: the unit is taken (6 left) and
    // the reservation is still in the ledger.
    let then = jiff::Timestamp::now().as_millisecond() - 600_000;
    let mut conn = fx.redis.as_ref().unwrap().conn.clone();
    let added: i64 = redis::cmd("ZADD")
        .arg(format!("{}_reserved", stock.counter_key(&key)))
        .arg(then)
        .arg(&open)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(added, 1);
    assert_eq!(stock.surplus(key).await.unwrap(), Some(6));
    for id in ["a:000000000001:ghost_1", "a:000000000002:ghost_2"] {
        assert!(stock.reserve(key, id, then).await.unwrap());
    }
    assert_eq!(stock.surplus(key).await.unwrap(), Some(4));
    assert_eq!(stock.pending(key).await.unwrap(), 3);
    // Reservations younger than the bound are left alone (their transactions may still
    // be open).
    let report = fx.store.sweep_stock(3_600_000).await.unwrap();
    assert_eq!((report.returned, report.confirmed), (0, 0));
    // Older ones are settled from SQL: the committed order keeps its unit.
    let report = fx.store.sweep_stock(60_000).await.unwrap();
    assert_eq!((report.returned, report.confirmed), (2, 1));
    fx.settle_stock(key, 6).await;
    // granted + remaining = initial.
    let mut fx = fx;
    assert_eq!(fx.count_all("raffle_activity_order", "sku = 9014").await, 4);
    assert_eq!(fx.store.sku_stock(9014).await.unwrap(), (10, 6));
    fx.drop_databases().await;
}

/// Grouped draws of many users at once, some refused by the domain inside their group:
/// every count matches as if each draw had run alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn grouped_draws_of_many_users_keep_every_count() {
    let fx = Fixture::with_stock(&[], Stock::Grouped).await;
    // 30 users with SKU 9013 (5 draws in total, a day and a month), 10 without any.
    let paid: Vec<String> = (0..30).map(|i| format!("grp_user_{i:02}")).collect();
    let unpaid: Vec<String> = (0..10).map(|i| format!("grp_none_{i:02}")).collect();
    for u in &paid {
        fx.recharge(u, 9013, &format!("grp_key_{u}")).await.unwrap();
    }
    let fx = Arc::new(fx);
    // Seven draws per user, all in flight together: each user's first draw also creates
    // their month and day rows inside a group.
    let handles = (0..7)
        .flat_map(|_| paid.iter().chain(&unpaid))
        .map(|u| {
            let (fx, u) = (fx.clone(), u.clone());
            tokio::spawn(async move { (u.clone(), fx.activity.draw(u, ACTIVITY).await) })
        })
        .collect();
    let mut per_user: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    for (user, r) in join_all(handles).await {
        let code = r.as_ref().map_or_else(|e| e.code().code(), |_| "0000");
        *per_user.entry(user).or_default().entry(code).or_default() += 1;
    }
    for u in &paid {
        assert_eq!(
            per_user[u],
            BTreeMap::from([("0000", 5), ("ERR_BIZ_006", 2)]),
            "{u}"
        );
        let view = fx.activity.account(u, ACTIVITY).await.unwrap();
        assert_eq!(
            (
                view.total_count_surplus,
                view.day_count_surplus,
                view.month_count_surplus
            ),
            (0, 0, 0),
            "{u}"
        );
    }
    for u in &unpaid {
        assert_eq!(per_user[u], BTreeMap::from([("ERR_BIZ_006", 7)]), "{u}");
    }
    let mut fx = Arc::into_inner(fx).unwrap();
    let (grouped, regrouped) = fx.store.group_stats();
    assert!(
        grouped > 0,
        "some draws ran in groups ({grouped}, {regrouped})"
    );
    for table in ["user_raffle_order", "user_award_record"] {
        assert_eq!(fx.count_all(table, "user_id LIKE 'grp_user_%'").await, 150);
        assert_eq!(fx.count_all(table, "user_id LIKE 'grp_none_%'").await, 0);
    }
    let mut tasks = 0;
    for db in 1..=fx.options.db_count {
        let sql = format!(
            "SELECT COUNT(*) FROM {}.task WHERE topic = 'send_award' AND user_id LIKE 'grp_%'",
            fx.db(db)
        );
        tasks += fx.count(&sql).await;
    }
    assert_eq!(tasks, 150, "one task per award record");
    // Every raffle order is used and has its award record.
    assert_eq!(
        fx.count_all("user_raffle_order", "order_state <> 'used'")
            .await,
        0
    );
    assert_eq!(fx.store.deadlocks(), 0);
    fx.drop_databases().await;
}

/// Points prizes credited in groups, each message delivered twice at once: a group
/// meeting a prize delivered before is rolled back and its prizes run alone, so every
/// prize is credited exactly once and every balance is the sum of its orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn grouped_prizes_are_credited_once_under_redelivery() {
    let fx = Fixture::with_stock(&[], Stock::Grouped).await;
    let users: Vec<String> = (0..24).map(|i| format!("prize_user_{i:02}")).collect();
    for u in &users {
        fx.recharge(u, 9011, &format!("prize_key_{u}"))
            .await
            .unwrap();
        fx.activity.draw(u.clone(), ACTIVITY).await.unwrap();
    }
    let mut fx = fx;
    let mut messages = Vec::new();
    for db in 1..=fx.options.db_count {
        for sfx in fx.options.table_suffixes() {
            let sql = format!(
                "SELECT user_id, order_id, award_id, award_title FROM {}.user_award_record{sfx}
                 WHERE user_id LIKE 'prize_user_%'",
                fx.db(db)
            );
            let rows: Vec<(String, String, i32, String)> =
                sqlx::query_as(&sql).fetch_all(&mut fx.conn).await.unwrap();
            messages.extend(rows.into_iter().map(|r| SendAwardMessage {
                award_config: None,
                award_id: r.2,
                award_title: r.3,
                order_id: r.1,
                user_id: r.0,
            }));
        }
    }
    assert_eq!(messages.len(), users.len());
    let fx = Arc::new(fx);
    let handles = messages
        .iter()
        .chain(&messages)
        .map(|m| {
            let (fx, m) = (fx.clone(), m.clone());
            tokio::spawn(async move {
                let user = m.user_id.clone();
                (user, fx.store.deliver_credit(m, "1,100".into()).await)
            })
        })
        .collect();
    let mut credited: BTreeMap<String, Vec<Option<Decimal>>> = BTreeMap::new();
    for (user, r) in join_all(handles).await {
        credited.entry(user).or_default().push(r.unwrap());
    }
    let mut fx = Arc::into_inner(fx).unwrap();
    for u in &users {
        let outcomes = &credited[u];
        assert_eq!(outcomes.len(), 2, "{u}");
        let amounts: Vec<Decimal> = outcomes.iter().flatten().copied().collect();
        assert_eq!(
            amounts.len(),
            1,
            "{u}: credited once, then 'delivered before'"
        );
        let shard = fx.store.shard(u);
        let balance: Decimal = sqlx::query_scalar(&format!(
            "SELECT available_amount FROM {}.user_credit_account WHERE user_id = ?",
            shard.db
        ))
        .bind(u)
        .fetch_one(&mut fx.conn)
        .await
        .unwrap();
        assert_eq!(balance, amounts[0], "{u}: the balance is the one order");
    }
    assert_eq!(
        fx.count_all("user_credit_order", "user_id LIKE 'prize_user_%'")
            .await,
        users.len() as i64
    );
    assert_eq!(
        fx.count_all(
            "user_award_record",
            "user_id LIKE 'prize_user_%' AND award_state <> 'completed'"
        )
        .await,
        0
    );
    let (grouped, regrouped) = fx.store.group_stats();
    // The first deliveries of a database's users are queued together and grouped; the
    // second ones find their records delivered, so their group falls back.
    assert!(
        grouped > 0 && regrouped > 0,
        "both paths ran ({grouped} grouped, {regrouped} alone after a rollback)"
    );
    fx.drop_databases().await;
}

/// A group reuses a user's unused (`create`) raffle order as a single draw does, and a
/// user id spelled otherwise than its account row (ids compare case-insensitively) draws
/// from that account, grouped or alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn grouped_draws_reuse_unused_orders_and_accept_other_spellings() {
    let mut fx = Fixture::with_stock(&[], Stock::Grouped).await;
    let users: Vec<String> = (0..10).map(|i| format!("reuse_user_{i:02}")).collect();
    // Two spellings the router (Java's case-sensitive hashCode) puts in one user
    // database, where they are one account row (their orders may be in different tables).
    let place = |u: &str| fx.store.shard(u).db.clone();
    let (mixed, lower) = (0..1000)
        .map(|i| (format!("CaseUser{i}"), format!("caseuser{i}")))
        .find(|(a, b)| place(a) == place(b))
        .expect("two spellings in one user database");
    for u in users.iter().map(String::as_str).chain([mixed.as_str()]) {
        fx.recharge(u, 9013, &format!("reuse_key_{u}"))
            .await
            .unwrap();
    }
    // Unused orders, as a Java node's partake leaves them when its draw fails.
    let mut unused = BTreeMap::new();
    for (i, u) in users.iter().take(2).enumerate() {
        let shard = fx.store.shard(u);
        let order_id = format!("90000000000{i}");
        sqlx::query(&format!(
            "INSERT INTO {}.user_raffle_order{} (user_id, activity_id, activity_name,
                 strategy_id, order_id, order_time, order_state)
             VALUES (?, ?, 'reuse', 100006, ?, NOW(), 'create')",
            shard.db, shard.sfx
        ))
        .bind(u)
        .bind(ACTIVITY)
        .bind(&order_id)
        .execute(&mut fx.conn)
        .await
        .unwrap();
        unused.insert(u.clone(), order_id);
    }
    let fx = Arc::new(fx);
    let draw_all = |names: Vec<String>| {
        let handles = names
            .into_iter()
            .map(|u| {
                let fx = fx.clone();
                tokio::spawn(async move { (u.clone(), fx.activity.draw(u, ACTIVITY).await) })
            })
            .collect();
        join_all(handles)
    };
    // First the ten users together: the two with unused orders reuse them in the group.
    for (user, r) in draw_all(users.clone()).await {
        let r = r.unwrap_or_else(|e| panic!("{user}: {e}"));
        if let Some(order_id) = unused.get(&user) {
            assert_eq!(&r.order_id, order_id, "{user} reuses the unused order");
        }
    }
    let (grouped, regrouped) = fx.store.group_stats();
    assert!(
        grouped > 0 && regrouped == 0,
        "the reuse ran in groups ({grouped} grouped, {regrouped} alone after a rollback)"
    );
    // Then with the other spelling among them: the group reads an account row under a
    // spelling no draw used, so it steps back and every draw runs alone.
    let mut names = users.clone();
    names.push(lower.clone());
    for (user, r) in draw_all(names).await {
        r.unwrap_or_else(|e| panic!("{user}: {e}"));
    }
    // Alone (nothing else queued), under the other spelling again.
    fx.activity.draw(lower.clone(), ACTIVITY).await.unwrap();
    let mut fx = Arc::into_inner(fx).unwrap();
    for u in &users {
        let left = fx
            .activity
            .account(u, ACTIVITY)
            .await
            .unwrap()
            .total_count_surplus;
        let expected = if unused.contains_key(u) { 4 } else { 3 };
        assert_eq!(left, expected, "{u}: a reused order takes no quota");
    }
    let view = fx.activity.account(&mixed, ACTIVITY).await.unwrap();
    assert_eq!(
        view.total_count_surplus, 3,
        "two draws under the other spelling"
    );
    assert_eq!(
        fx.count_all("user_raffle_order", "order_state = 'create'")
            .await,
        0
    );
    assert_eq!(
        fx.count_all("user_award_record", "user_id LIKE 'reuse_user_%'")
            .await,
        20
    );
    let (_, regrouped) = fx.store.group_stats();
    assert!(regrouped > 0, "the group with two spellings stepped back");
    fx.drop_databases().await;
}
