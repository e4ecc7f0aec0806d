//! Scale-out: three `serve` nodes on user databases spread over two MariaDB servers, a
//! three-master Redis Cluster and RabbitMQ. Each user's rows must be on the server the
//! router names, shared stock must stay exact under 64 connections spread over the
//! nodes, and a `kill -9` of one node in the middle of the load must keep the crash
//! invariants (nothing lost, nothing twice, stock adds up, every task delivered).
//!
//! The second MariaDB server (port 3307) and the cluster (ports 7001–7003) are started by
//! the test in temporary directories and stopped by their guards, even on failure; the
//! shared servers at 3306, 6379 and 5672 only get this run's databases, prefix and queues.

#![cfg(feature = "production-tests")]

mod support;

use big_market_adapters::redis_store::StockKey;
use big_market_adapters::router::Router;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::servers::{private_cluster, private_mariadb};
use support::{Production, Server, Snapshot};

const USERS: usize = 48;
const DRAWS_PER_USER: usize = 30;
const CONNECTIONS: usize = 64;
const NODES: usize = 3;
const AWARD_STOCK: i64 = 500;
const SKU_STOCK: i64 = 100;
const ACTIVITY: i64 = 900400;
const STRATEGY: i64 = 900400;
const SKU: i64 = 990400;
const STOCKED: [i64; 2] = [102, 103];
const MARIADB_PORT: u16 = 3307;
const CLUSTER_PORTS: [u16; 3] = [7001, 7002, 7003];

