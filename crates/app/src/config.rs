//! Configuration: defaults, then a TOML file, then `BIG_MARKET_*` environment variables,
//! then command-line flags (each layer overrides the one before).
//!
//! The file is in sections (`[http]`, `[embedded]`, `[log]`, `[outbox]`, `[openai]`,
//! `[guards]`, `[mysql]`, `[redis]`, `[amqp]`); `time_zone` and `shutdown_timeout_ms` are
//! top-level. Environment variables keep their flat names (`BIG_MARKET_MYSQL_URL` is
//! `[mysql] url`, see [`FLAT_KEYS`]); `BIG_MARKET_{SECTION}__{KEY}` works too. A flat key
//! written in a file (the layout before sections) is refused with its new place.

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A secret value: read from config, never printed (`Debug` shows `***`) and never
/// serialised.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);
/// Any scalar is taken as the secret's text (the environment provider reads an all-digit
/// token as a number), and a value of another type is refused without echoing it.
impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Secret;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a secret (text)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
                Err(E::custom("a secret must be text (quote it)"))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        d.deserialize_any(Text)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Every setting of the service. See `docs/CONFIGURATION.md`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Time zone deciding "today" and "this month" (upstream: Asia/Shanghai).
    pub time_zone: String,
    /// After SIGINT/SIGTERM: how long the requests in flight and the background jobs
    /// (sends in flight, the last stock write-back) may take to finish.
    pub shutdown_timeout_ms: u64,
    pub http: HttpConfig,
    pub embedded: EmbeddedConfig,
    pub log: LogConfig,
    pub outbox: OutboxConfig,
    pub openai: OpenAiConfig,
    pub guards: GuardsConfig,
    pub mysql: MysqlConfig,
    pub redis: RedisConfig,
    pub amqp: AmqpConfig,
    pub fairness: FairnessConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Shanghai".into(),
            shutdown_timeout_ms: 10_000,
            http: HttpConfig::default(),
            embedded: EmbeddedConfig::default(),
            log: LogConfig::default(),
            outbox: OutboxConfig::default(),
            openai: OpenAiConfig::default(),
            guards: GuardsConfig::default(),
            mysql: MysqlConfig::default(),
            redis: RedisConfig::default(),
            amqp: AmqpConfig::default(),
            fairness: FairnessConfig::default(),
        }
    }
}

/// `[fairness]`: provably fair draws (docs/FAIRNESS.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FairnessConfig {
    /// Length of a fair activity's epoch (one committed seed each), in seconds counted
    /// from local midnight; an epoch never crosses midnight. Default: a calendar day.
    pub epoch_secs: u64,
}

impl Default for FairnessConfig {
    fn default() -> Self {
        Self { epoch_secs: 86_400 }
    }
}

/// `[http]`: the listener and who may call what.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP server binds (upstream's port is 8091).
    pub addr: String,
    /// CORS origins allowed to call the API from a browser; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Bearer token of operator endpoints (armory, recharge, dcc, erp). Unset: they
    /// answer loopback clients only.
    pub admin_token: Option<Secret>,
    /// More operator tokens, `name → token`: each works as `admin_token` does, and its
    /// name is recorded as the author of what it changes (campaign versions).
    pub admin_tokens: BTreeMap<String, Secret>,
    /// HS256 key of user tokens (`*_by_token`), as its raw bytes. Unset: those endpoints
    /// answer with a configuration error.
    pub jwt_secret: Option<Secret>,
    /// `appId → appToken` allowed to call `activity/behavior_rebate`.
    pub app_tokens: BTreeMap<String, Secret>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8091".into(),
            cors_origins: vec!["*".into()],
            admin_token: None,
            admin_tokens: BTreeMap::new(),
            jwt_secret: None,
            app_tokens: BTreeMap::new(),
        }
    }
}

/// `PRAGMA synchronous` of the embedded store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Synchronous {
    /// Every commit is on disk before it is answered.
    Full,
    /// As `FULL`, and the directory too.
    Extra,
    /// Commits may be lost on power failure (not on a crash of the process).
    Normal,
}

