//! The harness: a real server on a random port over a fresh world per test, on the
//! backend `TEST_BACKEND` names: `embedded` (default: a SQLite file in a temp dir),
//! `mysql` (MariaDB/MySQL at `TEST_MYSQL_URL`, Redis at `TEST_REDIS_URL`, RabbitMQ at
//! `TEST_AMQP_URL`: fresh databases, Redis key prefix and queue prefix per test, removed
//! when the test's last handle on them is dropped) or `mysql-cluster`: three nodes per
//! test, requests sent to them in turn, user database 1 beside the config database at
//! `TEST_MYSQL_URL` and user database 2 on a private MariaDB server (port 3320), Redis a
//! private three-master cluster (ports 7011–7013). The private servers are started once
//! per test process and killed when it ends.

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
    /// Three nodes on two MariaDB servers and a Redis Cluster.
    MysqlCluster,
}

/// `TEST_BACKEND`: unset or `embedded`, or `mysql`. Anything else stops the run (a typo
/// must not quietly test the embedded store instead).
pub fn backend() -> Backend {
    match std::env::var("TEST_BACKEND").as_deref() {
        Err(_) | Ok("") | Ok("embedded") => Backend::Embedded,
        Ok("mysql") => Backend::Mysql,
        Ok("mysql-cluster") => Backend::MysqlCluster,
        Ok(other) => panic!("TEST_BACKEND={other:?}: use `embedded`, `mysql` or `mysql-cluster`"),
    }
}

/// How many nodes each test's server is: three on `mysql-cluster`, else one.
pub fn node_count() -> usize {
    if backend() == Backend::MysqlCluster {
        3
    } else {
        1
    }
}

#[path = "../support/servers.rs"]
mod servers;

const CLUSTER_MARIADB_PORT: u16 = 3320;
const CLUSTER_REDIS_PORTS: [u16; 3] = [7011, 7012, 7013];

/// The private servers of `mysql-cluster`, shared by the process's tests.
struct ClusterServers {
    mariadb_url: String,
    seeds: Vec<String>,
    _guards: Vec<servers::Guard>,
}

/// Starts the private servers on first use. Kept in a static, they are never dropped:
/// a watchdog shell kills them when this process ends, and the next run kills whatever
/// its pid file still names before starting fresh ones.
fn cluster_servers() -> &'static ClusterServers {
    static SERVERS: std::sync::OnceLock<ClusterServers> = std::sync::OnceLock::new();
    SERVERS.get_or_init(|| {
        std::thread::spawn(|| {
            let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let (dir, pid_file) = (tmp.join("api-cluster"), tmp.join("api-cluster.pids"));
            servers::kill_recorded(&pid_file);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("private servers' directory");
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let mut guards = vec![];
            rt.block_on(async {
                let mariadb_dir = dir.join("mariadb");
                std::fs::create_dir_all(&mariadb_dir).expect("mariadb dir");
                let mariadb = servers::private_mariadb(&mariadb_dir, CLUSTER_MARIADB_PORT).await;
                servers::record_pid(&pid_file, &mariadb);
                guards.push(mariadb);
                for node in servers::private_cluster(&dir.join("redis"), CLUSTER_REDIS_PORTS).await
                {
                    servers::record_pid(&pid_file, &node);
                    guards.push(node);
                }
            });
            for g in &guards {
                g.killed_after_this_process(&dir);
            }
            ClusterServers {
                mariadb_url: format!("mysql://root@127.0.0.1:{CLUSTER_MARIADB_PORT}"),
                seeds: CLUSTER_REDIS_PORTS
                    .iter()
                    .map(|p| format!("redis://127.0.0.1:{p}"))
                    .collect(),
                _guards: guards,
            }
        })
        .join()
        .expect("mysql-cluster: the private MariaDB server and Redis Cluster start")
    })
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
    /// `mysql-cluster`: the server of each user database.
    shard_urls: Vec<String>,
    database: String,
    redis_url: String,
    /// `mysql-cluster`: the cluster's masters (instead of `redis_url`).
    cluster_urls: Vec<String>,
    redis_prefix: String,
    amqp_url: String,
    amqp_prefix: String,
}

