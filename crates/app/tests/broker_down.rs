//! RabbitMQ unreachable while users draw, on the production backend (MariaDB shards +
//! Redis stock + RabbitMQ): draws still answer `0000` and their tasks wait in the outbox;
//! once the broker is back every task is delivered and every award record settled as
//! its award says, nothing lost and nothing twice.
//!
//! The broker of this machine is shared, so it is never stopped: the server reaches it
//! through a TCP relay of the test, which the outage closes (listener and every relayed
//! connection) and then opens again on the same port.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

mod support;

use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use support::{Production, Relay, Server, Snapshot};

const USERS: usize = 8;
const ACTIVITY: i64 = 900400;
const STRATEGY: i64 = 900400;
const SKU: i64 = 990400;
/// Draws per user before the outage, during it, and after it.
const BEFORE: usize = 3;
const DURING: usize = 5;
const AFTER: usize = 1;
const QUOTA: usize = BEFORE + DURING + AFTER;
const NOT_CONFIGURED: &str = "openai_use_count: the external account service is not configured";

/// Strategy 900400: award 101 (`user_credit_random` 1–100 in the sample: delivered by the
/// consumer as credits) and award 102 (`openai_use_count`: no account service is
/// configured, so the consumer keeps it `create` with the reason), stock to spare.
fn configure_sql() -> String {
    format!(
        "INSERT INTO strategy (strategy_id, strategy_desc) VALUES ({STRATEGY}, 'broker down');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES ({STRATEGY}, 101, 'credits', 1000, 1000, '0.5000', NULL, 1),
                  ({STRATEGY}, 102, 'openai', 1000, 1000, '0.5000', NULL, 2);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES ({ACTIVITY}, 'broker down', 'broker down', '2020-01-01 00:00:00', '2099-01-01 00:00:00', {STRATEGY}, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
           VALUES ({SKU}, {QUOTA}, {QUOTA}, {QUOTA});
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES ({SKU}, {ACTIVITY}, {SKU}, 100, 100, '1.00');"
    )
}

/// `n` draws of every user (users side by side, each user's draws one after the other),
/// every one of which must answer `0000`.
async fn draw(base: &str, users: &[String], n: usize) {
    let mut handles = Vec::new();
    for user in users {
        let (base, user) = (base.to_owned(), user.clone());
        handles.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..n {
                let v = support::post(
                    &client,
                    &base,
                    "activity/draw",
                    json!({"userId": user, "activityId": ACTIVITY}),
                )
                .await
                .expect("the server answers");
                assert_eq!(v["code"], "0000", "draw of {user}: {v}");
            }
        }));
    }
    for h in handles {
        h.await.expect("draws");
    }
}