impl Synchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// `[embedded]`: the SQLite store used when `[mysql] url` is unset.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Directory of the embedded store (`big-market.db`).
    pub data_dir: PathBuf,
    /// Load upstream's sample configuration into a fresh store.
    pub sample_data: bool,
    /// Most transactions the embedded store commits together.
    pub max_batch: usize,
    pub synchronous: Synchronous,
    /// Largest size of the store file (MiB); writes past it answer `ERR_STORE_001` as on
    /// a full disk. Unset: the disk is the limit.
    pub max_size_mb: Option<u64>,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            sample_data: true,
            max_batch: 256,
            synchronous: Synchronous::Full,
            max_size_mb: None,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// `[outbox]`: delivery of the tasks services commit.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxConfig {
    /// Seconds between outbox compensation runs.
    pub interval_secs: u64,
    /// The lease of a sender on a task: a `create` task not delivered this long after
    /// its commit is re-sent by the compensation job; a send is cut off after half of it.
    pub stale_secs: u64,
    /// Delivery attempts before a task is parked for an operator.
    pub max_attempts: i64,
    /// First retry delay in seconds (doubles per attempt, at most 10 minutes).
    pub retry_base_secs: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            interval_secs: 5,
            stale_secs: 10,
            max_attempts: 20,
            retry_base_secs: 5,
        }
    }
}

/// `[openai]`: the external account service granting `openai_use_count` prizes.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Base URL of the account service; unset: such prizes stay undelivered with a reason.
    pub api_host: Option<String>,
    pub app_id: String,
    pub app_token: Secret,
    pub timeout_ms: u64,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            api_host: None,
            app_id: "big-market".into(),
            app_token: Secret::default(),
            timeout_ms: 3000,
        }
    }
}

/// `[guards]`: the draw's deadline, rate limit and circuit breaker.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardsConfig {
    /// Deadline of one draw in milliseconds (upstream's Hystrix: 150); past it, `0006`
    /// if nothing was committed.
    pub draw_timeout_ms: u64,
    /// Draws per second one user may make while `rateLimiterSwitch` is open.
    pub rate_limit_per_second: u32,
    /// A user rejected more than this many times is blocked (upstream: 1).
    pub rate_limit_blacklist_count: u32,
    /// How long a blocked user stays blocked, restarted by each rejection (upstream: 24 h).
    pub rate_limit_block_secs: u64,
    /// Consecutive draw timeouts or store failures that open the circuit breaker.
    pub breaker_failure_threshold: u32,
    /// How long the open breaker answers `0006` at once before probing the store again.
    pub breaker_cooldown_ms: u64,
}

impl Default for GuardsConfig {
    fn default() -> Self {
        Self {
            draw_timeout_ms: 150,
            rate_limit_per_second: 1,
            rate_limit_blacklist_count: 1,
            rate_limit_block_secs: 24 * 3600,
            breaker_failure_threshold: 5,
            breaker_cooldown_ms: 5000,
        }
    }
}

/// `[mysql]`: the production store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MysqlConfig {
    /// MariaDB/MySQL server, `mysql://user:password@host:3306` (no database): the
    /// production store, prepared by `big-market migrate`. It holds the config database,
    /// and the user databases unless `shard_urls` is set.
    pub url: Option<Secret>,
    /// One server per user database (entry *i* holds user database *i + 1*; as many as
    /// `db_count`); empty: every user database on `url`. Needs Redis (stock then cannot
    /// be a cross-database update).
    pub shard_urls: Vec<Secret>,
    /// The config database; user databases are named after it: `big_market_01`, ….
    pub database: String,
    /// User databases (upstream's `dbCount`).
    pub db_count: u32,
    /// Copies of each sharded table per user database (upstream's `tbCount`).
    pub tb_count: u32,
    /// Most connections to MariaDB/MySQL (one transaction holds one). Beyond what the
    /// server's cores run at once, more connections only queue inside the server.
    pub pool_size: u32,
    /// With Redis: transactions that run grouped draws at once per user database
    /// (each commits up to 64 users' draws together); `0` runs every draw alone.
    pub draw_workers: u32,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        Self {
            url: None,
            shard_urls: Vec::new(),
            database: "big_market".into(),
            db_count: 2,
            tb_count: 4,
            pool_size: 16,
            draw_workers: 1,
        }
    }
}