impl World {
    fn fresh() -> Self {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let servers = (backend() != Backend::Embedded).then(|| {
            let (pid, n) = (std::process::id(), rand::random::<u32>() % 1_000_000);
            let mysql_url = env_or("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306");
            let (shard_urls, cluster_urls) = if backend() == Backend::MysqlCluster {
                let private = cluster_servers();
                (
                    vec![mysql_url.clone(), private.mariadb_url.clone()],
                    private.seeds.clone(),
                )
            } else {
                (vec![], vec![])
            };
            Arc::new(Servers {
                names: Names {
                    mysql_url,
                    shard_urls,
                    database: format!("bmt_{pid}_{n}"),
                    redis_url: env_or("TEST_REDIS_URL", "redis://127.0.0.1:6379"),
                    cluster_urls,
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
            config.mysql.url = Some(Secret(s.mysql_url.clone()));
            config.mysql.database = s.database.clone();
            config.mysql.shard_urls = s.shard_urls.iter().cloned().map(Secret).collect();
            if s.cluster_urls.is_empty() {
                config.redis.url = Some(Secret(s.redis_url.clone()));
            } else {
                config.redis.cluster_urls = s.cluster_urls.iter().cloned().map(Secret).collect();
            }
            config.redis.prefix = s.redis_prefix.clone();
            config.amqp.url = Some(Secret(s.amqp_url.clone()));
            config.amqp.prefix = s.amqp_prefix.clone();
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
            assert!(
                s.names.shard_urls.is_empty(),
                "TEST_MYSQL_SCHEMA=upstream is for TEST_BACKEND=mysql only"
            );
            from_upstream_dumps(&options, clock).await;
        }
        let sample = SampleData::upstream().with_open_activities(clock.now().datetime());
        big_market_adapters::mysql::migrate::migrate(&options, Some(&sample))
            .await
            .unwrap_or_else(|e| panic!("{e}: TEST_BACKEND=mysql needs MariaDB/MySQL"));
        if config.amqp.prefix == s.names.amqp_prefix && config.amqp.url.is_some() {
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
            shard_urls: self.shard_urls.clone(),
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
        let redis_nodes = if self.cluster_urls.is_empty() {
            std::slice::from_ref(&self.redis_url)
        } else {
            self.cluster_urls.as_slice()
        };
        for node in redis_nodes {
            if let Err(e) = delete_redis_keys(node, |k| k.starts_with(&self.redis_prefix)).await {
                eprintln!("clean-up: redis keys {}* on {node}: {e}", self.redis_prefix);
            }
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
    let mut per_server = std::collections::BTreeMap::<&str, Vec<String>>::new();
    per_server
        .entry(options.url.as_str())
        .or_default()
        .push(options.database.clone());
    for (i, name) in options.user_databases().into_iter().enumerate() {
        per_server
            .entry(options.url_of(i as u32 + 1))
            .or_default()
            .push(name);
    }
    for (url, names) in per_server {
        drop_named_databases(url, &names).await;
    }
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

/// Deletes the Redis keys `keep` selects on one server (SCAN, then one DEL per key in a
/// pipeline: a cluster node refuses a DEL naming keys of several slots).
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
            let mut pipe = redis::pipe();
            for k in &mine {
                pipe.cmd("DEL").arg(k).ignore();
            }
            let () = pipe.query_async(&mut conn).await?;
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
    /// The first node (the only one but on `mysql-cluster`).
    pub base: String,
    /// Every node; [`TestApp::url`] sends requests to them in turn.
    pub bases: Vec<String>,
    turn: std::sync::atomic::AtomicUsize,
    /// Every request to the first node (see [`TestApp::one_node`]).
    pinned: AtomicBool,
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
    /// On `mysql-cluster`: a small pool on each user database's server other than the
    /// config server, by user database (1-based).
    shard_sql: std::collections::BTreeMap<u32, sqlx::MySqlPool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// The other nodes on `mysql-cluster`.
    others: Vec<Node>,
    /// Every node's configuration caches (see [`TestApp::settle_config`]).
    caches: Vec<Caches>,
}

/// A node's caches of the configuration.
struct Caches {
    strategy: Arc<big_market_domain::strategy::StrategyService>,
    activity: Arc<big_market_domain::activity::ActivityService>,
    dcc: Arc<big_market_domain::dcc::DynamicConfig>,
}

impl Caches {
    fn of(app: &Application) -> Self {
        Self {
            strategy: app.services.strategy.clone(),
            activity: app.services.activity.clone(),
            dcc: app.services.dcc.clone(),
        }
    }
}

/// A further node of the same deployment: its store (closed by `close_store`) and its
/// stop switch.
struct Node {
    store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn test_config(dir: &Path) -> Config {
    let mut c = Config::default();
    c.http.addr = "127.0.0.1:0".into();
    c.embedded.data_dir = dir.to_owned();
    // Debug builds on a busy 2-core machine: deadline tests set their own.
    c.guards.draw_timeout_ms = 10_000;
    c
}

/// Keeps tasks on the in-process bus on the production backend too, for tests that read
/// delivery from the outbox's task states: over RabbitMQ a task is completed on the
/// broker's confirm, before its consumer ran, and a consumer's failures are retried by
/// the broker's delay queues rather than recorded on the task (RabbitMQ delivery has its
/// own test, `with_amqp_url_tasks_go_through_rabbitmq`).
pub fn in_process_bus(c: &mut Config) {
    c.amqp.url = None;
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
        let pool_on = |server: &str, database: &str| {
            let url = match server.split_once('?') {
                Some((server, query)) => format!("{server}/{database}?{query}"),
                None => format!("{server}/{database}"),
            };
            sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(4)
                .connect_lazy(&url)
                .expect("test pool")
        };
        let sql = config.mysql().map(|o| pool_on(&o.url, &o.database));
        let mut shard_sql = std::collections::BTreeMap::new();
        if let Some(o) = config.mysql() {
            for (i, db) in o.user_databases().iter().enumerate() {
                let n = i as u32 + 1;
                if o.url_of(n) != o.url {
                    shard_sql.insert(n, pool_on(o.url_of(n), db));
                }
            }
        }
        let app = Application::build_with(config.clone(), clock.clone(), seams.clone())
            .await
            .expect("app builds");
        let mut others = Vec::new();
        for _ in 1..node_count() {
            let node = Application::build_with(config.clone(), clock.clone(), seams.clone())
                .await
                .expect("node builds");
            others.push(node);
        }
        let mut caches = vec![Caches::of(&app)];
        caches.extend(others.iter().map(Caches::of));
        let mut app = Self::start(app, world, sql);
        app.shard_sql = shard_sql;
        if caches.len() > 1 {
            app.caches = caches;
        }
        for node in others {
            app.bases.push(format!("http://127.0.0.1:{}", node.port()));
            let store = node.services.store.clone();
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(node.run_until_stopped(async move {
                let _ = rx.await;
            }));
            app.others.push(Node {
                store,
                stop: Some(tx),
                server: Some(server),
            });
        }
        app
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
            bases: vec![format!("http://127.0.0.1:{port}")],
            turn: std::sync::atomic::AtomicUsize::new(0),
            pinned: AtomicBool::new(false),
            client: reqwest::Client::new(),
            store,
            award,
            amqp,
            rebate,
            activity,
            world,
            sql,
            shard_sql: std::collections::BTreeMap::new(),
            stop: Some(tx),
            server: Some(server),
            others: Vec::new(),
            caches: Vec::new(),
        }
    }

    /// On `mysql-cluster`, after a request that changes configuration (an armory, a
    /// campaign, the dcc switches, fairness, the ERP's audit or stage): the node that took
    /// it announces the change over Redis and the others reload it when the announcement
    /// arrives, a few milliseconds later. Each node reloads everything now instead, so the
    /// test's next request, on whichever node, sees the change as one node would. The
    /// announcements themselves are tested by `scale_out` (`check_cluster_parts`).
    pub async fn settle_config(&self, path: &str) {
        const CHANGES: [&str; 6] = [
            "armory",
            "admin/campaign/apply",
            "admin/campaign/rollback",
            "admin/fairness/",
            "dcc/update_config",
            "erp/",
        ];
        if self.caches.is_empty() || !CHANGES.iter().any(|c| path.contains(c)) {
            return;
        }
        for c in &self.caches {
            let strategies = c.strategy.armory_all().await.map(drop);
            let activities = c.activity.reload_all().await;
            let switches = c.dcc.reload().await;
            if let Err(e) = strategies.and(activities).and(switches) {
                eprintln!("settling the configuration on every node: {e}");
            }
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
            max_attempts: Config::default().outbox.max_attempts,
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
        let mut stops: Vec<_> = self
            .others
            .iter_mut()
            .map(|n| (n.stop.take(), n.server.take()))
            .collect();
        stops.push((self.stop.take(), self.server.take()));
        for (tx, _) in &mut stops {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        }
        for (_, server) in stops {
            if let Some(server) = server {
                server.await.expect("server task").expect("server ran");
            }
        }
        if let Some(pool) = self.sql.take() {
            pool.close().await;
        }
        for pool in std::mem::take(&mut self.shard_sql).into_values() {
            pool.close().await;
        }
        self.world.clone()
    }

    pub fn is_mysql(&self) -> bool {
        self.world.servers.is_some()
    }

    /// From now on, every request to the first node: for what each node keeps to itself
    /// by design (the rate limiter's counts, the circuit breaker, `/metrics`).
    pub fn one_node(&self) {
        self.pinned.store(true, Ordering::SeqCst);
    }

    /// An API URL on the next node in turn.
    pub fn url(&self, path: &str) -> String {
        let turn = if self.pinned.load(Ordering::SeqCst) {
            0
        } else {
            self.turn.fetch_add(1, Ordering::Relaxed)
        };
        format!(
            "{}/api/v1/raffle/{path}",
            self.bases[turn % self.bases.len()]
        )
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
        let v = envelope(resp).await;
        self.settle_config(path).await;
        v
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
        let v = envelope(resp).await;
        self.settle_config(path_and_query).await;
        v
    }

    fn embedded(&self) -> &big_market_adapters::sqlite::SqliteStore {
        self.store.sqlite().expect("the embedded store")
    }

    async fn exec(&self, sql: String) {
        self.exec_on(0, sql).await;
    }

    /// The pool for user database `db` (1-based; 0: the config database).
    fn pool_of(&self, db: u32) -> Option<&sqlx::MySqlPool> {
        self.shard_sql.get(&db).or(self.sql.as_ref())
    }

    async fn exec_on(&self, db: u32, sql: String) {
        match self.pool_of(db) {
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

    /// Every copy of a user table with its user database (0 on the embedded store): the
    /// table itself on the embedded store; on MariaDB/MySQL, `` `db_0N`.table_00M `` for a
    /// sharded table and `` `db_0N`.table `` for one kept per user database. With `user`,
    /// only the copy holding that user.
    fn copies(&self, table: &str, user: Option<&str>) -> Vec<(u32, String)> {
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
            return vec![(0, table.to_owned())];
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
            return vec![(
                route.db,
                format!("`{}`.{table}{sfx}", route.database(&o.database)),
            )];
        }
        o.user_databases()
            .into_iter()
            .enumerate()
            .flat_map(|(i, db)| {
                suffixes
                    .iter()
                    .map(move |s| (i as u32 + 1, format!("`{db}`.{table}{s}")))
            })
            .collect()
    }

    /// `SELECT COUNT(*) FROM {table} WHERE {filter}` over every copy of a user table.
    pub async fn count_rows(&self, table: &str, filter: &str) -> i64 {
        let mut n = 0;
        for (db, copy) in self.copies(table, None) {
            let mut sql = format!("SELECT COUNT(*) FROM {copy}");
            if !filter.is_empty() {
                sql = format!("{sql} WHERE {filter}");
            }
            n += match self.pool_of(db) {
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
        for (db, copy) in self.copies(table, None) {
            let sql = format!("SELECT {select} FROM {copy} {rest}");
            let rows: Vec<Vec<String>> = match self.pool_of(db) {
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
        for (db, copy) in self.copies(table, user) {
            self.exec_on(db, make(&copy)).await;
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
        for store in std::iter::once(&self.store).chain(self.others.iter().map(|n| &n.store)) {
            match store {
                Store::Embedded(s) => s.close(),
                Store::Mysql(s) => s.pool().close().await,
            }
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
        let mut servers = Vec::new();
        let nodes = std::iter::once((&mut self.stop, &mut self.server))
            .chain(self.others.iter_mut().map(|n| (&mut n.stop, &mut n.server)));
        for (stop, server) in nodes {
            if let (Some(stop), Some(server)) = (stop.take(), server.take()) {
                let _ = stop.send(());
                servers.push(server);
            }
        }
        if servers.is_empty() {
            return;
        }
        let Ok(handle) = Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != RuntimeFlavor::MultiThread {
            return;
        }
        let (done, stopped) = std::sync::mpsc::channel();
        handle.spawn(async move {
            for server in servers {
                let _ = server.await;
            }
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
