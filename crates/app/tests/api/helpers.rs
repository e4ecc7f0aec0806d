//! The harness: a real server on a random port over a fresh world per test, on the
//! backend `TEST_BACKEND` names: `embedded` (default: a SQLite file in a temp dir) or
//! `mysql` (MariaDB/MySQL at `TEST_MYSQL_URL`, Redis at `TEST_REDIS_URL`, RabbitMQ at
//! `TEST_AMQP_URL`: fresh databases, Redis key prefix and queue prefix per test, removed
//! when the test's last handle on them is dropped).

use big_market::config::{Config, Secret};
use big_market::{Application, Seams, Store};
use big_market_adapters::mysql::MysqlOptions;
use big_market_adapters::router::Router;
use big_market_domain::sample::SampleData;
use big_market_domain::task::{RetryPolicy, TaskRepository};
use big_market_domain::time::{Clock, FixedClock, SystemClock};
use serde_json::Value;
use sqlx::Row;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The backend the suite runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Mysql,
}

/// `TEST_BACKEND`: unset or `embedded`, or `mysql`. Anything else stops the run (a typo
/// must not quietly test the embedded store instead).
pub fn backend() -> Backend {
    match std::env::var("TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("embedded") => Backend::Embedded,
        Ok("mysql") => Backend::Mysql,
        Ok(other) => panic!("TEST_BACKEND={other:?}: use `embedded` or `mysql`"),
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// What a restart reopens: the data dir and, on MariaDB/MySQL, the test's databases,
/// Redis key prefix and queue prefix. Those are removed when the last clone is dropped.
#[derive(Clone)]
pub struct World {
    pub dir: Arc<tempfile::TempDir>,
    servers: Option<Arc<Servers>>,
}

/// One test's share of the production servers; cleaned up when dropped.
struct Servers {
    names: Names,
    /// The retry policies the test's servers ran with (they name the delay queues).
    policies: Mutex<Vec<RetryPolicy>>,
}

/// Where one test's data lives on the servers.
#[derive(Clone)]
struct Names {
    mysql_url: String,
    database: String,
    redis_url: String,
    redis_prefix: String,
    amqp_url: String,
    amqp_prefix: String,
}

impl World {
    fn fresh() -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let servers = (backend() == Backend::Mysql).then(|| {
            let (pid, n) = (std::process::id(), rand::random::<u32>() % 1_000_000);
            Arc::new(Servers {
                names: Names {
                    mysql_url: env_or("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306"),
                    database: format!("bmt_{pid}_{n}"),
                    redis_url: env_or("TEST_REDIS_URL", "redis://127.0.0.1:6379"),
                    redis_prefix: format!("bmt:{pid}:{n}:"),
                    amqp_url: env_or("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
                    amqp_prefix: format!("bmt{pid}_{n}."),
                },
                policies: Mutex::new(Vec::new()),
            })
        });
        Self { dir, servers }
    }

    /// The test configuration of this world's backend.
    fn config(&self) -> Config {
        let mut config = test_config(self.dir.path());
        if let Some(s) = self.servers.as_ref().map(|s| &s.names) {
            config.mysql_url = Some(Secret(s.mysql_url.clone()));
            config.mysql_database = s.database.clone();
            config.redis_url = Some(Secret(s.redis_url.clone()));
            config.redis_prefix = s.redis_prefix.clone();
            config.amqp_url = Some(Secret(s.amqp_url.clone()));
            config.amqp_prefix = s.amqp_prefix.clone();
        }
        config
    }

    /// On MariaDB/MySQL: creates the databases and loads upstream's sample with the
    /// activities open at the server's clock, as the embedded store does at start-up.
    /// A restart finds them and loads nothing.
    async fn prepare(&self, config: &Config, clock: &dyn Clock) {
        let Some(s) = &self.servers else { return };
        let options = config.mysql().expect("the mysql backend sets mysql_url");
        sweep_dead_runs(&s.names.mysql_url, &s.names.redis_url).await;
        if upstream_schema() {
            from_upstream_dumps(&options, clock).await;
        }
        let sample = SampleData::upstream().with_open_activities(clock.now().datetime());
        big_market_adapters::mysql::migrate::migrate(&options, Some(&sample))
            .await
            .unwrap_or_else(|e| panic!("{e}: TEST_BACKEND=mysql needs MariaDB/MySQL"));
        if config.amqp_prefix == s.names.amqp_prefix && config.amqp_url.is_some() {
            s.policies.lock().unwrap().push(config.retry_policy());
        }
    }

    fn options(&self) -> Option<MysqlOptions> {
        self.servers.as_ref().map(|s| s.names.options())
    }
}

impl Names {
    fn options(&self) -> MysqlOptions {
        MysqlOptions {
            url: self.mysql_url.clone(),
            database: self.database.clone(),
            ..MysqlOptions::default()
        }
    }

    /// Deletes the test's queues, Redis keys and databases.
    async fn clean_up(&self, policies: Vec<RetryPolicy>) {
        use big_market_adapters::amqp::{AmqpBus, AmqpOptions, ConsumerPolicy};
        use big_market_domain::task::topic;
        if !policies.is_empty() {
            let options = AmqpOptions {
                prefix: self.amqp_prefix.clone(),
                ..AmqpOptions::default()
            };
            match AmqpBus::connect(&self.amqp_url, options).await {
                Ok(bus) => {
                    for policy in &policies {
                        let policy = ConsumerPolicy::from(policy);
                        for t in [
                            topic::SEND_AWARD,
                            topic::SEND_REBATE,
                            topic::CREDIT_ADJUST_SUCCESS,
                        ] {
                            if let Err(e) = bus.delete_topic(t, &policy).await {
                                eprintln!("clean-up: queues of {t}: {e}");
                            }
                        }
                    }
                }
                Err(e) => eprintln!("clean-up: {e}"),
            }
        }
        if let Err(e) =
            delete_redis_keys(&self.redis_url, |k| k.starts_with(&self.redis_prefix)).await
        {
            eprintln!("clean-up: redis keys {}*: {e}", self.redis_prefix);
        }
        drop_databases(&self.options()).await;
    }
}

impl Drop for Servers {
    /// Cleans up on a thread of its own (the test's runtime is not running here). A
    /// transaction the test's paused runtime still holds delays the DROP until that
    /// runtime is gone, so the wait is bounded and the thread carries on alone; whatever a
    /// killed process leaves is swept by the next run ([`sweep_dead_runs`]).
    fn drop(&mut self) {
        let names = self.names.clone();
        let mut policies = std::mem::take(&mut *self.policies.lock().unwrap());
        policies.dedup_by_key(|p| (p.max_attempts, p.base_delay_secs, p.max_delay_secs));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("clean-up runtime");
            rt.block_on(names.clean_up(policies));
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(Duration::from_secs(5));
    }
}

/// Drops a test's databases, retrying while another connection's open transaction
/// holds a table lock (a short lock wait per try, for at most about half a minute).
async fn drop_databases(options: &MysqlOptions) {
    let names: Vec<String> = std::iter::once(options.database.clone())
        .chain(options.user_databases())
        .collect();
    drop_named_databases(&options.url, &names).await;
}

async fn drop_named_databases(url: &str, names: &[String]) {
    use sqlx::Connection;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut left: Vec<String> = names.to_vec();
    while !left.is_empty() {
        let attempt = async {
            let mut conn = sqlx::MySqlConnection::connect(url).await?;
            sqlx::raw_sql("SET SESSION lock_wait_timeout = 2")
                .execute(&mut conn)
                .await?;
            while let Some(db) = left.first() {
                sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{db}`"))
                    .execute(&mut conn)
                    .await?;
                left.remove(0);
            }
            Ok::<_, sqlx::Error>(())
        };
        match attempt.await {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                eprintln!("clean-up: dropping {left:?}: {e}");
                break;
            }
        }
    }
}

/// Deletes the Redis keys `keep` selects (SCAN, then DEL in batches).
async fn delete_redis_keys(url: &str, select: impl Fn(&str) -> bool) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("bmt:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        let mine: Vec<&String> = keys.iter().filter(|k| select(k)).collect();
        if !mine.is_empty() {
            let _: i64 = redis::cmd("DEL").arg(&mine).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// Whether the test process `pid` (from a `bmt_{pid}_…` name) is gone. Only where
/// `/proc` tells (elsewhere nothing is swept).
fn dead(pid: Option<&str>) -> bool {
    let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    Path::new("/proc/self").exists()
        && pid != std::process::id()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Once per process: removes the databases and Redis keys of earlier test processes that
/// are gone (killed, or exited before their clean-up thread finished).
async fn sweep_dead_runs(mysql_url: &str, redis_url: &str) {
    static SWEPT: AtomicBool = AtomicBool::new(false);
    if SWEPT.swap(true, Ordering::SeqCst) {
        return;
    }
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::MySqlConnection::connect(mysql_url).await {
        let names: Vec<String> = sqlx::raw_sql("SHOW DATABASES LIKE 'bmt\\_%'")
            .fetch_all(&mut conn)
            .await
            .map(|rows| rows.iter().map(|r| r.get::<String, _>(0)).collect())
            .unwrap_or_default();
        let stale: Vec<String> = names
            .into_iter()
            .filter(|n| dead(n.split('_').nth(1)))
            .collect();
        drop(conn);
        if !stale.is_empty() {
            drop_named_databases(mysql_url, &stale).await;
        }
    }
    let _ = delete_redis_keys(redis_url, |k| dead(k.split(':').nth(1))).await;
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub award: Arc<big_market_domain::award::AwardService>,
    /// The broker, when the configuration has `amqp_url`.
    pub amqp: Option<big_market_adapters::amqp::AmqpBus>,
    pub rebate: Arc<big_market_domain::rebate::RebateService>,
    pub activity: Arc<big_market_domain::activity::ActivityService>,
    pub world: World,
    /// On MariaDB/MySQL: a small pool of the test's own for its SQL (config database
    /// selected; user tables are named with their database).
    sql: Option<sqlx::MySqlPool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        addr: "127.0.0.1:0".into(),
        data_dir: dir.to_owned(),
        // Debug builds on a busy 2-core machine: deadline tests set their own.
        draw_timeout_ms: 10_000,
        ..Config::default()
    }
}

/// Keeps tasks on the in-process bus on the production backend too, for tests that read
/// delivery from the outbox's task states: over RabbitMQ a task is completed on the
/// broker's confirm, before its consumer ran, and a consumer's failures are retried by
/// the broker's delay queues rather than recorded on the task (RabbitMQ delivery has its
/// own test, `with_amqp_url_tasks_go_through_rabbitmq`).
pub fn in_process_bus(c: &mut Config) {
    c.amqp_url = None;
}

fn system_clock() -> Arc<dyn Clock> {
    let zone = jiff::tz::TimeZone::get(&Config::default().time_zone).expect("zone");
    Arc::new(SystemClock::new(zone))
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_in(World::fresh()).await
    }

    /// Starts a server with adjusted configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::launch(World::fresh(), system_clock(), adjust, Seams::default()).await
    }

    /// Starts a server whose clock only moves when the test moves it.
    pub async fn spawn_at(now: &str) -> (Self, Arc<FixedClock>) {
        Self::spawn_custom(now, |_| {}, Seams::default()).await
    }

    /// Starts a server with a fixed clock, adjusted configuration and test doubles.
    pub async fn spawn_custom(
        now: &str,
        adjust: impl FnOnce(&mut Config),
        seams: Seams,
    ) -> (Self, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::new(zoned(now)));
        let app = Self::launch(World::fresh(), clock.clone(), adjust, seams).await;
        (app, clock)
    }

    /// Restarts on an existing world with adjusted configuration.
    #[allow(dead_code)]
    pub async fn spawn_in_with(world: World, adjust: impl FnOnce(&mut Config)) -> Self {
        Self::launch(world, system_clock(), adjust, Seams::default()).await
    }

    /// Starts a server on an existing world (a restart).
    pub async fn spawn_in(world: World) -> Self {
        Self::launch(world, system_clock(), |_| {}, Seams::default()).await
    }

    async fn launch(
        world: World,
        clock: Arc<dyn Clock>,
        adjust: impl FnOnce(&mut Config),
        seams: Seams,
    ) -> Self {
        let mut config = world.config();
        adjust(&mut config);
        world.prepare(&config, clock.as_ref()).await;
        let sql = config.mysql().map(|o| {
            let url = match o.url.split_once('?') {
                Some((server, query)) => format!("{server}/{}?{query}", o.database),
                None => format!("{}/{}", o.url, o.database),
            };
            sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(4)
                .connect_lazy(&url)
                .expect("test pool")
        });
        let app = Application::build_with(config, clock, seams)
            .await
            .expect("app builds");
        Self::start(app, world, sql)
    }

    fn start(app: Application, world: World, sql: Option<sqlx::MySqlPool>) -> Self {
        let port = app.port();
        let store = app.services.store.clone();
        let (award, rebate, activity) = (
            app.services.award.clone(),
            app.services.rebate.clone(),
            app.services.activity.clone(),
        );
        let amqp = app.services.amqp.as_ref().map(|(bus, _)| bus.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            store,
            award,
            amqp,
            rebate,
            activity,
            world,
            sql,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// Stops the server (its consumers would declare their queues again), then deletes
    /// the queues of the test's broker prefix.
    #[allow(dead_code)]
    pub async fn stop_and_delete_amqp_queues(self) {
        use big_market_domain::task::topic;
        let bus = self.amqp.clone();
        self.stop().await;
        let Some(bus) = &bus else { return };
        let policy = big_market_adapters::amqp::ConsumerPolicy::from(&RetryPolicy {
            max_attempts: Config::default().outbox_max_attempts,
            ..RetryPolicy::default()
        });
        for t in [
            topic::SEND_AWARD,
            topic::SEND_REBATE,
            topic::CREDIT_ADJUST_SUCCESS,
        ] {
            bus.delete_topic(t, &policy).await.expect("queues deleted");
        }
    }

    /// Stops the server gracefully and waits for it; the world stays for a restart.
    pub async fn stop(mut self) -> World {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        if let Some(pool) = self.sql.take() {
            pool.close().await;
        }
        self.world.clone()
    }

    pub fn is_mysql(&self) -> bool {
        self.world.servers.is_some()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1/raffle/{path}", self.base)
    }

    /// POSTs a raw body; asserts HTTP 200 and returns the envelope.
    pub async fn post_raw(&self, path: &str, body: &str) -> Value {
        let resp = self
            .client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        envelope(resp).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.post_raw(path, &body.to_string()).await
    }

    pub async fn get(&self, path_and_query: &str) -> Value {
        let resp = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request sent");
        envelope(resp).await
    }

    fn embedded(&self) -> &big_market_adapters::sqlite::SqliteStore {
        self.store.sqlite().expect("the embedded store")
    }

    async fn exec(&self, sql: String) {
        match &self.sql {
            Some(pool) => {
                sqlx::raw_sql(&sql)
                    .execute(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            None => self
                .embedded()
                .write(move |conn| Ok(conn.execute_batch(&sql)?))
                .await
                .expect("sql runs"),
        }
    }

    /// Runs statements on the configuration tables (test setup only): the config
    /// database on MariaDB/MySQL, so write them to run in both dialects.
    pub async fn config_sql(&self, sql: &str) {
        self.exec(sql.to_owned()).await;
    }

    /// Rows of a query on the configuration tables, every column selected as text
    /// (`CAST(… AS CHAR)` in the query).
    pub async fn config_query(&self, sql: &str, columns: usize) -> Vec<Vec<Option<String>>> {
        let sql = sql.to_owned();
        match &self.sql {
            Some(pool) => sqlx::query(&sql)
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .iter()
                .map(|r| {
                    (0..columns)
                        .map(|i| r.get::<Option<String>, _>(i))
                        .collect()
                })
                .collect(),
            None => self
                .embedded()
                .read(move |c| {
                    Ok(c.prepare(&sql)?
                        .query_map([], |r| (0..columns).map(|i| r.get(i)).collect())?
                        .collect::<Result<_, _>>()?)
                })
                .await
                .expect("query"),
        }
    }

    /// One integer from the configuration tables.
    pub async fn config_i64(&self, sql: &str) -> i64 {
        self.config_scalar(sql.to_owned()).await
    }

    /// One value of the configuration tables as text (`CAST(… AS CHAR)`).
    pub async fn config_text(&self, column: &str, from: &str) -> String {
        self.config_scalar(format!("SELECT CAST({column} AS CHAR) FROM {from}"))
            .await
    }

    async fn config_scalar<T>(&self, sql: String) -> T
    where
        T: rusqlite::types::FromSql
            + for<'r> sqlx::Decode<'r, sqlx::MySql>
            + sqlx::Type<sqlx::MySql>,
        T: Send + Unpin + 'static,
    {
        match &self.sql {
            Some(pool) => sqlx::query_scalar::<_, T>(&sql)
                .fetch_one(pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
            None => self
                .embedded()
                .read(move |conn| Ok(conn.query_row(&sql, [], |r| r.get(0))?))
                .await
                .expect("query"),
        }
    }

    /// Every copy of a user table: the table itself on the embedded store; on
    /// MariaDB/MySQL, `` `db_0N`.table_00M `` for a sharded table and `` `db_0N`.table ``
    /// for one kept per user database. With `user`, only the copy holding that user.
    fn copies(&self, table: &str, user: Option<&str>) -> Vec<String> {
        const SHARDED: [&str; 5] = [
            "raffle_activity_order",
            "user_award_record",
            "user_behavior_rebate_order",
            "user_credit_order",
            "user_raffle_order",
        ];
        const PER_DATABASE: [&str; 5] = [
            "raffle_activity_account",
            "raffle_activity_account_day",
            "raffle_activity_account_month",
            "task",
            "user_credit_account",
        ];
        let Some(o) = self.world.options() else {
            return vec![table.to_owned()];
        };
        let sharded = SHARDED.contains(&table);
        assert!(
            sharded || PER_DATABASE.contains(&table),
            "{table} is not a user table"
        );
        let suffixes = if sharded {
            o.table_suffixes()
        } else {
            vec![String::new()]
        };
        if let Some(user) = user {
            let route = Router::new(o.db_count, o.tb_count).unwrap().route(user);
            let sfx = if sharded {
                route.suffix()
            } else {
                String::new()
            };
            return vec![format!("`{}`.{table}{sfx}", route.database(&o.database))];
        }
        o.user_databases()
            .iter()
            .flat_map(|db| suffixes.iter().map(move |s| format!("`{db}`.{table}{s}")))
            .collect()
    }

    /// `SELECT COUNT(*) FROM {table} WHERE {filter}` over every copy of a user table.
    pub async fn count_rows(&self, table: &str, filter: &str) -> i64 {
        let mut n = 0;
        for copy in self.copies(table, None) {
            let mut sql = format!("SELECT COUNT(*) FROM {copy}");
            if !filter.is_empty() {
                sql = format!("{sql} WHERE {filter}");
            }
            n += match &self.sql {
                Some(pool) => sqlx::query_scalar::<_, i64>(&sql)
                    .fetch_one(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}")),
                None => self
                    .embedded()
                    .read(move |conn| Ok(conn.query_row(&sql, [], |r| r.get(0))?))
                    .await
                    .expect("query"),
            };
        }
        n
    }

    /// `columns` (as text) of a user table's rows, `rest` (`WHERE …`, `ORDER BY …`)
    /// applied to each copy, the copies one after another.
    pub async fn rows(&self, table: &str, columns: &[&str], rest: &str) -> Vec<Vec<String>> {
        let select = columns
            .iter()
            .map(|c| format!("CAST({c} AS CHAR)"))
            .collect::<Vec<_>>()
            .join(", ");
        let n = columns.len();
        let mut out = Vec::new();
        for copy in self.copies(table, None) {
            let sql = format!("SELECT {select} FROM {copy} {rest}");
            let rows: Vec<Vec<String>> = match &self.sql {
                Some(pool) => sqlx::query(&sql)
                    .fetch_all(pool)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .iter()
                    .map(|r| (0..n).map(|i| r.get::<String, _>(i)).collect())
                    .collect(),
                None => self
                    .embedded()
                    .read(move |c| {
                        Ok(c.prepare(&sql)?
                            .query_map([], |r| (0..n).map(|i| r.get(i)).collect())?
                            .collect::<Result<_, _>>()?)
                    })
                    .await
                    .expect("query"),
            };
            out.extend(rows);
        }
        out
    }

    /// One column of a user table's rows as text (see [`TestApp::rows`]).
    pub async fn texts(&self, table: &str, column: &str, rest: &str) -> Vec<String> {
        self.rows(table, &[column], rest)
            .await
            .into_iter()
            .map(|mut r| r.remove(0))
            .collect()
    }

    /// Runs `make(copy)` on every copy of a user table (test setup only), or with `user`
    /// only on the copy holding that user.
    pub async fn user_sql(&self, table: &str, user: Option<&str>, make: impl Fn(&str) -> String) {
        for copy in self.copies(table, user) {
            self.exec(make(&copy)).await;
        }
    }

    /// `(award_count, award_count_surplus)` of a strategy award.
    pub async fn award_stock(&self, strategy_id: i64, award_id: i32) -> (i64, i64) {
        match &self.store {
            Store::Embedded(s) => s.award_stock(strategy_id, award_id).await,
            Store::Mysql(s) => {
                self.write_back_stock(s).await;
                s.award_stock(strategy_id, award_id).await
            }
        }
        .expect("award stock")
    }

    /// `(stock_count, stock_count_surplus)` of a SKU, as `award_stock`.
    pub async fn sku_stock(&self, sku: i64) -> (i64, i64) {
        match &self.store {
            Store::Embedded(s) => s.sku_stock(sku).await,
            Store::Mysql(s) => {
                self.write_back_stock(s).await;
                s.sku_stock(sku).await
            }
        }
        .expect("sku stock")
    }

    /// With Redis stock, the SQL surplus columns trail the counters by one write-back
    /// round: checks that no reservation is left open once every answer is in, then
    /// runs the write-back now, so the SQL columns are read after it.
    async fn write_back_stock(&self, store: &big_market_adapters::mysql::MysqlStore) {
        let Some(stock) = store.redis_stock() else {
            return;
        };
        for (key, _) in stock.surplus_all().await.expect("redis stock") {
            assert_eq!(
                stock.pending(key).await.expect("pending"),
                0,
                "{key}: open reservations"
            );
        }
        store
            .write_back_all_stock()
            .await
            .expect("stock write-back");
    }

    /// Sets an award's stock.
    pub async fn set_award_stock(&self, strategy_id: i64, award_id: i32, count: i64) {
        match &self.store {
            Store::Embedded(s) => s.set_award_stock(strategy_id, award_id, count).await,
            Store::Mysql(s) => s.set_award_stock(strategy_id, award_id, count).await,
        }
        .expect("award stock set")
    }

    /// The store's task port (the outbox's claims and outcomes).
    pub fn tasks(&self) -> Arc<dyn TaskRepository> {
        match &self.store {
            Store::Embedded(s) => Arc::new(s.clone()),
            Store::Mysql(s) => Arc::new(s.clone()),
        }
    }

    /// Closes the store under the running server (its connections on MariaDB/MySQL).
    pub async fn close_store(&self) {
        match &self.store {
            Store::Embedded(s) => s.close(),
            Store::Mysql(s) => s.pool().close().await,
        }
    }
}

impl Drop for TestApp {
    /// On the production backend, a server left running on a multi-thread runtime would
    /// go on while its world is removed (its RabbitMQ consumers declaring their deleted
    /// queues again): stop it first, on the runtime's workers, for a bounded time. A
    /// current-thread runtime does not run while this waits, and not after it: nothing to
    /// stop there.
    fn drop(&mut self) {
        use tokio::runtime::{Handle, RuntimeFlavor};
        if !self.is_mysql() {
            return;
        }
        let (Some(stop), Some(server)) = (self.stop.take(), self.server.take()) else {
            return;
        };
        let _ = stop.send(());
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return;
        }
        let (done, stopped) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let _ = server.await;
            let _ = done.send(());
        });
        let _ = stopped.recv_timeout(Duration::from_secs(5));
    }
}

/// Checks the envelope's shape: HTTP 200, a string code, a non-null info.
pub async fn envelope(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "HTTP status");
    let v: Value = resp.json().await.expect("JSON envelope");
    assert!(v["code"].is_string(), "code: {v}");
    assert!(v["info"].is_string(), "info must never be null: {v}");
    v
}

pub fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// A local time in Asia/Shanghai, `yyyy-MM-dd HH:mm:ss`.
pub fn zoned(local: &str) -> jiff::Zoned {
    big_market_domain::time::parse_datetime(local)
        .expect("datetime")
        .in_tz("Asia/Shanghai")
        .expect("zone")
}

/// Runs `n` copies of a request concurrently and returns every envelope.
pub async fn concurrently(app: &TestApp, path: &str, bodies: Vec<Value>) -> Vec<Value> {
    let mut tasks = Vec::new();
    for body in bodies {
        let client = app.client.clone();
        let url = app.url(path);
        tasks.push(tokio::spawn(async move {
            let resp = client.post(url).json(&body).send().await.expect("sent");
            envelope(resp).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

/// Counts envelopes by code.
pub fn by_code(results: &[Value]) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for v in results {
        *m.entry(code(v).to_owned()).or_default() += 1;
    }
    m
}

/// Polls `check` until it holds or 10 s pass (asynchronous delivery through the outbox).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `TEST_MYSQL_SCHEMA=upstream`: the production backend's databases are created from
/// upstream's own dumps (tables of every database, rows of the config database) before
/// our migrations run, as for a team moving from the Java service.
fn upstream_schema() -> bool {
    match std::env::var("TEST_MYSQL_SCHEMA").as_deref() {
        Err(_) | Ok("ours") => false,
        Ok("upstream") => true,
        Ok(other) => panic!("TEST_MYSQL_SCHEMA must be ours or upstream, not {other:?}"),
    }
}

/// Loads upstream's dumps into fresh databases (a restart finds them and loads nothing),
/// with the activities that ended before `clock`'s now moved ten years out, as the
/// sample is at start-up.
async fn from_upstream_dumps(options: &MysqlOptions, clock: &dyn Clock) {
    let mut conn = big_market_adapters::mysql::migrate::connect(options)
        .await
        .expect("mysql");
    let exists: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
    )
    .bind(&options.database)
    .fetch_one(&mut conn)
    .await
    .expect("schemata");
    if exists > 0 {
        return;
    }
    let dir = std::env::var("UPSTREAM_SQL_DIR")
        .map(std::path::PathBuf::from)
        .expect(
            "TEST_MYSQL_SCHEMA=upstream needs UPSTREAM_SQL_DIR: the directory of upstream's dumps",
        );
    big_market_adapters::mysql::migrate::load_upstream_dumps(options, &dir)
        .await
        .unwrap_or_else(|e| panic!("loading upstream's dumps from {}: {e}", dir.display()));
    let now = big_market_domain::time::format_datetime(&clock.now().datetime());
    sqlx::query(&format!(
        "UPDATE `{}`.raffle_activity SET end_date_time = DATE_ADD(end_date_time, INTERVAL 10 YEAR)
         WHERE end_date_time < ?",
        options.database
    ))
    .bind(now)
    .execute(&mut conn)
    .await
    .expect("activities opened");
}
