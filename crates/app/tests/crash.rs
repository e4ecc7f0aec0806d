//! `kill -9` in the middle of a draw load, then a restart: stock, quota, orders, award
//! records and tasks must still add up exactly, and every task must be delivered.
//!
//! Runs the real binary as a child process, once on the embedded backend and once on the
//! production backend (MariaDB shards + Redis stock + RabbitMQ), with the same load and
//! the same invariants.

mod support;

use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{AwardRecord, Server, Snapshot, Task};

const USERS: usize = 40;
const DRAWS_PER_USER: usize = 50;
const CONNECTIONS: usize = 64;
const AWARD_STOCK: i64 = 700;
const SKU_STOCK: i64 = 100;
const ACTIVITY: i64 = 900300;
const STRATEGY: i64 = 900300;
const SKU: i64 = 990300;
/// The shutdown deadline the SIGTERM test gives the server (a debug build under load).
const SHUTDOWN_TIMEOUT_MS: u64 = 20_000;
/// The awards with stock; 101 is the luck award their tree falls back to.
const STOCKED: [i64; 2] = [102, 103];

/// Activity 900300 / strategy 900300: awards 102 and 103 with 700 units each (their tree
/// falls back to the luck award 101 when they run out), SKU 990300 granting 50 draws.
/// The same SQL for SQLite and MariaDB.
fn configure_sql() -> String {
    format!(
        "INSERT INTO strategy (strategy_id, strategy_desc) VALUES ({STRATEGY}, 'crash');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES ({STRATEGY}, 102, 'a', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 1),
                  ({STRATEGY}, 103, 'b', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 2),
                  ({STRATEGY}, 101, 'luck', 0, 0, '0.0000', NULL, 3);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES ({ACTIVITY}, 'crash', 'crash', '2020-01-01 00:00:00', '2099-01-01 00:00:00', {STRATEGY}, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
           VALUES ({SKU}, {DRAWS_PER_USER}, {DRAWS_PER_USER}, {DRAWS_PER_USER});
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES ({SKU}, {ACTIVITY}, {SKU}, {SKU_STOCK}, {SKU_STOCK}, '1.00');"
    )
}

fn users() -> Vec<String> {
    (0..USERS).map(|u| format!("crash{u}")).collect()
}

/// Starts a server with `env`, configures activity 900300 with `configure` (run once the
/// server is up: the embedded store is created by it), recharges every user, kills the
/// server with 64 draws in flight a third of the way through the load, restarts it on
/// the same store and spends every draw that is left. Returns the draws answered `0000`
/// and the restarted server.
async fn crash_and_restart(
    dir: &Path,
    env: &[(String, String)],
    configure: impl AsyncFnOnce(),
    after_kill: impl AsyncFnOnce(),
) -> (usize, Server) {
    stop_and_restart(dir, env, Stop::Kill, configure, async |_| {
        after_kill().await
    })
    .await
}

/// How the server is stopped in the middle of the load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `kill -9`.
    Kill,
    /// SIGTERM: the server must exit with status 0 within its shutdown deadline.
    #[cfg_attr(not(feature = "production-tests"), allow(dead_code))]
    Term,
}

/// [`crash_and_restart`] with the way of stopping chosen; `after_stop` gets the draws
/// answered `0000` before the stop.
async fn stop_and_restart(
    dir: &Path,
    env: &[(String, String)],
    stop: Stop,
    configure: impl AsyncFnOnce(),
    after_stop: impl AsyncFnOnce(usize),
) -> (usize, Server) {
    let users = users();
    let server = Server::start(dir, env).await;
    configure().await;
    support::armory(&server.base, ACTIVITY).await;
    support::recharge(&server.base, &users, SKU).await;

    let total = USERS * DRAWS_PER_USER;
    let answered = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn({
        let (base, users, answered) = (server.base.clone(), users.clone(), answered.clone());
        async move { support::draw_until_spent(&base, &users, ACTIVITY, CONNECTIONS, answered).await }
    });
    support::eventually(
        "a third of the draws",
        Duration::from_secs(300),
        async || answered.load(Ordering::SeqCst) >= total / 3,
    )
    .await;
    match stop {
        Stop::Kill => server.kill9(),
        Stop::Term => {
            let (status, took) = server.terminate(Duration::from_secs(60)).await;
            eprintln!("SIGTERM: exited with {status} after {took:?}");
            assert!(status.success(), "exit status after SIGTERM: {status}");
            assert!(
                took < Duration::from_millis(SHUTDOWN_TIMEOUT_MS),
                "exited {took:?} after SIGTERM, past its deadline"
            );
        }
    }
    assert!(!load.await.unwrap(), "the stop cut the load short");
    let before_restart = answered.load(Ordering::SeqCst);
    assert!(before_restart < total);
    after_stop(before_restart).await;

    let server = Server::start(dir, env).await;
    eprintln!("{before_restart} of {total} draws answered before the kill");
    assert!(
        support::draw_until_spent(
            &server.base,
            &users,
            ACTIVITY,
            CONNECTIONS,
            answered.clone()
        )
        .await,
        "every quota spent after the restart:\n{}",
        server.log()
    );
    (answered.load(Ordering::SeqCst), server)
}