/// Every task delivered, and every award record settled as its award says: 101 credited
/// once (`completed`, one credit order keyed by the raffle order, balances = the sum of
/// their orders), 102 kept `create` with the reason. Exactly one record and one
/// `send_award` task per order, `draws` orders in all.
fn delivered(s: &Snapshot, draws: usize) -> Result<(), String> {
    if s.orders.len() != draws || s.records.len() != draws {
        return Err(format!(
            "{} orders and {} records for {draws} draws",
            s.orders.len(),
            s.records.len()
        ));
    }
    let (tasks, records) = (s.award_tasks(), s.records_by_order());
    for o in &s.orders {
        let id = o.order_id.as_str();
        let (t, r) = (
            tasks.get(id).map_or(0, Vec::len),
            records.get(id).map_or(0, Vec::len),
        );
        if (o.state.as_str(), t, r) != ("used", 1, 1) {
            return Err(format!("order {o:?}: {t} task(s), {r} record(s)"));
        }
    }
    if tasks.len() != draws {
        return Err(format!("{} send_award tasks", tasks.len()));
    }
    if let Some(t) = s.tasks.iter().find(|t| t.state != "completed") {
        return Err(format!("task not delivered yet: {t:?}"));
    }
    let mut credits = BTreeMap::<&str, Vec<&(String, String, i64)>>::new();
    for c in &s.credit_orders {
        credits.entry(c.1.as_str()).or_default().push(c);
    }
    for r in &s.records {
        let ok = match r.award_id {
            101 => {
                r.state == "completed"
                    && credits
                        .get(format!("award_{}", r.order_id).as_str())
                        .is_some_and(|c| c.len() == 1 && c[0].0 == r.user)
            }
            102 => r.state == "create" && r.note.as_deref() == Some(NOT_CONFIGURED),
            _ => false,
        };
        if !ok {
            return Err(format!("award record not settled: {r:?}"));
        }
    }
    let luck = s.records.iter().filter(|r| r.award_id == 101).count();
    if s.credit_orders.len() != luck {
        return Err(format!(
            "{} credit orders for {luck} credit awards",
            s.credit_orders.len()
        ));
    }
    let mut sums = BTreeMap::<&str, i64>::new();
    for (user, _, cents) in &s.credit_orders {
        *sums.entry(user.as_str()).or_default() += cents;
    }
    for (user, total, available) in &s.credit_accounts {
        let sum = sums.get(user.as_str()).copied().unwrap_or(0);
        if (*total, *available) != (sum, sum) {
            return Err(format!(
                "credit account of {user}: {total}/{available}, orders {sum}"
            ));
        }
    }
    if s.credit_accounts.len() != sums.len() {
        return Err(format!(
            "{} credit accounts for {} users credited",
            s.credit_accounts.len(),
            sums.len()
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn draws_go_on_while_the_broker_is_down_and_every_task_is_delivered_after() {
    let prod = Production::create("bmb").await;
    // Before the server first loads it: Redis counters are created from these rows.
    prod.config_sql(&configure_sql()).await;
    support::with_cleanup(&prod, async {
        let users: Vec<String> = (0..USERS).map(|u| format!("broker{u}")).collect();
        let dir = tempfile::tempdir().unwrap();
        let (mut relay, relayed_url) = Relay::to_broker().await;
        let server = Server::start(dir.path(), &prod.env(&relayed_url)).await;
        support::armory(&server.base, ACTIVITY).await;
        support::recharge(&server.base, &users, SKU).await;
        let snapshot = async || prod.snapshot(ACTIVITY, STRATEGY, SKU).await;

        // Broker up: the draws are delivered.
        draw(&server.base, &users, BEFORE).await;
        let before = USERS * BEFORE;
        support::until_ok(
            "the first draws delivered",
            Duration::from_secs(60),
            async || delivered(&snapshot().await, before),
        )
        .await;

        // Broker unreachable: draws still answer 0000; their tasks stay in the outbox,
        // tried and failed (`fail`, attempts counted), none delivered.
        relay.down();
        let down_at = std::time::Instant::now();
        draw(&server.base, &users, DURING).await;
        let during = before + USERS * DURING;
        support::until_ok(
            "the outbox retrying while the broker is down",
            Duration::from_secs(60),
            async || {
                let s = snapshot().await;
                let completed = s.tasks.iter().filter(|t| t.state == "completed").count();
                assert_eq!(
                    (s.orders.len(), s.tasks.len(), completed),
                    (during, during, before),
                    "nothing is delivered while the broker is unreachable"
                );
                let waiting: Vec<_> = s.tasks.iter().filter(|t| t.state != "completed").collect();
                assert!(
                    waiting
                        .iter()
                        .all(|t| t.state == "create" || t.state == "fail"),
                    "{waiting:?}"
                );
                let undelivered = s
                    .records
                    .iter()
                    .filter(|r| r.state == "create" && r.note.is_none())
                    .count();
                assert_eq!(undelivered, USERS * DURING, "no consumer ran on them");
                match waiting.iter().find(|t| t.state != "fail" || t.attempts < 2) {
                    None => Ok(()),
                    Some(t) => Err(format!("not yet retried: {t:?}")),
                }
            },
        )
        .await;
        eprintln!("broker down for {:?}", down_at.elapsed());

        // Broker back: the outbox publishes again, the consumers reconnect and consume.
        let links_before = relay.relayed();
        relay.up().await;
        let up_at = std::time::Instant::now();
        support::until_ok(
            "every task delivered after the broker came back",
            Duration::from_secs(120),
            async || delivered(&snapshot().await, during),
        )
        .await;
        eprintln!("delivered {:?} after the broker came back", up_at.elapsed());
        // The publisher and the three consumers each opened a new connection.
        assert!(
            relay.relayed() >= links_before + 4,
            "{} connections relayed after the outage",
            relay.relayed() - links_before
        );
        let log = server.log();
        assert!(
            log.contains("consumer connection failed"),
            "the consumers saw the outage:\n{log}"
        );

        // And the recovered links carry new draws as before.
        draw(&server.base, &users, AFTER).await;
        support::until_ok(
            "the last draws delivered",
            Duration::from_secs(60),
            async || delivered(&snapshot().await, during + USERS * AFTER),
        )
        .await;
        let s = snapshot().await;
        assert!(
            s.accounts.iter().all(|a| a.surplus == 0),
            "{:?}",
            s.accounts
        );
        server.kill9();
    })
    .await;
}