/// `[redis]`: stock, job leases and cache invalidation of the production backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Redis, `redis://host:6379` (optionally `/db`), so several nodes can share one
    /// MariaDB/MySQL store.
    pub url: Option<Secret>,
    /// Seed nodes of a Redis Cluster (`["redis://a:7001", "redis://b:7002"]`), instead
    /// of `url`.
    pub cluster_urls: Vec<Secret>,
    /// Put before every Redis key (no `{` or `}`: keys carry hash tags).
    pub prefix: String,
    /// How often the stock write-back job copies Redis counters to the SQL surplus columns.
    pub stock_writeback_ms: u64,
    /// A stock reservation whose order is not in SQL after this long is given back by the
    /// sweeper. It must exceed the longest a draw's transaction can stay open.
    pub stock_reservation_secs: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            cluster_urls: Vec::new(),
            prefix: "big_market:".into(),
            stock_writeback_ms: 1000,
            stock_reservation_secs: 60,
        }
    }
}

/// `[amqp]`: RabbitMQ for the outbox's tasks.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// RabbitMQ broker, `amqp://user:password@host:5672/%2f`: tasks are published there
    /// (persistent, confirmed) and consumed from upstream's queues; unset: in process.
    pub url: Option<Secret>,
    /// Put before every queue name (empty: upstream's names, so Java services share them).
    pub prefix: String,
}

/// The flat keys of the layout before sections, and where each lives now. Environment
/// variables keep these names (`BIG_MARKET_` + the key upper-cased); in a file they are
/// refused with the new place.
pub const FLAT_KEYS: &[(&str, &str)] = &[
    ("addr", "http.addr"),
    ("cors_origins", "http.cors_origins"),
    ("admin_token", "http.admin_token"),
    ("admin_tokens", "http.admin_tokens"),
    ("jwt_secret", "http.jwt_secret"),
    ("app_tokens", "http.app_tokens"),
    ("data_dir", "embedded.data_dir"),
    ("sample_data", "embedded.sample_data"),
    ("sqlite_max_batch", "embedded.max_batch"),
    ("sqlite_synchronous", "embedded.synchronous"),
    ("sqlite_max_size_mb", "embedded.max_size_mb"),
    ("log_filter", "log.filter"),
    ("log_format", "log.format"),
    ("outbox_interval_secs", "outbox.interval_secs"),
    ("outbox_stale_secs", "outbox.stale_secs"),
    ("outbox_max_attempts", "outbox.max_attempts"),
    ("outbox_retry_base_secs", "outbox.retry_base_secs"),
    ("openai_api_host", "openai.api_host"),
    ("openai_app_id", "openai.app_id"),
    ("openai_app_token", "openai.app_token"),
    ("openai_timeout_ms", "openai.timeout_ms"),
    ("draw_timeout_ms", "guards.draw_timeout_ms"),
    ("rate_limit_per_second", "guards.rate_limit_per_second"),
    (
        "rate_limit_blacklist_count",
        "guards.rate_limit_blacklist_count",
    ),
    ("rate_limit_block_secs", "guards.rate_limit_block_secs"),
    (
        "breaker_failure_threshold",
        "guards.breaker_failure_threshold",
    ),
    ("breaker_cooldown_ms", "guards.breaker_cooldown_ms"),
    ("mysql_url", "mysql.url"),
    ("mysql_shard_urls", "mysql.shard_urls"),
    ("mysql_database", "mysql.database"),
    ("mysql_db_count", "mysql.db_count"),
    ("mysql_tb_count", "mysql.tb_count"),
    ("mysql_pool_size", "mysql.pool_size"),
    ("mysql_draw_workers", "mysql.draw_workers"),
    ("redis_url", "redis.url"),
    ("redis_cluster_urls", "redis.cluster_urls"),
    ("redis_prefix", "redis.prefix"),
    ("stock_writeback_ms", "redis.stock_writeback_ms"),
    ("stock_reservation_secs", "redis.stock_reservation_secs"),
    ("amqp_url", "amqp.url"),
    ("amqp_prefix", "amqp.prefix"),
];