/// The invariants both backends must meet once the stock is settled.
fn check_counts(s: &Snapshot, answered: usize) {
    let total = USERS * DRAWS_PER_USER;
    // Every draw answered `0000` is in the store; the ones whose answer the kill cut off
    // were among the 64 in flight.
    assert_eq!(s.orders.len(), total, "raffle orders");
    assert!(
        answered <= total && total - answered <= CONNECTIONS,
        "{answered} draws answered 0000, {total} orders"
    );
    let unused: Vec<_> = s.orders.iter().filter(|o| o.state != "used").collect();
    assert!(unused.is_empty(), "orders not used: {unused:?}");
    // Quota: per user, used = raffle orders, and everything was spent.
    let mut orders_per_user = BTreeMap::<&str, i64>::new();
    for o in &s.orders {
        *orders_per_user.entry(o.user.as_str()).or_default() += 1;
    }
    assert_eq!(s.accounts.len(), USERS, "accounts");
    for a in &s.accounts {
        assert_eq!(
            (a.total, a.total - a.surplus),
            (
                DRAWS_PER_USER as i64,
                orders_per_user.get(a.user.as_str()).copied().unwrap_or(0)
            ),
            "user {}: quota used = raffle orders",
            a.user
        );
        assert_eq!(a.surplus, 0, "user {} spent everything", a.user);
    }
    // One award record and one send_award task per order, none without an order.
    let records = s.records_by_order();
    let tasks = s.award_tasks();
    for o in &s.orders {
        let id = o.order_id.as_str();
        assert_eq!(
            records.get(id).map_or(0, Vec::len),
            1,
            "award records of {id}"
        );
        assert_eq!(
            tasks.get(id).map_or(0, Vec::len),
            1,
            "send_award tasks of {id}"
        );
    }
    assert_eq!((s.records.len(), tasks.len()), (total, total));
    // Stock: granted + remaining = initial, for each award and for the SKU.
    for award in STOCKED {
        let granted = s.records.iter().filter(|r| r.award_id == award).count() as i64;
        let left = s.award_surplus[&award];
        assert_eq!(
            granted + left,
            AWARD_STOCK,
            "award {award}: {granted} + {left}"
        );
    }
    assert_eq!(
        (s.sku_orders, s.sku_orders + s.sku_surplus),
        (USERS as i64, SKU_STOCK),
        "sku {SKU}: activity orders + surplus"
    );
}

/// Every task delivered, and every award record as its award's distributor leaves it:
/// the luck award's credits granted once (one credit order keyed by the raffle order),
/// the OpenAI prizes kept `create` with the reason (no account service is configured).
fn delivered(s: &Snapshot) -> Result<(), String> {
    let pending: Vec<&Task> = s.tasks.iter().filter(|t| t.state != "completed").collect();
    if !pending.is_empty() {
        return Err(format!(
            "{} task(s) not completed, e.g. {:?}",
            pending.len(),
            pending[0]
        ));
    }
    let mut credits = BTreeMap::<&str, usize>::new();
    for (_, key, _) in &s.credit_orders {
        *credits.entry(key.as_str()).or_default() += 1;
    }
    let final_state = |r: &AwardRecord| match r.award_id {
        101 => {
            r.state == "completed"
                && credits.get(format!("award_{}", r.order_id).as_str()) == Some(&1)
        }
        _ => {
            r.state == "create"
                && r.note.as_deref()
                    == Some("openai_use_count: the external account service is not configured")
        }
    };
    if let Some(r) = s.records.iter().find(|r| !final_state(r)) {
        return Err(format!("award record not delivered: {r:?}"));
    }
    let luck = s.records.iter().filter(|r| r.award_id == 101).count();
    if s.credit_orders.len() != luck {
        return Err(format!(
            "{} credit orders for {luck} luck awards",
            s.credit_orders.len()
        ));
    }
    Ok(())
}

