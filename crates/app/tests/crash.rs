//! `kill -9` in the middle of a draw load, then a restart: stock, quota, orders, award
//! records and tasks must still add up exactly, and every task must be delivered.
//!
//! Runs the real binary as a child process on the embedded backend.

use rusqlite::Connection;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

const USERS: usize = 40;
const DRAWS_PER_USER: usize = 50;
const AWARD_STOCK: i64 = 700;
const SKU_STOCK: i64 = 100;

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_big-market"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .env("BIG_MARKET_LOG_FILTER", "warn")
            .env("BIG_MARKET_OUTBOX_INTERVAL_SECS", "1")
            .env("BIG_MARKET_OUTBOX_STALE_SECS", "3")
            .env("BIG_MARKET_OUTBOX_RETRY_BASE_SECS", "1")
            .env("BIG_MARKET_OPENAI_TIMEOUT_MS", "400")
            // A debug build under 64 connections is slow; the test is about crashes.
            .env("BIG_MARKET_DRAW_TIMEOUT_MS", "10000")
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("server.log"))
                    .expect("log file"),
            )
            .spawn()
            .expect("server starts");
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..300 {
            if let Some(status) = server.child.try_wait().expect("child status") {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                panic!("server exited with {status}:\n{log}");
            }
            if client
                .get(format!("{}/health", server.base))
                .send()
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not come up on port {port}");
    }

    fn kill9(mut self) {
        // `Child::kill` is SIGKILL on Unix: no shutdown hook runs.
        self.child.kill().expect("kill -9");
        self.child.wait().expect("reaped");
    }
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Option<Value> {
    let resp = client
        .post(format!("{base}/api/v1/raffle/{path}"))
        .json(&body)
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

fn open(dir: &Path) -> Connection {
    let conn = Connection::open(dir.join("big-market.db")).expect("open store");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// Activity 900300 / strategy 900300: awards 102 and 103 with 700 units each (their tree
/// falls back to the luck award 101 when they run out), SKU 990300 granting 50 draws.
fn configure(conn: &Connection) {
    conn.execute_batch(&format!(
        "INSERT INTO strategy (strategy_id, strategy_desc) VALUES (900300, 'crash');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES (900300, 102, 'a', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 1),
                  (900300, 103, 'b', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 2),
                  (900300, 101, 'luck', 0, 0, '0.0000', NULL, 3);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES (900300, 'crash', 'crash', '2020-01-01 00:00:00', '2099-01-01 00:00:00', 900300, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
           VALUES (990300, {DRAWS_PER_USER}, {DRAWS_PER_USER}, {DRAWS_PER_USER});
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES (990300, 900300, 990300, {SKU_STOCK}, {SKU_STOCK}, '1.00');"
    ))
    .expect("configure");
}

/// Draws for every user until their quota is spent or the server is gone, 64 requests
/// at a time, counting the draws that answered `0000` in `answered`.
async fn draw_load(base: &str, answered: Arc<AtomicUsize>) {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..64 {
        let (client, base) = (client.clone(), base.to_owned());
        let (answered, next) = (answered.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= USERS * DRAWS_PER_USER * 2 {
                    return;
                }
                let user = format!("crash{}", i % USERS);
                let body = json!({"userId": user, "activityId": 900300});
                match post(&client, &base, "activity/draw", body).await {
                    Some(v) if v["code"] == "0000" => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(_) => {}   // quota spent
                    None => return, // the server is gone
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..600 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    configure(&open(dir.path()));
    let client = reqwest::Client::new();
    let armory = client
        .get(format!(
            "{}/api/v1/raffle/activity/armory?activityId=900300",
            server.base
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(armory["code"], "0000", "{armory}");
    for u in 0..USERS {
        let v = post(
            &client,
            &server.base,
            "activity/sku_recharge",
            json!({"userId": format!("crash{u}"), "sku": 990300, "outBusinessNo": format!("crash-{u}")}),
        )
        .await
        .unwrap();
        assert_eq!(v["code"], "0000", "{v}");
    }

    // Kill -9 with 64 draws in flight, a third of the way through the load.
    let total = USERS * DRAWS_PER_USER;
    let answered = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn({
        let (base, answered) = (server.base.clone(), answered.clone());
        async move { draw_load(&base, answered).await }
    });
    eventually("a third of the draws", || {
        answered.load(Ordering::SeqCst) >= total / 3
    })
    .await;
    server.kill9();
    load.await.unwrap();
    let before_restart = answered.load(Ordering::SeqCst);
    assert!(before_restart < total, "the kill cut the load short");

    // Restart on the same files and spend every draw that is left.
    let server = Server::start(dir.path()).await;
    draw_load(&server.base, Arc::new(AtomicUsize::new(0))).await;

    let conn = open(dir.path());
    // Quota: every user drew exactly what they were granted, and the orders say so.
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM user_raffle_order WHERE activity_id = 900300"
        ),
        total as i64
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM raffle_activity_account a WHERE activity_id = 900300
               AND total_count - total_count_surplus <>
                   (SELECT COUNT(*) FROM user_raffle_order o WHERE o.user_id = a.user_id AND o.activity_id = 900300)"
        ),
        0,
        "per user, quota used = raffle orders"
    );
    // One award record and one task per order.
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM user_raffle_order o WHERE activity_id = 900300 AND
               (SELECT COUNT(*) FROM user_award_record r WHERE r.order_id = o.order_id) <> 1"
        ),
        0,
        "every order has exactly one award record"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT COUNT(*) FROM user_raffle_order o WHERE activity_id = 900300 AND
               (SELECT COUNT(*) FROM task t WHERE t.topic = 'send_award'
                  AND json_extract(t.message, '$.data.orderId') = o.order_id) <> 1"
        ),
        0,
        "every order has exactly one task"
    );
    // Stock: granted + remaining = initial, for each award and for the SKU.
    for award in [102, 103] {
        let granted = count(
            &conn,
            &format!(
                "SELECT COUNT(*) FROM user_award_record WHERE activity_id = 900300 AND award_id = {award}"
            ),
        );
        let left = count(
            &conn,
            &format!(
                "SELECT award_count_surplus FROM strategy_award WHERE strategy_id = 900300 AND award_id = {award}"
            ),
        );
        assert_eq!(
            granted + left,
            AWARD_STOCK,
            "award {award}: {granted} + {left}"
        );
    }
    let orders = count(
        &conn,
        "SELECT COUNT(*) FROM raffle_activity_order WHERE sku = 990300",
    );
    let left = count(
        &conn,
        "SELECT stock_count_surplus FROM raffle_activity_sku WHERE sku = 990300",
    );
    assert_eq!((orders, orders + left), (USERS as i64, SKU_STOCK));
    // Every task is eventually delivered, the ones cut off by the kill included.
    eventually("every task completed", || {
        count(
            &conn,
            "SELECT COUNT(*) FROM task WHERE state <> 'completed'",
        ) == 0
    })
    .await;
    server.kill9();
}