/// Awards 102 and 103 with 500 units each (their tree falls back to the luck award 101),
/// SKU 990400 granting 30 draws.
fn configure_sql() -> String {
    format!(
        "INSERT INTO strategy (strategy_id, strategy_desc) VALUES ({STRATEGY}, 'scale');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES ({STRATEGY}, 102, 'a', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 1),
                  ({STRATEGY}, 103, 'b', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 2),
                  ({STRATEGY}, 101, 'luck', 0, 0, '0.0000', NULL, 3);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES ({ACTIVITY}, 'scale', 'scale', '2020-01-01 00:00:00', '2099-01-01 00:00:00', {STRATEGY}, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
           VALUES ({SKU}, {DRAWS_PER_USER}, {DRAWS_PER_USER}, {DRAWS_PER_USER});
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES ({SKU}, {ACTIVITY}, {SKU}, {SKU_STOCK}, {SKU_STOCK}, '1.00');"
    )
}

fn users() -> Vec<String> {
    (0..USERS).map(|u| format!("scale{u}")).collect()
}

/// The crash invariants once the stock is settled: every order used, quota used =
/// orders, one award record and one task per order, granted + left = initial.
fn check_counts(s: &Snapshot, answered: usize) {
    let total = USERS * DRAWS_PER_USER;
    assert_eq!(s.orders.len(), total, "raffle orders");
    assert!(
        answered <= total && total - answered <= CONNECTIONS,
        "{answered} draws answered 0000, {total} orders"
    );
    assert!(
        s.orders.iter().all(|o| o.state == "used"),
        "every order used"
    );
    let mut per_user = BTreeMap::<&str, i64>::new();
    for o in &s.orders {
        *per_user.entry(o.user.as_str()).or_default() += 1;
    }
    assert_eq!(s.accounts.len(), USERS, "accounts");
    for a in &s.accounts {
        assert_eq!(
            (a.total, a.surplus, per_user.get(a.user.as_str()).copied()),
            (DRAWS_PER_USER as i64, 0, Some(DRAWS_PER_USER as i64)),
            "user {}: quota used = raffle orders",
            a.user
        );
    }
    let records = s.records_by_order();
    let tasks = s.award_tasks();
    for o in &s.orders {
        let id = o.order_id.as_str();
        assert_eq!(records.get(id).map_or(0, Vec::len), 1, "records of {id}");
        assert_eq!(tasks.get(id).map_or(0, Vec::len), 1, "tasks of {id}");
    }
    assert_eq!((s.records.len(), tasks.len()), (total, total));
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

/// Each user's rows are on the server of the database the router names, in the table it
/// names, and nowhere else; each server holds only its own user database.
async fn check_placement(prod: &Production) {
    let router = Router::new(prod.options.db_count, prod.options.tb_count).unwrap();
    for (i, name) in prod.options.user_databases().iter().enumerate() {
        let db = i as u32 + 1;
        for other in 1..=prod.options.db_count {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
            )
            .bind(name)
            .fetch_one(prod.pool_of(other))
            .await
            .unwrap();
            let expected =
                i64::from(other == db || prod.options.url_of(other) == prod.options.url_of(db));
            assert_eq!(n, expected, "{name} on the server of database {other}");
        }
    }
    let mut per_server = BTreeMap::<String, usize>::new();
    for user in users() {
        let route = router.route(&user);
        let db = route.database(&prod.options.database);
        let rows: Vec<(String,)> = support::rows_on(
            prod.pool_of(route.db),
            &format!(
                "SELECT order_id FROM `{db}`.user_raffle_order{} WHERE user_id = '{user}'",
                route.suffix()
            ),
        )
        .await;
        assert_eq!(
            rows.len(),
            DRAWS_PER_USER,
            "{user}'s orders in {db}{}",
            route.suffix()
        );
        *per_server
            .entry(prod.options.url_of(route.db).to_owned())
            .or_default() += 1;
    }
    eprintln!("users per server: {per_server:?}");
    assert_eq!(per_server.len(), 2, "both servers hold users");
}

/// Job leases, the block list and cache invalidation on the cluster, through the same
/// types the nodes use.
async fn check_cluster_parts(seeds: &[String]) {
    use big_market_adapters::redis_store::{
        Invalidation, Notice, RedisBlockList, RedisLock, RedisServers, connect_to,
    };
    use big_market_domain::guard::BlockList;
    let (clients, conn) = connect_to(&RedisServers::Cluster(seeds.to_vec()))
        .await
        .expect("cluster");
    assert!(conn.is_cluster());
    let prefix = format!("bmsparts:{}:", std::process::id());
    let lock = RedisLock::new(conn.clone(), prefix.clone()).unwrap();
    let lease = Duration::from_secs(30);
    let held = lock
        .try_lead("job", lease)
        .await
        .unwrap()
        .expect("first lease");
    assert!(
        lock.try_lead("job", lease).await.unwrap().is_none(),
        "one leader"
    );
    assert!(held.renew(lease).await.unwrap());
    assert!(held.release().await.unwrap());
    assert!(
        lock.try_lead("job", lease).await.unwrap().is_some(),
        "free again"
    );
    let blocks = RedisBlockList::new(conn.clone(), prefix.clone()).unwrap();
    let now = jiff::Timestamp::now();
    for n in 1..=3 {
        assert_eq!(blocks.reject("u1", now, lease).await.unwrap(), n);
    }
    assert_eq!(blocks.rejections("u1", now).await.unwrap(), 3);
    // Publish through the cluster; a subscriber on another node gets it.
    let mut nodes = clients.clone();
    nodes.rotate_left(2);
    let subscriber = Invalidation::on_nodes(nodes, conn.clone(), prefix.clone()).unwrap();
    let mut sub = subscriber.subscribe().await.unwrap();
    let publisher = Invalidation::on_nodes(clients, conn, prefix).unwrap();
    publisher.publish("strategy", 7).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), sub.recv())
        .await
        .expect("invalidation delivered");
    match got {
        Some(Notice::Invalidate(e)) => assert_eq!((e.kind.as_str(), e.id), ("strategy", 7)),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_on_two_mariadb_servers_and_a_redis_cluster_keep_every_invariant() {
    let mariadb_dir = tempfile::tempdir().unwrap();
    let _mariadb = private_mariadb(mariadb_dir.path(), MARIADB_PORT).await;
    let cluster_dir = tempfile::tempdir().unwrap();
    let _cluster = private_cluster(cluster_dir.path(), CLUSTER_PORTS).await;
    let seeds: Vec<String> = CLUSTER_PORTS
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    // User database 1 on the shared server (with the config database), 2 on the private one.
    let shard_urls = vec![
        support::mysql_url(),
        format!("mysql://root@127.0.0.1:{MARIADB_PORT}"),
    ];
    check_cluster_parts(&seeds).await;
    let prod = Production::create_on("bms", shard_urls, Some(seeds)).await;
    support::with_cleanup(&prod, async {
        prod.config_sql(&configure_sql()).await;
        let env = prod.env(&support::amqp_url());
        let dirs: Vec<_> = (0..NODES).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut servers = Vec::new();
        for dir in &dirs {
            servers.push(Server::start(dir.path(), &env).await);
        }
        let bases: Vec<String> = servers.iter().map(|s| s.base.clone()).collect();
        support::armory(&bases[0], ACTIVITY).await;
        let users = users();
        for (i, chunk) in users.chunks(USERS / NODES).enumerate() {
            support::recharge(&bases[i % NODES], chunk, SKU).await;
        }

        // 64 connections over three nodes, every node drawing for every user; the last
        // node is killed a third of the way through.
        let answered = Arc::new(AtomicUsize::new(0));
        let per_node = CONNECTIONS / NODES + 1;
        let loads: Vec<_> = bases
            .iter()
            .map(|base| {
                let (base, users, answered) = (base.clone(), users.clone(), answered.clone());
                tokio::spawn(async move {
                    support::draw_until_spent(&base, &users, ACTIVITY, per_node, answered).await
                })
            })
            .collect();
        let total = USERS * DRAWS_PER_USER;
        support::eventually(
            "a third of the draws",
            Duration::from_secs(300),
            async || answered.load(Ordering::SeqCst) >= total / 3,
        )
        .await;
        servers.pop().expect("three nodes").kill9();
        let mut finished = Vec::new();
        for load in loads {
            finished.push(load.await.expect("load"));
        }
        assert_eq!(
            finished,
            [true, true, false],
            "the surviving nodes spent every quota; the killed node's load saw it gone"
        );
        let answered = answered.load(Ordering::SeqCst);
        eprintln!("{answered} draws answered 0000 of {total}");

        let keys: Vec<StockKey> = STOCKED
            .iter()
            .map(|&award_id| StockKey::Award {
                strategy_id: STRATEGY,
                award_id: award_id as i32,
            })
            .chain([StockKey::Sku { sku: SKU }])
            .collect();
        support::until_ok(
            "stock settled in Redis and SQL",
            Duration::from_secs(90),
            async || {
                let s = prod.snapshot(ACTIVITY, STRATEGY, SKU).await;
                for key in &keys {
                    let sql = match key {
                        StockKey::Award { award_id, .. } => s.award_surplus[&i64::from(*award_id)],
                        StockKey::Sku { .. } => s.sku_surplus,
                    };
                    prod.redis_settled(*key, sql).await?;
                }
                Ok(())
            },
        )
        .await;
        check_counts(&prod.snapshot(ACTIVITY, STRATEGY, SKU).await, answered);
        check_placement(&prod).await;
        support::eventually(
            "every task completed",
            Duration::from_secs(120),
            async || {
                let s = prod.snapshot(ACTIVITY, STRATEGY, SKU).await;
                s.tasks.iter().all(|t| t.state == "completed")
            },
        )
        .await;
        drop(servers);
    })
    .await;
}