fn open(dir: &Path) -> Connection {
    let conn = Connection::open(dir.join("big-market.db")).expect("open store");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Vec<T> {
    let mut stmt = conn.prepare(sql).expect(sql);
    stmt.query_map([], f)
        .expect(sql)
        .collect::<Result<_, _>>()
        .expect(sql)
}

/// The embedded store's rows, in the shape of the production snapshot.
fn embedded_snapshot(conn: &Connection) -> Snapshot {
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    Snapshot {
        orders: rows(
            conn,
            &format!("SELECT user_id, order_id, order_state FROM user_raffle_order WHERE activity_id = {ACTIVITY}"),
            |r| Ok(support::RaffleOrder { user: r.get(0)?, order_id: r.get(1)?, state: r.get(2)? }),
        ),
        accounts: rows(
            conn,
            &format!("SELECT user_id, total_count, total_count_surplus FROM raffle_activity_account WHERE activity_id = {ACTIVITY}"),
            |r| Ok(support::Account { user: r.get(0)?, total: r.get(1)?, surplus: r.get(2)? }),
        ),
        records: rows(
            conn,
            &format!("SELECT user_id, order_id, award_id, award_state, delivery_note FROM user_award_record WHERE activity_id = {ACTIVITY}"),
            |r| Ok(AwardRecord { user: r.get(0)?, order_id: r.get(1)?, award_id: r.get(2)?, state: r.get(3)?, note: r.get(4)? }),
        ),
        tasks: rows(conn, "SELECT user_id, topic, message, state, attempts FROM task", |r| {
            Ok(Task::new(r.get(0)?, r.get(1)?, &r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
        }),
        credit_orders: rows(
            conn,
            "SELECT user_id, out_business_no, CAST(ROUND(CAST(trade_amount AS REAL) * 100) AS INTEGER) FROM user_credit_order",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ),
        credit_accounts: rows(
            conn,
            "SELECT user_id, CAST(ROUND(CAST(total_amount AS REAL) * 100) AS INTEGER),
                    CAST(ROUND(CAST(available_amount AS REAL) * 100) AS INTEGER) FROM user_credit_account",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ),
        award_surplus: rows(
            conn,
            &format!("SELECT award_id, award_count_surplus FROM strategy_award WHERE strategy_id = {STRATEGY}"),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .into_iter()
        .collect(),
        sku_orders: one(&format!("SELECT COUNT(*) FROM raffle_activity_order WHERE sku = {SKU}")),
        sku_surplus: one(&format!("SELECT stock_count_surplus FROM raffle_activity_sku WHERE sku = {SKU}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (answered, server) = crash_and_restart(
        dir.path(),
        &[],
        async || {
            open(&path)
                .execute_batch(&configure_sql())
                .expect("configure");
        },
        async || {},
    )
    .await;
    let conn = open(dir.path());
    check_counts(&embedded_snapshot(&conn), answered);
    // Every task is eventually delivered, the ones cut off by the kill included.
    support::until_ok(
        "every task delivered",
        Duration::from_secs(60),
        async || delivered(&embedded_snapshot(&conn)),
    )
    .await;
    server.kill9();
}

/// The production backend's run: compiled only with `--features production-tests`.
#[cfg(feature = "production-tests")]
mod production {
    use super::*;
    use big_market_adapters::redis_store::StockKey;
    use support::Production;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_killed_server_on_mariadb_redis_and_rabbitmq_loses_and_duplicates_nothing() {
        let prod = Production::create("bmc").await;
        support::with_cleanup(&prod, async {
            let dir = tempfile::tempdir().unwrap();
            let env = prod.env(&support::amqp_url());
            let keys: Vec<StockKey> = STOCKED
                .iter()
                .map(|&award_id| StockKey::Award {
                    strategy_id: STRATEGY,
                    award_id: award_id as i32,
                })
                .chain([StockKey::Sku { sku: SKU }])
                .collect();
            let (answered, server) = crash_and_restart(
                dir.path(),
                &env,
                async || prod.config_sql(&configure_sql()).await,
                async || {
                    let mut open = Vec::new();
                    for key in &keys {
                        open.push(prod.stock.pending(*key).await.expect("pending"));
                    }
                    eprintln!("reservations left open by the kill: {open:?}");
                },
            )
            .await;
            let started = std::time::Instant::now();

            // The sweeper settles the reservations the kill left (older than 5 s), and the
            // write-back brings the SQL surplus to the Redis counters.
            support::until_ok(
                "stock settled in Redis and SQL",
                Duration::from_secs(60),
                async || {
                    let s = prod.snapshot(ACTIVITY, STRATEGY, SKU).await;
                    for key in &keys {
                        let sql = match key {
                            StockKey::Award { award_id, .. } => {
                                s.award_surplus[&i64::from(*award_id)]
                            }
                            StockKey::Sku { .. } => s.sku_surplus,
                        };
                        prod.redis_settled(*key, sql).await?;
                    }
                    Ok(())
                },
            )
            .await;
            let snapshot = prod.snapshot(ACTIVITY, STRATEGY, SKU).await;
            eprintln!(
                "stock settled {:?} after the load; surplus {:?}, sku {}",
                started.elapsed(),
                snapshot.award_surplus,
                snapshot.sku_surplus
            );
            check_counts(&snapshot, answered);

            support::eventually(
                "every task delivered",
                Duration::from_secs(120),
                async || delivered(&prod.snapshot(ACTIVITY, STRATEGY, SKU).await).is_ok(),
            )
            .await;
            server.kill9();
        })
        .await;
    }

    /// SIGTERM while 64 connections draw: the server answers what it took, stops its jobs
    /// and exits 0 within its deadline; every answered draw is in SQL, no reservation is
    /// left open and each SQL surplus equals its Redis counter without any sweep. After a
    /// restart the same invariants as after a crash hold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_terminated_server_on_mariadb_redis_and_rabbitmq_finishes_its_work() {
        let prod = Production::create("bmt").await;
        support::with_cleanup(&prod, async {
            let dir = tempfile::tempdir().unwrap();
            let mut env = prod.env(&support::amqp_url());
            env.push((
                "BIG_MARKET_SHUTDOWN_TIMEOUT_MS".into(),
                SHUTDOWN_TIMEOUT_MS.to_string(),
            ));
            // No sweep in the window that is checked: only the shutdown settles stock.
            env.retain(|(k, _)| k != "BIG_MARKET_STOCK_RESERVATION_SECS");
            let keys = stock_keys();
            let (answered, server) = stop_and_restart(
                dir.path(),
                &env,
                Stop::Term,
                async || prod.config_sql(&configure_sql()).await,
                async |answered| {
                    let s = prod.snapshot(ACTIVITY, STRATEGY, SKU).await;
                    assert_eq!(
                        s.orders.len(),
                        answered,
                        "raffle orders in SQL = draws answered 0000 before the stop"
                    );
                    for key in &keys {
                        let sql = match key {
                            StockKey::Award { award_id, .. } => {
                                s.award_surplus[&i64::from(*award_id)]
                            }
                            StockKey::Sku { .. } => s.sku_surplus,
                        };
                        prod.redis_settled(*key, sql)
                            .await
                            .unwrap_or_else(|e| panic!("after SIGTERM: {e}"));
                    }
                },
            )
            .await;
            support::until_ok(
                "stock settled in Redis and SQL",
                Duration::from_secs(60),
                async || {
                    let s = prod.snapshot(ACTIVITY, STRATEGY, SKU).await;
                    for key in &keys {
                        let sql = match key {
                            StockKey::Award { award_id, .. } => {
                                s.award_surplus[&i64::from(*award_id)]
                            }
                            StockKey::Sku { .. } => s.sku_surplus,
                        };
                        prod.redis_settled(*key, sql).await?;
                    }
                    Ok(())
                },
            )
            .await;
            check_counts(&prod.snapshot(ACTIVITY, STRATEGY, SKU).await, answered);
            server.kill9();
        })
        .await;
    }

    fn stock_keys() -> Vec<StockKey> {
        STOCKED
            .iter()
            .map(|&award_id| StockKey::Award {
                strategy_id: STRATEGY,
                award_id: award_id as i32,
            })
            .chain([StockKey::Sku { sku: SKU }])
            .collect()
    }
}
