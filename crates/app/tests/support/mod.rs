//! Shared by the process-level tests (`crash`, `broker_down`, `scale_out`): the real binary as a child
//! process, either on the embedded store or on MariaDB + Redis + RabbitMQ under fresh
//! names (databases `bmc_{pid}_{rand}`, Redis and queue prefixes of the same run), a TCP
//! relay to the broker that a test can cut, and a snapshot of the sharded tables.
//!
//! Test settings come from `TEST_MYSQL_URL`, `TEST_REDIS_URL` and `TEST_AMQP_URL`; the
//! child gets its configuration as `BIG_MARKET_*` variables, and inherits none.

#![allow(dead_code)] // each test crate uses its own part

use big_market_adapters::amqp::{AmqpBus, AmqpOptions, ConsumerPolicy};
use big_market_adapters::mysql::MysqlOptions;
use big_market_adapters::redis_store::{RedisServers, RedisStock, StockKey};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// The outbox's first retry delay given to the child (seconds); the queue cleanup needs
/// it to name the delay queues.
pub const RETRY_BASE_SECS: u64 = 1;

pub fn mysql_url() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// The binary with no inherited `BIG_MARKET_*` setting (a developer's shell must not
/// turn the embedded test into a MariaDB one, or point a test at a real broker).
fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_big-market"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BIG_MARKET_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// A running `big-market serve`; killed (SIGKILL) when dropped, so a failing test leaves
/// no server behind.
pub struct Server {
    child: Child,
    pub base: String,
    log: std::path::PathBuf,
}