/// An environment key (prefix removed, lower case) as a path into the sections.
fn env_key(key: &str) -> String {
    FLAT_KEYS
        .iter()
        .find(|(flat, _)| *flat == key)
        .map_or_else(|| key.replace("__", "."), |(_, path)| (*path).to_owned())
}

impl Config {
    /// The outbox's retries (and the RabbitMQ consumers', on the same schedule).
    pub fn retry_policy(&self) -> big_market_domain::task::RetryPolicy {
        big_market_domain::task::RetryPolicy {
            max_attempts: self.outbox.max_attempts,
            base_delay_secs: self.outbox.retry_base_secs,
            max_delay_secs: 600,
        }
    }

    /// The production store's settings, when `[mysql] url` is set.
    pub fn mysql(&self) -> Option<big_market_adapters::mysql::MysqlOptions> {
        self.mysql
            .url
            .as_ref()
            .map(|url| big_market_adapters::mysql::MysqlOptions {
                url: url.0.clone(),
                shard_urls: self.mysql.shard_urls.iter().map(|u| u.0.clone()).collect(),
                database: self.mysql.database.clone(),
                db_count: self.mysql.db_count,
                tb_count: self.mysql.tb_count,
                pool_size: self.mysql.pool_size,
                ..Default::default()
            })
    }

    /// Redis's servers, when `[redis] url` or `cluster_urls` is set.
    pub fn redis_servers(&self) -> Option<big_market_adapters::redis_store::RedisServers> {
        use big_market_adapters::redis_store::RedisServers;
        match (&self.redis.url, self.redis.cluster_urls.as_slice()) {
            (Some(url), _) => Some(RedisServers::Single(url.0.clone())),
            (None, []) => None,
            (None, seeds) => Some(RedisServers::Cluster(
                seeds.iter().map(|u| u.0.clone()).collect(),
            )),
        }
    }

