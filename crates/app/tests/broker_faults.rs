//! Faults of a production deployment (MariaDB + Redis + RabbitMQ) beyond a TCP cut, each
//! injected under 64-connection draw load: the RabbitMQ node itself restarted, a `serve`
//! node killed while it holds a job lease, and a node whose clock runs 30 s ahead.
//!
//! After each, the crash tests' invariants: one order, one award record and one
//! `send_award` task per draw, every task completed, each credit award credited once (one
//! credit order keyed by its raffle order, balances = the sum of their orders), quota used
//! = orders, award stock = granted + left in Redis and SQL, and every `openai_use_count`
//! prize sent to the external account service under its order id as idempotency key: a
//! resend after a crash carries the same key, so the service applies it once.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

mod support;

use big_market_adapters::redis_store::StockKey;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{AccountService, Production, Server, Snapshot};

const CONNECTIONS: usize = 64;
/// Activity, strategy and SKU id of every test (each test has its own databases).
const ID: i64 = 900500;
const STOCK: i64 = 100_000;
const QUOTA: i64 = 100_000;

/// Strategy `ID`: award 101 (`user_credit_random`: credited by the consumer, no stock
/// rule) and award 102 (`openai_use_count`: granted by the external account service; its
/// tree takes a unit of its stock), half each, stock to spare; one recharge gives a user
/// more draws than a test makes.
fn configure_sql() -> String {
    format!(
        "INSERT INTO strategy (strategy_id, strategy_desc) VALUES ({ID}, 'faults');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES ({ID}, 101, 'credits', {STOCK}, {STOCK}, '0.5000', NULL, 1),
                  ({ID}, 102, 'openai', {STOCK}, {STOCK}, '0.5000', 'tree_luck_award', 2);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES ({ID}, 'faults', 'faults', '2020-01-01 00:00:00', '2099-01-01 00:00:00', {ID}, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
           VALUES ({ID}, {QUOTA}, {QUOTA}, {QUOTA});
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES ({ID}, {ID}, {ID}, 1000, 1000, '1.00');"
    )
}

fn users() -> Vec<String> {
    (0..CONNECTIONS).map(|u| format!("fault{u}")).collect()
}

/// Draws on every connection until stopped: connection *i* draws for user *i* one draw
/// after the other (so no draw waits on another of its user), on the node
/// `nodes[i % len]` of the moment (a test takes a node out before it kills it).
struct Load {
    nodes: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    /// `0000` answers.
    answered: Arc<AtomicUsize>,
    /// Requests that got no answer (their node was killed under them).
    unanswered: Arc<AtomicUsize>,
    /// Every other answer, for the failure message.
    refused: Arc<Mutex<Vec<String>>>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(nodes: &[String], users: &[String]) -> Self {
        let nodes = Arc::new(Mutex::new(nodes.to_vec()));
        let stop = Arc::new(AtomicBool::new(false));
        let (answered, unanswered): (Arc<AtomicUsize>, Arc<AtomicUsize>) = Default::default();
        let refused: Arc<Mutex<Vec<String>>> = Arc::default();
        let client = reqwest::Client::new();
        let workers = users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let (nodes, stop, answered, unanswered, refused, client, user) = (
                    nodes.clone(),
                    stop.clone(),
                    answered.clone(),
                    unanswered.clone(),
                    refused.clone(),
                    client.clone(),
                    user.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::SeqCst) {
                        let base = {
                            let nodes = nodes.lock().unwrap();
                            nodes[i % nodes.len()].clone()
                        };
                        let body = json!({"userId": user, "activityId": ID});
                        match support::post(&client, &base, "activity/draw", body).await {
                            Some(v) if v["code"] == "0000" => {
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                            Some(v) => {
                                refused.lock().unwrap().push(v.to_string());
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            None => {
                                unanswered.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            nodes,
            stop,
            answered,
            unanswered,
            refused,
            workers,
        }
    }

    fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// Waits until `more` draws past `from` answered `0000`.
    async fn until_answered(&self, what: &str, from: usize, more: usize) {
        support::eventually(what, Duration::from_secs(300), async || {
            self.answered() >= from + more
        })
        .await;
    }

    /// Draws from now on go to `nodes` only.
    fn retarget(&self, nodes: &[String]) {
        *self.nodes.lock().unwrap() = nodes.to_vec();
    }

    /// Stops the workers: `(0000 answers, unanswered requests, other answers)`.
    async fn stop(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.workers {
            w.await.expect("draw worker");
        }
        let refused = self.refused.lock().unwrap().clone();
        (
            self.answered.load(Ordering::SeqCst),
            self.unanswered.load(Ordering::SeqCst),
            refused,
        )
    }
}

/// Keys the account service got more than once that are not among `in_flight` (the
/// orders that existed when the fault struck): a resend the fault does not explain.
fn unexplained_resends(
    calls: &[(String, String, i64)],
    in_flight: &BTreeSet<String>,
) -> Vec<String> {
    let mut count = BTreeMap::<&str, usize>::new();
    for (key, _, _) in calls {
        *count.entry(key.as_str()).or_default() += 1;
    }
    count
        .into_iter()
        .filter(|(key, n)| *n > 1 && !in_flight.contains(*key))
        .map(|(key, _)| key.to_owned())
        .collect()
}

/// The order ids that exist now.
/// The three faults run one after another: each loads the machine and times its own
/// outage, and one's load would blur what another measures.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn order_ids(prod: &Production) -> BTreeSet<String> {
    let s = prod.snapshot(ID, ID, ID).await;
    s.orders.into_iter().map(|o| o.order_id).collect()
}

/// `award_config` of award 102: the uses one `openai_use_count` prize grants.
async fn openai_quota(prod: &Production) -> i64 {
    let rows: Vec<(String,)> = support::rows_on(
        &prod.pool,
        &format!(
            "SELECT award_config FROM `{}`.award WHERE award_id = 102",
            prod.options.database
        ),
    )
    .await;
    rows[0]
        .0
        .trim()
        .parse()
        .expect("award 102 grants a number of uses")
}

/// What the account service saw: how many keys it was sent more than once.
struct Sends {
    calls: usize,
    keys: usize,
    resent_keys: usize,
}

/// The invariants once everything settled (`Err` says what is not there yet); the orders
/// must number at least `answered` and at most `answered + unanswered`.
fn settled(
    s: &Snapshot,
    answered: usize,
    unanswered: usize,
    calls: &[(String, String, i64)],
    quota: i64,
) -> Result<Sends, String> {
    let draws = s.orders.len();
    if draws < answered || draws > answered + unanswered {
        return Err(format!(
            "{draws} orders for {answered} draws answered and {unanswered} unanswered"
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
    if (tasks.len(), s.records.len()) != (draws, draws) {
        return Err(format!(
            "{} send_award tasks, {} records for {draws} orders",
            tasks.len(),
            s.records.len()
        ));
    }
    if let Some(t) = s.tasks.iter().find(|t| t.state != "completed") {
        return Err(format!("task not delivered yet: {t:?}"));
    }
    // Quota used = orders, per user.
    let mut orders_of = BTreeMap::<&str, i64>::new();
    for o in &s.orders {
        *orders_of.entry(o.user.as_str()).or_default() += 1;
    }
    for a in &s.accounts {
        let used = a.total - a.surplus;
        if used != orders_of.get(a.user.as_str()).copied().unwrap_or(0) {
            return Err(format!("account {a:?}: {used} used"));
        }
    }
    // Credits: once per credit award, balances = the sum of the orders.
    let mut credits = BTreeMap::<&str, Vec<&(String, String, i64)>>::new();
    for c in &s.credit_orders {
        credits.entry(c.1.as_str()).or_default().push(c);
    }
    // The account service: every key it was sent is an openai award's order, with that
    // record's user and the award's uses.
    let mut sent = BTreeMap::<&str, Vec<&(String, String, i64)>>::new();
    for c in calls {
        sent.entry(c.0.as_str()).or_default().push(c);
    }
    for r in &s.records {
        let ok = match r.award_id {
            101 => {
                r.state == "completed"
                    && credits
                        .get(format!("award_{}", r.order_id).as_str())
                        .is_some_and(|c| c.len() == 1 && c[0].0 == r.user)
            }
            102 => {
                r.state == "completed"
                    && sent.get(r.order_id.as_str()).is_some_and(|c| {
                        c.iter()
                            .all(|(_, user, uses)| *user == r.user && *uses == quota)
                    })
            }
            _ => false,
        };
        if !ok {
            return Err(format!("award record not settled: {r:?}"));
        }
    }
    let (luck, openai) = (
        s.records.iter().filter(|r| r.award_id == 101).count(),
        s.records.iter().filter(|r| r.award_id == 102).count(),
    );
    if s.credit_orders.len() != luck {
        return Err(format!(
            "{} credit orders for {luck} credit awards",
            s.credit_orders.len()
        ));
    }
    if sent.len() != openai {
        let orders: BTreeSet<&str> = s.records.iter().map(|r| r.order_id.as_str()).collect();
        let stray: Vec<_> = sent.keys().filter(|k| !orders.contains(*k)).collect();
        return Err(format!(
            "the account service got {} keys for {openai} openai awards; not an order: {stray:?}",
            sent.len()
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
    // Stock: granted + left = stock, in SQL (Redis is compared by the caller).
    let left = s.award_surplus.get(&102).copied().unwrap_or(-1);
    if left + openai as i64 != STOCK {
        return Err(format!("award 102: {openai} granted, {left} left in SQL"));
    }
    if s.sku_surplus != 1000 - CONNECTIONS as i64 {
        return Err(format!(
            "SKU: {} left after {CONNECTIONS} recharges",
            s.sku_surplus
        ));
    }
    Ok(Sends {
        calls: calls.len(),
        keys: sent.len(),
        resent_keys: sent.values().filter(|c| c.len() > 1).count(),
    })
}

/// Polls until [`settled`] holds and Redis's counters equal SQL with no reservation open.
async fn until_settled(
    prod: &Production,
    accounts: &AccountService,
    answered: usize,
    unanswered: usize,
) -> Sends {
    let quota = openai_quota(prod).await;
    let mut sends = None;
    support::until_ok(
        "every task delivered and the stock settled",
        Duration::from_secs(240),
        async || {
            let s = prod.snapshot(ID, ID, ID).await;
            sends = Some(settled(&s, answered, unanswered, &accounts.calls(), quota)?);
            let award = StockKey::Award {
                strategy_id: ID,
                award_id: 102,
            };
            prod.redis_settled(award, s.award_surplus[&102]).await?;
            prod.redis_settled(StockKey::Sku { sku: ID }, s.sku_surplus)
                .await?;
            Ok(())
        },
    )
    .await;
    sends.expect("checked")
}

impl std::fmt::Display for Sends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the account service got {} calls for {} keys ({} keys more than once)",
            self.calls, self.keys, self.resent_keys
        )
    }
}

async fn start_node(dir: &std::path::Path, env: Vec<(String, String)>) -> Server {
    Server::start(dir, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rabbitmq_restart_under_load_loses_no_task_and_the_consumers_come_back() {
    let _alone = ONE_AT_A_TIME.lock().await;
    // A node of the test's own on its reserved ports: this one is stopped and started.
    let mut rabbit = support::PrivateRabbit::start(5680, 25680).await;
    let accounts = AccountService::start().await;
    let prod = Production::create("bmq").await;
    prod.config_sql(&configure_sql()).await;
    support::with_cleanup(&prod, async {
        let users = users();
        let dir = tempfile::tempdir().unwrap();
        let mut env = prod.env(&rabbit.url);
        env.extend(accounts.env());
        let server = start_node(dir.path(), env).await;
        support::armory(&server.base, ID).await;
        support::recharge(&server.base, &users, ID).await;
        let load = Load::start(std::slice::from_ref(&server.base), &users);
        load.until_answered("draws before the restart", 0, 300).await;

        // The broker goes away (a clean stop, as `rabbitmqctl stop`), draws go on.
        let stopped_at = Instant::now();
        rabbit.stop().await;
        let at_stop = load.answered();
        load.until_answered("draws while RabbitMQ is down", at_stop, 300)
            .await;
        let down = load.answered() - at_stop;
        // Back on the same data directory: durable queues, persistent messages.
        rabbit.start_again().await;
        let outage = stopped_at.elapsed();
        let before_up = order_ids(&prod).await;
        let at_up = load.answered();
        load.until_answered("draws after the restart", at_up, 300).await;
        let (answered, unanswered, refused) = load.stop().await;
        assert!(
            refused.is_empty() && unanswered == 0,
            "every draw answers 0000 throughout: {unanswered} unanswered, {} refused, e.g. {:?}",
            refused.len(),
            refused.first()
        );

        let delivered_from = Instant::now();
        let sends = until_settled(&prod, &accounts, answered, 0).await;
        eprintln!(
            "rabbitmq restart: {answered} draws ({down} while the node was down, outage {outage:?}); \
             everything delivered {:?} after the load; {sends}",
            delivered_from.elapsed()
        );
        // A key sent twice belongs to a delivery the restart cut (its ack lost).
        let unexplained = unexplained_resends(&accounts.calls(), &before_up);
        assert!(unexplained.is_empty(), "resent: {unexplained:?}");
        // The same process reconnected: it saw the connection fail and carried on.
        let log = server.log();
        assert!(
            log.contains("consumer connection failed"),
            "the consumers saw the restart:\n{log}"
        );
        drop(server);
    })
    .await;
    drop(rabbit);
}

/// `{host}:{pid}:{random}` of a lease key, or `None` when no one holds it.
async fn lease_holder(
    redis: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> Option<(u32, String, i64)> {
    let (token, pttl): (Option<String>, i64) = redis::pipe()
        .get(key)
        .pttl(key)
        .query_async(redis)
        .await
        .expect("redis");
    let token = token?;
    let pid = token.split(':').nth(1)?.parse().ok()?;
    Some((pid, token, pttl))
}

async fn redis_conn(prod: &Production) -> redis::aio::MultiplexedConnection {
    redis::Client::open(prod.redis_url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_holding_the_compensation_lease_is_taken_over_and_sends_nothing_twice() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let accounts = AccountService::start().await;
    // Deliveries stay in flight long enough for the kill to cut some.
    accounts.set_delay(Duration::from_millis(300));
    let prod = Production::create("bml").await;
    prod.config_sql(&configure_sql()).await;
    support::with_cleanup(&prod, async {
        let users = users();
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut env = prod.env(&support::amqp_url());
        env.extend(accounts.env());
        let a = start_node(dir_a.path(), env.clone()).await;
        let b = start_node(dir_b.path(), env).await;
        support::armory(&a.base, ID).await;
        support::recharge(&a.base, &users, ID).await;
        let load = Load::start(&[a.base.clone(), b.base.clone()], &users);
        load.until_answered("draws on both nodes", 0, 300).await;

        // Catch the compensation lease held, freeze its holder mid-round (SIGSTOP: it can
        // neither finish the round nor release), check it still holds the lease, kill it.
        let compensation = format!("{}big-market-compensation", prod.redis_prefix);
        let writeback = format!("{}big-market-stock_writeback", prod.redis_prefix);
        let mut redis = redis_conn(&prod).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        let (victim, survivor, token) = loop {
            assert!(Instant::now() < deadline, "never saw the compensation lease held");
            let Some((pid, token, _)) = lease_holder(&mut redis, &compensation).await else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            let (victim, survivor) = if pid == a.pid() { (&a, &b) } else { (&b, &a) };
            assert_eq!(victim.pid(), pid, "the lease names one of the two nodes");
            victim.signal("STOP");
            // A release already on the wire lands within this wait.
            tokio::time::sleep(Duration::from_millis(200)).await;
            match lease_holder(&mut redis, &compensation).await {
                Some((_, held, _)) if held == token => break (victim, survivor, token),
                _ => victim.signal("CONT"),
            }
        };
        load.retarget(std::slice::from_ref(&survivor.base));
        let at_kill = load.answered();
        let sends_at_kill = accounts.calls().len();
        victim.signal("KILL");
        let killed_at = Instant::now();
        let before_kill = order_ids(&prod).await;

        // The dead node's lease stays until it expires (6 × the 1 s outbox interval);
        // nobody takes it before, then the survivor does.
        let mut expired_after = None;
        support::eventually(
            "the survivor leads the compensation",
            Duration::from_secs(60),
            async || match lease_holder(&mut redis, &compensation).await {
                Some((_, held, pttl)) if held == token => {
                    assert!(pttl <= 6000, "lease of {pttl} ms");
                    false
                }
                Some((pid, _, _)) => {
                    expired_after.get_or_insert(killed_at.elapsed());
                    assert_eq!(pid, survivor.pid(), "only the survivor is alive");
                    true
                }
                None => {
                    expired_after.get_or_insert(killed_at.elapsed());
                    false
                }
            },
        )
        .await;
        let took_over = killed_at.elapsed();
        support::eventually(
            "the survivor leads the stock write-back",
            Duration::from_secs(60),
            async || {
                lease_holder(&mut redis, &writeback)
                    .await
                    .is_some_and(|(pid, _, _)| pid == survivor.pid())
            },
        )
        .await;

        load.until_answered("draws on the survivor", at_kill, 300)
            .await;
        let (answered, unanswered, refused) = load.stop().await;
        assert!(
            refused.is_empty(),
            "every answered draw is 0000: {} refused, e.g. {:?}",
            refused.len(),
            refused.first()
        );
        let sends = until_settled(&prod, &accounts, answered, unanswered).await;
        eprintln!(
            "lease holder killed: lease free {expired_after:?} and the survivor leading {took_over:?} \
             after the kill; {answered} draws answered, {unanswered} cut by the kill; \
             {sends_at_kill} sends to the account service before the kill; {sends}"
        );
        // A key sent twice belongs to an order of before the kill: a delivery the kill
        // cut, sent again by the survivor under the same key.
        let unexplained = unexplained_resends(&accounts.calls(), &before_kill);
        assert!(unexplained.is_empty(), "resent: {unexplained:?}");
        let log = survivor.log();
        assert!(!log.contains("panicked"), "{log}");
    })
    .await;
}

/// Every open reservation's stamp (ms, Redis's clock) of this deployment, and Redis's
/// time.
async fn reservation_stamps(
    redis: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> (Vec<i64>, i64) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*_reserved"))
        .query_async(redis)
        .await
        .expect("keys");
    let mut stamps = Vec::new();
    for key in keys {
        let scored: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(redis)
            .await
            .expect("zrange");
        stamps.extend(scored.into_iter().map(|(_, at)| at));
    }
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(redis).await.expect("time");
    (stamps, secs * 1000 + micros / 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_30_s_ahead_neither_steals_leases_nor_sweeps_live_reservations() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let accounts = AccountService::start().await;
    let prod = Production::create("bms").await;
    prod.config_sql(&configure_sql()).await;
    support::with_cleanup(&prod, async {
        let users = users();
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut env = prod.env(&support::amqp_url());
        env.extend(accounts.env());
        let a = start_node(dir_a.path(), env.clone()).await;
        // Node b's clock (wall and monotonic) runs 30 s ahead; reservations are swept
        // 5 s after they are made (`prod.env`), so a sweep by b's clock would take every
        // live one.
        env.push(("LD_PRELOAD".into(), support::libfaketime()));
        env.push(("FAKETIME".into(), "+30s".into()));
        let b = start_node(dir_b.path(), env).await;
        support::armory(&a.base, ID).await;
        support::recharge(&a.base, &users, ID).await;
        let load = Load::start(&[a.base.clone(), b.base.clone()], &users);

        // Sample the leases and reservations while both nodes draw, for at least one
        // sweep period of each node (5 s) and 600 draws.
        let mut redis = redis_conn(&prod).await;
        let jobs = [
            ("compensation", 6_000),
            ("stock_writeback", 5_000),
            ("stock_sweep", 60_000),
        ];
        let mut held_by = BTreeMap::<(&str, u32), usize>::new();
        let (mut samples, mut stamps_seen) = (0usize, 0usize);
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(12) || load.answered() < 600 {
            assert!(began.elapsed() < Duration::from_secs(300), "load too slow");
            for (job, lease_ms) in jobs {
                let key = format!("{}big-market-{job}", prod.redis_prefix);
                if let Some((pid, _, pttl)) = lease_holder(&mut redis, &key).await {
                    assert!(pid == a.pid() || pid == b.pid(), "{job} held by {pid}");
                    assert!(
                        pttl <= lease_ms,
                        "{job} lease of node {pid} lasts {pttl} ms (at most {lease_ms})"
                    );
                    *held_by.entry((job, pid)).or_default() += 1;
                }
            }
            let (stamps, now) = reservation_stamps(&mut redis, &prod.redis_prefix).await;
            for at in &stamps {
                assert!(
                    *at <= now + 1_000,
                    "a reservation stamped {at} at Redis time {now}: not Redis's clock"
                );
            }
            stamps_seen += stamps.len();
            samples += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let (answered, unanswered, refused) = load.stop().await;
        let skew = node_clock_skews(&prod, &users).await;
        assert!(
            refused.is_empty() && unanswered == 0,
            "every draw answers 0000: {unanswered} unanswered, {} refused, e.g. {:?}",
            refused.len(),
            refused.first()
        );
        assert!(stamps_seen > 0, "no reservation seen in {samples} samples");
        assert!(
            held_by.keys().any(|(_, pid)| *pid == b.pid()),
            "the skewed node never led a job: {held_by:?}"
        );
        let sends = until_settled(&prod, &accounts, answered, 0).await;
        eprintln!(
            "clock skew: {answered} draws; order times ahead of MariaDB by node: {skew:?}; \
             {samples} samples, {stamps_seen} reservation stamps, leases held {held_by:?} \
             (a = {}, b = {}); {sends}",
            a.pid(),
            b.pid()
        );
        // b's orders carry its clock: the skew was in effect.
        assert!(skew.1 - skew.0 >= 20, "{skew:?}");
        // No fault, so no resend: a node judging tasks stale by its own clock would
        // send fresh ones again.
        assert_eq!(sends.resent_keys, 0, "{sends}");
    })
    .await;
}

/// The latest order time of node a's users (even connections) and node b's (odd), in
/// seconds ahead of MariaDB's clock: `order_time` is written with the node's clock (in
/// the service's time zone, so both may be hours off; their difference is the skew).
async fn node_clock_skews(prod: &Production, users: &[String]) -> (i64, i64) {
    let mut latest = [i64::MIN, i64::MIN];
    for (i, db) in prod.options.user_databases().into_iter().enumerate() {
        for t in prod.options.table_suffixes() {
            let rows: Vec<(String, i64)> = support::rows_on(
                &prod.db_pools[i],
                &format!(
                    "SELECT user_id, CAST(TIMESTAMPDIFF(SECOND, NOW(), MAX(order_time)) AS SIGNED)
                     FROM `{db}`.user_raffle_order{t} WHERE activity_id = {ID} GROUP BY user_id"
                ),
            )
            .await;
            for (user, ahead) in rows {
                let node = users.iter().position(|u| *u == user).expect("a test user") % 2;
                latest[node] = latest[node].max(ahead);
            }
        }
    }
    (latest[0], latest[1])
}