impl Server {
    /// Starts the binary on a free port with `env` on top of the test defaults and waits
    /// for `/health`.
    pub async fn start(dir: &Path, env: &[(String, String)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = dir.join("server.log");
        let child = binary()
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(dir)
            .env("BIG_MARKET_LOG_FILTER", "warn")
            .env("BIG_MARKET_OUTBOX_INTERVAL_SECS", "1")
            .env("BIG_MARKET_OUTBOX_STALE_SECS", "3")
            .env(
                "BIG_MARKET_OUTBOX_RETRY_BASE_SECS",
                RETRY_BASE_SECS.to_string(),
            )
            .env("BIG_MARKET_OPENAI_TIMEOUT_MS", "400")
            // A debug build under 64 connections is slow; the tests are about failures.
            .env("BIG_MARKET_DRAW_TIMEOUT_MS", "10000")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            )
            .spawn()
            .expect("server starts");
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.child.try_wait().expect("child status") {
                panic!("server exited with {status}:\n{}", server.log());
            }
            if client
                .get(format!("{}/health", server.base))
                .send()
                .await
                .is_ok()
            {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "server did not come up on port {port}:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's log so far (all runs on this directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for the process to exit, at most `limit`: its exit status and
    /// how long it took.
    pub async fn terminate(mut self, limit: Duration) -> (std::process::ExitStatus, Duration) {
        let began = Instant::now();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success(), "kill -TERM failed");
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return (status, began.elapsed());
            }
            assert!(
                began.elapsed() < limit,
                "the server did not exit within {limit:?} of SIGTERM:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: no shutdown hook runs.
    pub fn kill9(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `Child::kill` is SIGKILL on Unix.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> Option<Value> {
    let resp = client
        .post(format!("{base}/api/v1/raffle/{path}"))
        .json(&body)
        .send()
        .await
        .ok()?;
    resp.json().await.ok()
}

/// `activity/armory` of `activity_id`, which must answer `0000`.
pub async fn armory(base: &str, activity_id: i64) {
    let armory = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/raffle/activity/armory?activityId={activity_id}"
        ))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(armory["code"], "0000", "{armory}");
}

/// `activity/sku_recharge` of `sku` for each user, each of which must answer `0000`.
pub async fn recharge(base: &str, users: &[String], sku: i64) {
    let client = reqwest::Client::new();
    for user in users {
        let v = post(
            &client,
            base,
            "activity/sku_recharge",
            json!({"userId": user, "sku": sku, "outBusinessNo": format!("{user}-{sku}")}),
        )
        .await
        .unwrap();
        assert_eq!(v["code"], "0000", "{v}");
    }
}

/// The codes of a spent quota (total, month, day).
fn quota_spent(code: &Value) -> bool {
    ["ERR_BIZ_006", "ERR_BIZ_007", "ERR_BIZ_008"]
        .iter()
        .any(|c| code == c)
}

/// Draws for `users` until the server says each one's quota is spent, or until it is
/// gone, `connections` requests at a time (several on one user at once). Counts the
/// `0000` answers in `answered`; other answers (a timeout, the breaker) are retried.
/// Whether every quota was seen spent.
pub async fn draw_until_spent(
    base: &str,
    users: &[String],
    activity_id: i64,
    connections: usize,
    answered: Arc<AtomicUsize>,
) -> bool {
    draw_counting(
        base,
        users,
        activity_id,
        connections,
        answered,
        Codes::default(),
    )
    .await
}

/// Every answer's code with the time it came, in order, for a test that asks what users
/// saw and when.
pub type Codes = Arc<Mutex<Vec<(Instant, String)>>>;

/// [`draw_until_spent`], counting every answer's code in `codes` too.
pub async fn draw_counting(
    base: &str,
    users: &[String],
    activity_id: i64,
    connections: usize,
    answered: Arc<AtomicUsize>,
    codes: Codes,
) -> bool {
    let client = reqwest::Client::new();
    let users: Arc<Vec<String>> = Arc::new(users.to_vec());
    let spent: Arc<Vec<AtomicBool>> =
        Arc::new(users.iter().map(|_| AtomicBool::new(false)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let gone = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (client, base) = (client.clone(), base.to_owned());
        let (users, spent, next, gone, answered, codes) = (
            users.clone(),
            spent.clone(),
            next.clone(),
            gone.clone(),
            answered.clone(),
            codes.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                if gone.load(Ordering::SeqCst) || spent.iter().all(|s| s.load(Ordering::SeqCst)) {
                    return;
                }
                assert!(Instant::now() < deadline, "draws did not finish in time");
                let i = next.fetch_add(1, Ordering::SeqCst) % users.len();
                if spent[i].load(Ordering::SeqCst) {
                    continue;
                }
                let body = json!({"userId": users[i], "activityId": activity_id});
                let answer = post(&client, &base, "activity/draw", body).await;
                if let Some(code) = answer.as_ref().and_then(|v| v["code"].as_str()) {
                    codes
                        .lock()
                        .unwrap()
                        .push((Instant::now(), code.to_owned()));
                }
                match answer {
                    Some(v) if v["code"] == "0000" => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(v) if quota_spent(&v["code"]) => spent[i].store(true, Ordering::SeqCst),
                    // A timeout or the open breaker: try again a little later.
                    Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    None => {
                        gone.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("draw worker");
    }
    spent.iter().all(|s| s.load(Ordering::SeqCst))
}

/// Polls `check` every 100 ms until it holds, failing the test after `limit`.
pub async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    until_ok(what, limit, async || {
        if check().await {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })
    .await
}

/// Polls `check` every 100 ms until it is `Ok`, failing the test with its last error
/// after `limit`.
pub async fn until_ok(
    what: &str,
    limit: Duration,
    mut check: impl AsyncFnMut() -> Result<(), String>,
) {
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) => assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh production setup: its own databases, Redis prefix and queue prefix, migrated
/// with `big-market migrate --sample-data` (upstream's awards and rule trees).
pub struct Production {
    pub options: MysqlOptions,
    /// The config database's server.
    pub pool: sqlx::MySqlPool,
    /// The server of each user database (index `db - 1`).
    pub db_pools: Vec<sqlx::MySqlPool>,
    pub redis_prefix: String,
    pub amqp_prefix: String,
    pub stock: RedisStock,
    /// Seed nodes when Redis is a cluster (the nodes' own test owns their keys).
    cluster: Option<Vec<String>>,
    redis: Option<redis::aio::ConnectionManager>,
    /// The single Redis the child is given (this machine's, or a test's private one);
    /// empty on a cluster.
    pub redis_url: String,
}

impl Production {
    pub async fn create(tag: &str) -> Self {
        Self::create_in(tag, Vec::new(), RedisServers::Single(redis_url())).await
    }

    /// As [`Production::create`], with the stock in the Redis at `redis`.
    pub async fn create_with_redis(tag: &str, redis: &str) -> Self {
        Self::create_in(tag, Vec::new(), RedisServers::Single(redis.to_owned())).await
    }

    /// As [`Production::create`], with user database *i + 1* on `shard_urls[i]` (empty:
    /// all on the config server) and Redis on the cluster of `cluster` seed nodes.
    pub async fn create_on(
        tag: &str,
        shard_urls: Vec<String>,
        cluster: Option<Vec<String>>,
    ) -> Self {
        let servers = match cluster {
            Some(seeds) => RedisServers::Cluster(seeds),
            None => RedisServers::Single(redis_url()),
        };
        Self::create_in(tag, shard_urls, servers).await
    }

    async fn create_in(tag: &str, shard_urls: Vec<String>, servers: RedisServers) -> Self {
        let run = format!(
            "{}_{}",
            std::process::id(),
            rand::random::<u32>() % 1_000_000
        );
        let options = MysqlOptions {
            url: mysql_url(),
            shard_urls,
            database: format!("{tag}_{run}"),
            ..Default::default()
        };
        let redis_prefix = format!("{tag}:{run}:");
        let amqp_prefix = format!("{tag}.{run}.");
        let out = binary()
            .args(["migrate", "--sample-data"])
            .env("BIG_MARKET_MYSQL_URL", &options.url)
            .env("BIG_MARKET_MYSQL_DATABASE", &options.database)
            .envs(shard_env(&options.shard_urls))
            .env("BIG_MARKET_LOG_FILTER", "warn")
            .output()
            .expect("big-market migrate runs");
        assert!(
            out.status.success(),
            "big-market migrate failed (the tests need MariaDB/MySQL at {}): {}",
            options.server(),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("sample data loaded"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(4)
            .connect(&options.url)
            .await
            .expect("test pool");
        let mut db_pools = Vec::new();
        for db in 1..=options.db_count {
            let url = options.url_of(db);
            db_pools.push(if url == options.url {
                pool.clone()
            } else {
                sqlx::mysql::MySqlPoolOptions::new()
                    .max_connections(4)
                    .connect(url)
                    .await
                    .unwrap_or_else(|e| panic!("test pool for {url}: {e}"))
            });
        }
        let (cluster, redis_url) = match &servers {
            RedisServers::Cluster(seeds) => (Some(seeds.clone()), String::new()),
            RedisServers::Single(url) => (None, url.clone()),
        };
        let (_, conn) = big_market_adapters::redis_store::connect_to(&servers)
            .await
            .unwrap_or_else(|e| panic!("{e}: the tests need Redis"));
        let stock = RedisStock::new(conn.clone(), redis_prefix.clone())
            .await
            .expect("redis stock");
        let redis = match conn {
            big_market_adapters::redis_store::RedisConn::Single(c) => Some(c),
            big_market_adapters::redis_store::RedisConn::Cluster(_) => None,
        };
        Self {
            options,
            pool,
            db_pools,
            redis_prefix,
            amqp_prefix,
            stock,
            cluster,
            redis,
            redis_url,
        }
    }

    /// The server of user database `db` (`big_market_01` is 1).
    pub fn pool_of(&self, db: u32) -> &sqlx::MySqlPool {
        &self.db_pools[db as usize - 1]
    }

    /// The child's configuration; `amqp` is the broker URL it is given (a relay's, or the
    /// broker's own).
    pub fn env(&self, amqp: &str) -> Vec<(String, String)> {
        let redis = match &self.cluster {
            Some(seeds) => ("BIG_MARKET_REDIS_CLUSTER_URLS", toml_list(seeds)),
            None => ("BIG_MARKET_REDIS_URL", self.redis_url.clone()),
        };
        let mut env = [
            ("BIG_MARKET_MYSQL_URL", self.options.url.clone()),
            ("BIG_MARKET_MYSQL_DATABASE", self.options.database.clone()),
            redis,
            ("BIG_MARKET_REDIS_PREFIX", self.redis_prefix.clone()),
            ("BIG_MARKET_AMQP_URL", amqp.to_owned()),
            ("BIG_MARKET_AMQP_PREFIX", self.amqp_prefix.clone()),
            // The sweeper settles a crash's reservations after 5 s, not a minute.
            ("BIG_MARKET_STOCK_RESERVATION_SECS", "5".into()),
            ("BIG_MARKET_STOCK_WRITEBACK_MS", "200".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec();
        env.extend(shard_env(&self.options.shard_urls));
        env
    }

    /// Runs `sql` (several statements) in the config database.
    pub async fn config_sql(&self, sql: &str) {
        sqlx::raw_sql(&format!("USE `{}`; {sql}", self.options.database))
            .execute(&self.pool)
            .await
            .expect("configure");
    }

    /// Every `(database, suffix, server)` of the sharded tables.
    fn shards(&self) -> Vec<(String, String, &sqlx::MySqlPool)> {
        let mut shards = Vec::new();
        for (db, pool) in self
            .options
            .user_databases()
            .into_iter()
            .zip(&self.db_pools)
        {
            for t in self.options.table_suffixes() {
                shards.push((db.clone(), t, pool));
            }
        }
        shards
    }

    async fn rows<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::mysql::MySqlRow> + Send + Unpin,
    {
        rows_on(&self.pool, sql).await
    }

    /// Everything of `activity_id` (its strategy and SKU), over every shard.
    pub async fn snapshot(&self, activity_id: i64, strategy_id: i64, sku: i64) -> Snapshot {
        let mut s = Snapshot::default();
        for (db, t, pool) in self.shards() {
            s.orders.extend(
                rows_on(
                    pool,
                    &format!(
                        "SELECT user_id, order_id, order_state FROM `{db}`.user_raffle_order{t}
                     WHERE activity_id = {activity_id}"
                    ),
                )
                .await
                .into_iter()
                .map(|(user, order_id, state)| RaffleOrder {
                    user,
                    order_id,
                    state,
                }),
            );
            s.records.extend(
                rows_on(
                    pool,
                    &format!(
                    "SELECT user_id, order_id, CAST(award_id AS SIGNED), award_state, delivery_note
                     FROM `{db}`.user_award_record{t} WHERE activity_id = {activity_id}"
                ),
                )
                .await
                .into_iter()
                .map(|(user, order_id, award_id, state, note)| AwardRecord {
                    user,
                    order_id,
                    award_id,
                    state,
                    note,
                }),
            );
            s.credit_orders.extend(
                rows_on::<(String, String, i64)>(
                    pool,
                    &format!(
                        "SELECT user_id, out_business_no, CAST(ROUND(trade_amount * 100) AS SIGNED)
                     FROM `{db}`.user_credit_order{t}"
                    ),
                )
                .await,
            );
            let (n,): (i64,) = sqlx::query_as(&format!(
                "SELECT COUNT(*) FROM `{db}`.raffle_activity_order{t} WHERE sku = {sku}"
            ))
            .fetch_one(pool)
            .await
            .expect("activity orders");
            s.sku_orders += n;
        }
        for (db, pool) in self
            .options
            .user_databases()
            .into_iter()
            .zip(&self.db_pools)
        {
            s.accounts.extend(
                rows_on(pool, &format!(
                    "SELECT user_id, CAST(total_count AS SIGNED), CAST(total_count_surplus AS SIGNED)
                     FROM `{db}`.raffle_activity_account WHERE activity_id = {activity_id}"
                ))
                .await
                .into_iter()
                .map(|(user, total, surplus)| Account {
                    user,
                    total,
                    surplus,
                }),
            );
            s.tasks.extend(
                rows_on::<(String, String, String, String, i64)>(pool, &format!(
                    "SELECT user_id, topic, message, state, CAST(attempts AS SIGNED) FROM `{db}`.task"
                ))
                .await
                .into_iter()
                .map(|(user, topic, message, state, attempts)| Task::new(user, topic, &message, state, attempts)),
            );
            s.credit_accounts.extend(
                rows_on::<(String, i64, i64)>(
                    pool,
                    &format!(
                        "SELECT user_id, CAST(ROUND(total_amount * 100) AS SIGNED),
                            CAST(ROUND(available_amount * 100) AS SIGNED)
                     FROM `{db}`.user_credit_account"
                    ),
                )
                .await,
            );
        }
        let db = &self.options.database;
        s.award_surplus = self
            .rows::<(i64, i64)>(&format!(
                "SELECT CAST(award_id AS SIGNED), CAST(award_count_surplus AS SIGNED)
                 FROM `{db}`.strategy_award WHERE strategy_id = {strategy_id}"
            ))
            .await
            .into_iter()
            .collect();
        let (surplus,): (i64,) = sqlx::query_as(&format!(
            "SELECT CAST(stock_count_surplus AS SIGNED) FROM `{db}`.raffle_activity_sku WHERE sku = {sku}"
        ))
        .fetch_one(&self.pool)
        .await
        .expect("sku surplus");
        s.sku_surplus = surplus;
        s
    }

    /// Whether the Redis counter of `key` has no open reservation and equals `sql`, the
    /// SQL surplus: the sweeper and the write-back have both run since the last draw.
    pub async fn redis_settled(&self, key: StockKey, sql: i64) -> Result<(), String> {
        let pending = self.stock.pending(key).await.expect("pending");
        let counter = self.stock.surplus(key).await.expect("counter");
        if pending == 0 && counter == Some(sql) {
            Ok(())
        } else {
            Err(format!(
                "{key}: redis {counter:?} with {pending} reservation(s), SQL {sql}"
            ))
        }
    }

    /// Drops the databases, deletes the Redis keys and the queues of this run.
    pub async fn cleanup(&self) {
        big_market_adapters::mysql::migrate::drop_databases(&self.options)
            .await
            .expect("drop databases");
        let Some(mut conn) = self.redis.clone() else {
            return self.delete_queues().await;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.redis_prefix))
            .query_async(&mut conn)
            .await
            .expect("redis keys");
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .expect("redis del");
        }
        self.delete_queues().await;
    }

    async fn delete_queues(&self) {
        let options = AmqpOptions {
            prefix: self.amqp_prefix.clone(),
            ..AmqpOptions::default()
        };
        let topics = options.topics.clone();
        let bus = AmqpBus::connect(&amqp_url(), options)
            .await
            .expect("broker for the cleanup");
        let mut config = big_market::config::Config::default();
        config.outbox.retry_base_secs = RETRY_BASE_SECS;
        let policy = ConsumerPolicy::from(&config.retry_policy());
        for topic in topics {
            bus.delete_topic(&topic, &policy)
                .await
                .expect("delete queues");
        }
    }
}

/// Runs `sql` on `pool`, failing the test with the statement on error.
pub async fn rows_on<T>(pool: &sqlx::MySqlPool, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::mysql::MySqlRow> + Send + Unpin,
{
    sqlx::query_as::<_, T>(sql)
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A list in the TOML syntax the configuration reads from the environment.
pub fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(","))
}

/// `BIG_MARKET_MYSQL_SHARD_URLS` when user databases are on several servers.
fn shard_env(shard_urls: &[String]) -> Vec<(String, String)> {
    if shard_urls.is_empty() {
        return Vec::new();
    }
    vec![(
        "BIG_MARKET_MYSQL_SHARD_URLS".to_owned(),
        toml_list(shard_urls),
    )]
}

/// Runs `body`, then `prod.cleanup()` whatever became of it, then fails the test if the
/// body failed (its panic is caught while it is polled, so nothing needs to be `Send`).
pub async fn with_cleanup(prod: &Production, body: impl std::future::Future<Output = ()>) {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::task::Poll;
    let mut body = Box::pin(body);
    let result = std::future::poll_fn(|cx| {
        match catch_unwind(AssertUnwindSafe(|| body.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    })
    .await;
    // Servers and relays the body still held go first.
    drop(body);
    prod.cleanup().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[derive(Debug, Clone)]
pub struct RaffleOrder {
    pub user: String,
    pub order_id: String,
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct AwardRecord {
    pub user: String,
    pub order_id: String,
    pub award_id: i64,
    pub state: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub total: i64,
    pub surplus: i64,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub user: String,
    pub topic: String,
    /// `data.orderId` of the message, if it has one.
    pub order_id: Option<String>,
    pub state: String,
    pub attempts: i64,
}

impl Task {
    pub fn new(user: String, topic: String, message: &str, state: String, attempts: i64) -> Self {
        let message: Value = serde_json::from_str(message).expect("task message is JSON");
        Self {
            user,
            topic,
            order_id: message["data"]["orderId"].as_str().map(str::to_owned),
            state,
            attempts,
        }
    }
}

/// The rows the invariants are checked on, from every shard.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub orders: Vec<RaffleOrder>,
    pub accounts: Vec<Account>,
    pub records: Vec<AwardRecord>,
    pub tasks: Vec<Task>,
    /// `(user, out_business_no, cents)`.
    pub credit_orders: Vec<(String, String, i64)>,
    /// `(user, total cents, available cents)`.
    pub credit_accounts: Vec<(String, i64, i64)>,
    pub award_surplus: BTreeMap<i64, i64>,
    pub sku_orders: i64,
    pub sku_surplus: i64,
}

impl Snapshot {
    /// The `send_award` tasks of each order id.
    pub fn award_tasks(&self) -> BTreeMap<&str, Vec<&Task>> {
        let mut by_order = BTreeMap::<&str, Vec<&Task>>::new();
        for t in self.tasks.iter().filter(|t| t.topic == "send_award") {
            let order = t.order_id.as_deref().expect("send_award names its order");
            by_order.entry(order).or_default().push(t);
        }
        by_order
    }

    /// The award records of each order id.
    pub fn records_by_order(&self) -> BTreeMap<&str, Vec<&AwardRecord>> {
        let mut by_order = BTreeMap::<&str, Vec<&AwardRecord>>::new();
        for r in &self.records {
            by_order.entry(r.order_id.as_str()).or_default().push(r);
        }
        by_order
    }
}

/// A TCP relay to the broker that the test can take down (listener closed, every relayed
/// connection dropped) and bring back on the same port: the broker itself is shared by
/// everything running on this machine and stays up.
pub struct Relay {
    pub port: u16,
    upstream: String,
    listener: Option<AbortHandle>,
    links: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Relay {
    pub async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let port = listener.local_addr().expect("addr").port();
        let mut relay = Self {
            port,
            upstream,
            listener: None,
            links: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    /// The relay to the broker of `TEST_AMQP_URL`, and the URL that goes through it.
    pub async fn to_broker() -> (Self, String) {
        let url = amqp_url();
        let parsed: lapin_free_uri::Uri = lapin_free_uri::Uri::parse(&url);
        let relay = Self::start(format!("{}:{}", parsed.host, parsed.port)).await;
        let relayed = format!(
            "amqp://{}@127.0.0.1:{}{}",
            parsed.userinfo, relay.port, parsed.path
        );
        (relay, relayed)
    }

    fn serve(&mut self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let links = self.links.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links.lock().expect("lock").push(link.abort_handle());
            }
        });
        self.listener = Some(task.abort_handle());
    }

    /// Refuses new connections and drops every relayed one (both ends closed).
    pub fn down(&mut self) {
        if let Some(l) = self.listener.take() {
            l.abort();
        }
        for link in self.links.lock().expect("lock").drain(..) {
            link.abort();
        }
    }

    /// Listens on the same port again.
    pub async fn up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(e) => {
                    assert!(Instant::now() < deadline, "rebind relay: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        self.serve(listener);
    }

    /// Connections relayed so far (dropped ones included, until `down`).
    pub fn relayed(&self) -> usize {
        self.links.lock().expect("lock").len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.down();
    }
}

/// Just enough of an `amqp://user:pass@host:port/vhost` URL to relay it (the app crate
/// does not depend on lapin).
mod lapin_free_uri {
    pub struct Uri {
        pub userinfo: String,
        pub host: String,
        pub port: u16,
        /// `/vhost` as written (percent-encoded), or empty.
        pub path: String,
    }

    impl Uri {
        pub fn parse(url: &str) -> Self {
            let rest = url
                .strip_prefix("amqp://")
                .expect("TEST_AMQP_URL is amqp://user:password@host:port/vhost");
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], rest[i..].to_owned()),
                None => (rest, String::new()),
            };
            let (userinfo, hostport) = authority
                .rsplit_once('@')
                .map(|(u, h)| (u.to_owned(), h))
                .unwrap_or(("guest:guest".to_owned(), authority));
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().expect("AMQP port")),
                None => (hostport.to_owned(), 5672),
            };
            Self {
                userinfo,
                host,
                port,
                path,
            }
        }
    }
}

/// A Redis server of the test's own (a free port, no persistence), which the test may
/// flush or restart; killed when dropped, even when the test fails.
pub struct PrivateRedis {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl PrivateRedis {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        Self::start_on(port).await
    }

    /// Stops the server (SIGKILL: no persistence, so everything is lost).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the server and starts an empty one on the same port: a restart without
    /// persistence.
    pub async fn restart_empty(&mut self) {
        self.stop();
        let fresh = Self::start_on(self.port).await;
        // The new child replaces the old (already reaped) one.
        let old = std::mem::replace(self, fresh);
        std::mem::forget(old);
    }

    async fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("this test starts its own redis-server: {e}"));
        let url = format!("redis://127.0.0.1:{port}");
        let redis = Self { child, port, url };
        let client = redis::Client::open(redis.url.as_str()).expect("redis url");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return redis;
            }
            assert!(
                Instant::now() < deadline,
                "private redis-server on {port} did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `FLUSHALL` on this server only: everything a restart without persistence loses.
    pub async fn flush_all(&self) {
        let client = redis::Client::open(self.url.as_str()).expect("redis url");
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("private redis");
        let () = redis::cmd("FLUSHALL")
            .query_async(&mut conn)
            .await
            .expect("FLUSHALL");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `big-market serve` on `dir` that is expected to stop by itself: its exit status and
/// its standard error, failing the test if it is still running after `limit`.
pub async fn serve_until_exit(
    dir: &Path,
    env: &[(String, String)],
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    let err = tempfile::NamedTempFile::new().expect("stderr file");
    let mut child = binary()
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("BIG_MARKET_LOG_FILTER", "warn")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(err.reopen().expect("stderr file"))
        .spawn()
        .expect("server starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "serve still running after {limit:?}:\n{}",
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (
        status,
        std::fs::read_to_string(err.path()).unwrap_or_default(),
    )
}

/// The embedded store of a server started on `dir`, opened beside it.
pub fn open_store(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("big-market.db")).expect("open store");
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

fn store_rows<T>(
    conn: &rusqlite::Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Vec<T> {
    let mut stmt = conn.prepare(sql).expect(sql);
    stmt.query_map([], f)
        .expect(sql)
        .collect::<Result<_, _>>()
        .expect(sql)
}

/// The embedded store's rows of one activity (its strategy and SKU), in the shape of
/// the production snapshot.
pub fn embedded_snapshot(
    conn: &rusqlite::Connection,
    activity: i64,
    strategy: i64,
    sku: i64,
) -> Snapshot {
    let one = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).expect(sql) };
    Snapshot {
        orders: store_rows(
            conn,
            &format!("SELECT user_id, order_id, order_state FROM user_raffle_order WHERE activity_id = {activity}"),
            |r| Ok(RaffleOrder { user: r.get(0)?, order_id: r.get(1)?, state: r.get(2)? }),
        ),
        accounts: store_rows(
            conn,
            &format!("SELECT user_id, total_count, total_count_surplus FROM raffle_activity_account WHERE activity_id = {activity}"),
            |r| Ok(Account { user: r.get(0)?, total: r.get(1)?, surplus: r.get(2)? }),
        ),
        records: store_rows(
            conn,
            &format!("SELECT user_id, order_id, award_id, award_state, delivery_note FROM user_award_record WHERE activity_id = {activity}"),
            |r| Ok(AwardRecord { user: r.get(0)?, order_id: r.get(1)?, award_id: r.get(2)?, state: r.get(3)?, note: r.get(4)? }),
        ),
        tasks: store_rows(conn, "SELECT user_id, topic, message, state, attempts FROM task", |r| {
            Ok(Task::new(r.get(0)?, r.get(1)?, &r.get::<_, String>(2)?, r.get(3)?, r.get(4)?))
        }),
        credit_orders: store_rows(
            conn,
            "SELECT user_id, out_business_no, CAST(ROUND(CAST(trade_amount AS REAL) * 100) AS INTEGER) FROM user_credit_order",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ),
        credit_accounts: store_rows(
            conn,
            "SELECT user_id, CAST(ROUND(CAST(total_amount AS REAL) * 100) AS INTEGER),
                    CAST(ROUND(CAST(available_amount AS REAL) * 100) AS INTEGER) FROM user_credit_account",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        ),
        award_surplus: store_rows(
            conn,
            &format!("SELECT award_id, award_count_surplus FROM strategy_award WHERE strategy_id = {strategy}"),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .into_iter()
        .collect(),
        sku_orders: one(&format!("SELECT COUNT(*) FROM raffle_activity_order WHERE sku = {sku}")),
        sku_surplus: one(&format!("SELECT stock_count_surplus FROM raffle_activity_sku WHERE sku = {sku}")),
    }
}
impl Server {
    /// The process id (what a lease token names as its holder).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`, …) to the process.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{signal} failed");
    }
}

/// A RabbitMQ node of the test's own (its ports, a temporary data directory, no
/// plugins), which the test may stop and start again on the same data; killed with its
/// process group when dropped, even when the test fails.
pub struct PrivateRabbit {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
    dist_port: u16,
    /// `amqp://guest:guest@127.0.0.1:{port}/%2f`.
    pub url: String,
}

impl PrivateRabbit {
    /// Starts a node listening for AMQP on `port` (Erlang distribution on `dist_port`)
    /// and waits until it takes a connection.
    pub async fn start(port: u16, dist_port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("enabled_plugins"), "").expect("plugins file");
        let mut rabbit = Self {
            child: None,
            dir,
            port,
            dist_port,
            url: format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        };
        rabbit.start_again().await;
        rabbit
    }

    /// Starts the node on its data directory (durable queues and persistent messages of
    /// the last run come back) and waits until it takes an AMQP connection.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the node is running");
        use std::os::unix::process::CommandExt;
        let dir = self.dir.path();
        let binary = "/usr/lib/rabbitmq/bin/rabbitmq-server";
        let child = Command::new(binary)
            // The Erlang cookie is created in (and read from) $HOME.
            .env("HOME", dir)
            .env(
                "RABBITMQ_NODENAME",
                format!("bmtest{}@localhost", self.port),
            )
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("no-config"))
            .env(
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                dir.join("no-advanced.config"),
            )
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("this test starts its own RabbitMQ ({binary}): {e}"));
        self.child = Some(child);
        let options = AmqpOptions {
            prefix: "probe.".into(),
            topics: Vec::new(),
            ..AmqpOptions::default()
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(bus) = AmqpBus::connect(&self.url, options.clone()).await {
                bus.close_publisher().await;
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "RabbitMQ on {} exited with {status}: {}",
                    self.port,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ on {} did not start: {}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops the node as `rabbitmqctl stop` does (SIGTERM: a clean shutdown) and waits
    /// until it has exited.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("child status").is_none() {
            assert!(
                Instant::now() < deadline,
                "RabbitMQ on {} did not stop",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Whatever the script left behind (epmd is shared and not in the group).
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        // The AMQP port closes with the node.
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            assert!(Instant::now() < deadline, "port {} still open", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node's log (last 4000 characters).
    pub fn log(&self) -> String {
        let path = self
            .dir
            .path()
            .join("log")
            .join(format!("bmtest{}@localhost.log", self.port));
        let log = std::fs::read_to_string(path).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log.get(start..).unwrap_or_default().to_owned()
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}

/// A stand-in for the external account service (`openai_use_count` prizes): answers
/// `adjust_quota` with `0000` and records every call with its `Idempotency-Key`, so a
/// test can tell how often each award was sent and apply each key once, as the real
/// service must.
pub struct AccountService {
    pub url: String,
    /// Every call in order: `(idempotency key, openid, quota)`.
    calls: Arc<Mutex<Vec<(String, String, i64)>>>,
    /// How long each answer is held back, in ms (keeps deliveries in flight).
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
    task: AbortHandle,
}

impl AccountService {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind account service");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let calls: Arc<Mutex<Vec<(String, String, i64)>>> = Arc::default();
        let delay_ms: Arc<std::sync::atomic::AtomicU64> = Arc::default();
        let (c, d) = (calls.clone(), delay_ms.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (c, d) = (c.clone(), d.clone());
                tokio::spawn(async move {
                    let _ = serve_adjust_quota(stream, c, d).await;
                });
            }
        });
        Self {
            url,
            calls,
            delay_ms,
            task: task.abort_handle(),
        }
    }

    /// The child's configuration pointing the `openai_use_count` prizes here.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("BIG_MARKET_OPENAI_API_HOST", self.url.clone()),
            ("BIG_MARKET_OPENAI_APP_ID", "test".into()),
            ("BIG_MARKET_OPENAI_APP_TOKEN", "test".into()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    pub fn calls(&self) -> Vec<(String, String, i64)> {
        self.calls.lock().expect("lock").clone()
    }
}

impl Drop for AccountService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 request per connection (`Connection: close`): reads the head and the
/// body, records the call, answers `0000`.
async fn serve_adjust_quota(
    mut stream: TcpStream,
    calls: Arc<Mutex<Vec<(String, String, i64)>>>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (i + 4, length);
        }
    };
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let key = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("idempotency-key")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
    // Recorded on arrival: a caller killed before the answer still counts as a send.
    calls.lock().expect("lock").push((
        key,
        body["openid"].as_str().unwrap_or_default().to_owned(),
        body["increaseQuota"].as_i64().unwrap_or(0),
    ));
    let delay = delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let answer = r#"{"code":"0000","info":"ok"}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// libfaketime's preload library (Debian's `faketime` package), for a child whose clock
/// must run off this machine's.
pub fn libfaketime() -> String {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        "/usr/lib/faketime/libfaketimeMT.so.1",
    ];
    candidates
        .iter()
        .find(|p| Path::new(p).exists())
        .map(|p| (*p).to_owned())
        .unwrap_or_else(|| {
            panic!("libfaketime is missing (apt-get install faketime): looked in {candidates:?}")
        })
}
/// Private MariaDB servers and Redis Clusters (also included by the API suite).
pub mod servers;