    /// Loads the layered configuration. A named file must exist and be in sections.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            let toml = Figment::from(Toml::file(path));
            for (flat, path_now) in FLAT_KEYS {
                if toml.find_value(flat).is_ok() {
                    let (section, key) = path_now.split_once('.').unwrap_or(("", path_now));
                    anyhow::bail!(
                        "config file {}: `{flat}` is now `{key}` in section `[{section}]`",
                        path.display()
                    );
                }
            }
            figment = figment.merge(toml);
        }
        let config: Config = figment
            .merge(
                Env::prefixed("BIG_MARKET_")
                    .map(|k| env_key(&k.as_str().to_ascii_lowercase()).into()),
            )
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| anyhow::anyhow!("time_zone {:?}: {e}", self.time_zone))?;
        let (mysql, redis, outbox, guards) = (&self.mysql, &self.redis, &self.outbox, &self.guards);
        anyhow::ensure!(
            redis.url.is_none() || redis.cluster_urls.is_empty(),
            "[redis] url and cluster_urls are both set: give one server or a cluster's seed nodes"
        );
        let has_redis = self.redis_servers().is_some();
        if let Some(options) = self.mysql() {
            options.validate()?;
        }
        anyhow::ensure!(mysql.pool_size > 0, "[mysql] pool_size must be at least 1");
        // Busy group workers (three kinds per user database) keep a connection each; the
        // rest of the node needs at least as many again.
        let held = 3 * mysql.db_count * mysql.draw_workers;
        anyhow::ensure!(
            !has_redis || mysql.url.is_none() || mysql.pool_size >= 2 * held,
            "[mysql] pool_size {} is too small for draw_workers {}: {held} connections are \
             held by group workers (3 kinds x {} user databases x workers); use at least {}",
            mysql.pool_size,
            mysql.draw_workers,
            mysql.db_count,
            2 * held
        );
        anyhow::ensure!(
            !redis.prefix.contains(['{', '}']),
            "[redis] prefix must not contain '{{' or '}}' (keys carry hash tags)"
        );
        anyhow::ensure!(
            !has_redis || mysql.url.is_some(),
            "[redis] url needs [mysql] url: the embedded store keeps its stock in its own file"
        );
        anyhow::ensure!(
            redis.stock_writeback_ms > 0 && redis.stock_reservation_secs >= 5,
            "[redis] stock_writeback_ms must be at least 1 and stock_reservation_secs at least 5"
        );
        anyhow::ensure!(
            self.embedded.max_batch > 0,
            "[embedded] max_batch must be at least 1"
        );
        anyhow::ensure!(
            outbox.interval_secs > 0 && outbox.max_attempts > 0,
            "[outbox] interval_secs and max_attempts must be at least 1"
        );
        anyhow::ensure!(
            (60..=86_400).contains(&self.fairness.epoch_secs),
            "[fairness] epoch_secs must be between 60 and 86400"
        );
        anyhow::ensure!(
            guards.draw_timeout_ms > 0 && guards.rate_limit_per_second > 0,
            "[guards] draw_timeout_ms and rate_limit_per_second must be at least 1"
        );
        for (name, secret) in [
            ("[http] admin_token", &self.http.admin_token),
            ("[http] jwt_secret", &self.http.jwt_secret),
        ] {
            anyhow::ensure!(
                secret.as_ref().is_none_or(|s| !s.0.trim().is_empty()),
                "{name} is set but blank"
            );
        }
        for (holder, token) in &self.http.admin_tokens {
            anyhow::ensure!(
                !holder.trim().is_empty() && !token.0.trim().is_empty(),
                "[http] admin_tokens: every entry needs a name and a token"
            );
            anyhow::ensure!(
                holder != "admin" && holder != "local",
                "[http] admin_tokens: {holder:?} is reserved (admin_token's holder, or a loopback caller)"
            );
        }
        // A send is cut off at half the lease; the account service call must fit in it.
        anyhow::ensure!(
            outbox.stale_secs >= 3,
            "[outbox] stale_secs must be at least 3"
        );
        anyhow::ensure!(
            self.openai.timeout_ms.saturating_mul(2) < outbox.stale_secs.saturating_mul(1000),
            "[outbox] stale_secs ({}) must be more than twice [openai] timeout_ms ({} ms)",
            outbox.stale_secs,
            self.openai.timeout_ms
        );
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "big-market.toml",
                r#"
                    [http]
                    addr = "0.0.0.0:9000"
                    cors_origins = ["https://a.example"]

                    [embedded]
                    data_dir = "/var/lib/big-market"
                "#,
            )?;
            jail.set_env("BIG_MARKET_ADDR", "127.0.0.1:7000");
            jail.set_env("BIG_MARKET_TIME_ZONE", "UTC");
            jail.set_env("BIG_MARKET_ADMIN_TOKEN", "s3cret-admin");
            jail.set_env("BIG_MARKET_DRAW_TIMEOUT_MS", "300");
            jail.set_env("BIG_MARKET_REDIS__PREFIX", "bm2:");
            let c = Config::load(Some(Path::new("big-market.toml"))).expect("loads");
            assert_eq!(c.http.admin_token, Some(Secret("s3cret-admin".into())));
            assert_eq!(
                c.guards.draw_timeout_ms, 300,
                "flat environment names still work"
            );
            assert_eq!(c.redis.prefix, "bm2:", "so do SECTION__KEY names");
            assert!(c.http.jwt_secret.is_none(), "no built-in JWT secret");
            assert!(
                !format!("{c:?}").contains("s3cret"),
                "secrets never printed"
            );
            assert_eq!(
                c.http.addr, "127.0.0.1:7000",
                "environment wins over the file"
            );
            assert_eq!(c.embedded.data_dir, PathBuf::from("/var/lib/big-market"));
            assert_eq!(c.http.cors_origins, vec!["https://a.example".to_string()]);
            assert_eq!(c.time_zone, "UTC");
            assert_eq!(c.embedded.synchronous, Synchronous::Full, "default kept");
            Ok(())
        });
    }

    #[test]
    fn a_flat_key_in_a_file_names_its_new_place() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("old.toml", "mysql_url = \"mysql://root@db:3306\"")?;
            let e = Config::load(Some(Path::new("old.toml")))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("`mysql_url` is now `url` in section `[mysql]`"),
                "{e}"
            );
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_clear_errors() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BIG_MARKET_TIME_ZONE", "Mars/Olympus");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("time_zone"), "{e}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("BIG_MARKET_SQLITE_SYNCHRONOUS", "SOMETIMES");
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("SOMETIMES") && e.contains("FULL"), "{e}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.create_file("x.toml", "[http]\nadress = \"typo\"")?;
            let e = Config::load(Some(Path::new("x.toml")))
                .unwrap_err()
                .to_string();
            assert!(e.contains("adress"), "{e}");
            Ok(())
        });
        let e = Config::load(Some(Path::new("/nonexistent.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn shard_and_cluster_lists_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BIG_MARKET_MYSQL_URL", "mysql://root:pw@cfg:3306");
            jail.set_env(
                "BIG_MARKET_MYSQL_SHARD_URLS",
                r#"["mysql://root:pw@a:3306","mysql://root:pw@b:3306"]"#,
            );
            jail.set_env(
                "BIG_MARKET_REDIS_CLUSTER_URLS",
                r#"["redis://r1:7001","redis://r2:7002"]"#,
            );
            let c = Config::load(None).expect("loads");
            let m = c.mysql().expect("mysql");
            assert_eq!(
                (m.url_of(1), m.url_of(2)),
                ("mysql://root:pw@a:3306", "mysql://root:pw@b:3306")
            );
            assert_eq!(m.servers().len(), 3, "config server + two shard servers");
            assert!(matches!(
                c.redis_servers(),
                Some(big_market_adapters::redis_store::RedisServers::Cluster(s)) if s.len() == 2
            ));
            assert!(
                !format!("{c:?} {m:?}").contains("pw"),
                "credentials never printed"
            );
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("BIG_MARKET_MYSQL_URL", "mysql://root@cfg:3306");
            jail.set_env("BIG_MARKET_MYSQL_SHARD_URLS", r#"["mysql://root@a:3306"]"#);
            let e = Config::load(None).unwrap_err().to_string();
            assert!(
                e.contains("shard_urls lists 1 servers but db_count is 2"),
                "{e}"
            );
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("BIG_MARKET_MYSQL_URL", "mysql://root@cfg:3306");
            jail.set_env("BIG_MARKET_REDIS_URL", "redis://r:6379");
            jail.set_env("BIG_MARKET_REDIS_CLUSTER_URLS", r#"["redis://r1:7001"]"#);
            let e = Config::load(None).unwrap_err().to_string();
            assert!(e.contains("url and cluster_urls are both set"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn an_all_digit_secret_is_read_as_text_and_never_echoed() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BIG_MARKET_ADMIN_TOKEN", "12345678");
            let c = Config::load(None).expect("loads");
            assert_eq!(c.http.admin_token, Some(Secret("12345678".into())));
            assert!(!format!("{c:?}").contains("12345678"));
            Ok(())
        });
    }

    #[test]
    fn an_outbox_lease_shorter_than_a_delivery_is_refused() {
        // A send is cut off at half the lease; the account service call must fit in it,
        // or a second sender could start while the first is still waiting for it.
        let config = |stale, timeout| {
            let mut c = Config::default();
            c.outbox.stale_secs = stale;
            c.openai.timeout_ms = timeout;
            c
        };
        assert!(config(10, 3000).validate().is_ok());
        let e = config(2, 400).validate().unwrap_err().to_string();
        assert!(e.contains("at least 3"), "{e}");
        let e = config(6, 3000).validate().unwrap_err().to_string();
        assert!(e.contains("timeout_ms"), "{e}");
    }

    #[test]
    fn a_pool_too_small_for_the_group_workers_is_refused() {
        let config = |pool, workers| {
            let mut c = Config::default();
            c.mysql.url = Some(Secret("mysql://root@127.0.0.1:3306".into()));
            c.redis.url = Some(Secret("redis://127.0.0.1:6379".into()));
            c.mysql.pool_size = pool;
            c.mysql.draw_workers = workers;
            c
        };
        assert!(config(16, 1).validate().is_ok(), "the defaults fit");
        let e = config(16, 3).validate().unwrap_err().to_string();
        assert!(e.contains("use at least 36"), "{e}");
        assert!(config(4, 0).validate().is_ok(), "no workers, nothing held");
    }
}
