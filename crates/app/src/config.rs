//! Configuration: defaults, then a TOML file, then `BIG_MARKET_*` environment variables,
//! then command-line flags (each layer overrides the one before).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A secret value: read from config, never printed (`Debug` shows `***`).
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds (upstream's port is 8091).
    pub addr: String,
    /// Directory of the embedded store (`big-market.db`).
    pub data_dir: PathBuf,
    /// Time zone deciding "today" and "this month" (upstream: Asia/Shanghai).
    pub time_zone: String,
    /// Load upstream's sample configuration into a fresh store.
    pub sample_data: bool,
    /// CORS origins allowed to call the API from a browser; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Most transactions the embedded store commits together.
    pub sqlite_max_batch: usize,
    /// `PRAGMA synchronous` of the embedded store: `FULL` (durable per commit) or `NORMAL`.
    pub sqlite_synchronous: String,
    /// Log filter (tracing `EnvFilter` syntax); `RUST_LOG` overrides it.
    pub log_filter: String,
    /// `text` or `json`.
    pub log_format: String,
    /// Seconds between outbox compensation runs.
    pub outbox_interval_secs: u64,
    /// The lease of a sender on a task: a `create` task not delivered this long after
    /// its commit is re-sent by the compensation job; a send is cut off after half of it.
    pub outbox_stale_secs: u64,
    /// Delivery attempts before a task is parked for an operator.
    pub outbox_max_attempts: i64,
    /// First retry delay in seconds (doubles per attempt, at most 10 minutes).
    pub outbox_retry_base_secs: u64,
    /// Base URL of the account service granting `openai_use_count` prizes; unset: such
    /// prizes stay undelivered with a reason.
    pub openai_api_host: Option<String>,
    pub openai_app_id: String,
    pub openai_app_token: Secret,
    pub openai_timeout_ms: u64,
    /// `appId → appToken` allowed to call `activity/behavior_rebate`.
    pub app_tokens: BTreeMap<String, Secret>,
    /// Bearer token of operator endpoints (armory, recharge, dcc, erp). Unset: they
    /// answer loopback clients only.
    pub admin_token: Option<Secret>,
    /// HS256 key of user tokens (`*_by_token`), as its raw bytes. Unset: those endpoints
    /// answer with a configuration error.
    pub jwt_secret: Option<Secret>,
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
    /// MariaDB/MySQL server, `mysql://user:password@host:3306` (no database): the
    /// production store, prepared by `big-market migrate`.
    pub mysql_url: Option<Secret>,
    /// RabbitMQ broker, `amqp://user:password@host:5672/%2f`: tasks are published there
    /// (persistent, confirmed) and consumed from upstream's queues; unset: in process.
    pub amqp_url: Option<Secret>,
    /// Put before every queue name (empty: upstream's names, so Java services share them).
    pub amqp_prefix: String,
    /// The config database; user databases are named after it: `big_market_01`, ….
    pub mysql_database: String,
    /// User databases (upstream's `dbCount`).
    pub mysql_db_count: u32,
    /// Copies of each sharded table per user database (upstream's `tbCount`).
    pub mysql_tb_count: u32,
    /// Most connections to MariaDB/MySQL (one transaction holds one). Beyond what the
    /// server's cores run at once, more connections only queue inside the server.
    pub mysql_pool_size: u32,
    /// With Redis: transactions that run grouped draws at once per user database
    /// (each commits up to 64 users' draws together); `0` runs every draw alone.
    pub mysql_draw_workers: u32,
    /// Redis, `redis://host:6379` (optionally `/db`): award and SKU stock, job leadership
    /// and cache invalidation, so several nodes can share one MariaDB/MySQL store.
    pub redis_url: Option<Secret>,
    /// Put before every Redis key (no `{` or `}`: keys carry hash tags).
    pub redis_prefix: String,
    /// How often the stock write-back job copies Redis counters to the SQL surplus columns.
    pub stock_writeback_ms: u64,
    /// A stock reservation whose order is not in SQL after this long is given back by the
    /// sweeper. It must exceed the longest a draw's transaction can stay open.
    pub stock_reservation_secs: u64,
    /// After SIGINT/SIGTERM: how long the requests in flight and the background jobs
    /// (sends in flight, the last stock write-back) may take to finish.
    pub shutdown_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8091".into(),
            data_dir: PathBuf::from("./data"),
            time_zone: "Asia/Shanghai".into(),
            sample_data: true,
            cors_origins: vec!["*".into()],
            sqlite_max_batch: 256,
            sqlite_synchronous: "FULL".into(),
            log_filter: "info".into(),
            log_format: "text".into(),
            outbox_interval_secs: 5,
            outbox_stale_secs: 10,
            outbox_max_attempts: 20,
            outbox_retry_base_secs: 5,
            openai_api_host: None,
            openai_app_id: "big-market".into(),
            openai_app_token: Secret::default(),
            openai_timeout_ms: 3000,
            app_tokens: BTreeMap::new(),
            admin_token: None,
            jwt_secret: None,
            draw_timeout_ms: 150,
            rate_limit_per_second: 1,
            rate_limit_blacklist_count: 1,
            rate_limit_block_secs: 24 * 3600,
            breaker_failure_threshold: 5,
            breaker_cooldown_ms: 5000,
            mysql_url: None,
            amqp_url: None,
            amqp_prefix: String::new(),
            mysql_database: "big_market".into(),
            mysql_db_count: 2,
            mysql_tb_count: 4,
            mysql_pool_size: 16,
            mysql_draw_workers: 1,
            redis_url: None,
            redis_prefix: "big_market:".into(),
            stock_writeback_ms: 1000,
            stock_reservation_secs: 60,
            shutdown_timeout_ms: 10_000,
        }
    }
}

impl Config {
    /// The outbox's retries (and the RabbitMQ consumers', on the same schedule).
    pub fn retry_policy(&self) -> big_market_domain::task::RetryPolicy {
        big_market_domain::task::RetryPolicy {
            max_attempts: self.outbox_max_attempts,
            base_delay_secs: self.outbox_retry_base_secs,
            max_delay_secs: 600,
        }
    }

    /// The production store's settings, when `mysql_url` is set.
    pub fn mysql(&self) -> Option<big_market_adapters::mysql::MysqlOptions> {
        self.mysql_url
            .as_ref()
            .map(|url| big_market_adapters::mysql::MysqlOptions {
                url: url.0.clone(),
                database: self.mysql_database.clone(),
                db_count: self.mysql_db_count,
                tb_count: self.mysql_tb_count,
                pool_size: self.mysql_pool_size,
                ..Default::default()
            })
    }

    /// Loads the layered configuration. A named file must exist.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        let config: Config = figment
            .merge(Env::prefixed("BIG_MARKET_"))
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| anyhow::anyhow!("time_zone {:?}: {e}", self.time_zone))?;
        anyhow::ensure!(
            matches!(
                self.sqlite_synchronous.as_str(),
                "FULL" | "NORMAL" | "EXTRA"
            ),
            "sqlite_synchronous must be FULL, EXTRA or NORMAL, not {:?}",
            self.sqlite_synchronous
        );
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "text" | "json"),
            "log_format must be text or json"
        );
        if let Some(mysql) = self.mysql() {
            mysql.validate()?;
        }
        anyhow::ensure!(
            self.mysql_pool_size > 0,
            "mysql_pool_size must be at least 1"
        );
        // Busy group workers (three kinds per user database) keep a connection each; the
        // rest of the node needs at least as many again.
        let held = 3 * self.mysql_db_count * self.mysql_draw_workers;
        anyhow::ensure!(
            self.redis_url.is_none()
                || self.mysql_url.is_none()
                || self.mysql_pool_size >= 2 * held,
            "mysql_pool_size {} is too small for mysql_draw_workers {}: {held} connections are \
             held by group workers (3 kinds x {} user databases x workers); use at least {}",
            self.mysql_pool_size,
            self.mysql_draw_workers,
            self.mysql_db_count,
            2 * held
        );
        anyhow::ensure!(
            !self.redis_prefix.contains(['{', '}']),
            "redis_prefix must not contain '{{' or '}}' (keys carry hash tags)"
        );
        anyhow::ensure!(
            self.redis_url.is_none() || self.mysql_url.is_some(),
            "redis_url needs mysql_url: the embedded store keeps its stock in its own file"
        );
        anyhow::ensure!(
            self.stock_writeback_ms > 0 && self.stock_reservation_secs >= 5,
            "stock_writeback_ms must be at least 1 and stock_reservation_secs at least 5"
        );
        anyhow::ensure!(
            self.sqlite_max_batch > 0,
            "sqlite_max_batch must be at least 1"
        );
        anyhow::ensure!(
            self.outbox_interval_secs > 0 && self.outbox_max_attempts > 0,
            "outbox_interval_secs and outbox_max_attempts must be at least 1"
        );
        anyhow::ensure!(
            self.draw_timeout_ms > 0 && self.rate_limit_per_second > 0,
            "draw_timeout_ms and rate_limit_per_second must be at least 1"
        );
        for (name, secret) in [
            ("admin_token", &self.admin_token),
            ("jwt_secret", &self.jwt_secret),
        ] {
            anyhow::ensure!(
                secret.as_ref().is_none_or(|s| !s.0.trim().is_empty()),
                "{name} is set but blank"
            );
        }
        // A send is cut off at half the lease; the account service call must fit in it.
        anyhow::ensure!(
            self.outbox_stale_secs >= 3,
            "outbox_stale_secs must be at least 3"
        );
        anyhow::ensure!(
            self.openai_timeout_ms.saturating_mul(2) < self.outbox_stale_secs.saturating_mul(1000),
            "outbox_stale_secs ({}) must be more than twice openai_timeout_ms ({} ms)",
            self.outbox_stale_secs,
            self.openai_timeout_ms
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
                    addr = "0.0.0.0:9000"
                    data_dir = "/var/lib/big-market"
                    cors_origins = ["https://a.example"]
                "#,
            )?;
            jail.set_env("BIG_MARKET_ADDR", "127.0.0.1:7000");
            jail.set_env("BIG_MARKET_TIME_ZONE", "UTC");
            jail.set_env("BIG_MARKET_ADMIN_TOKEN", "s3cret-admin");
            jail.set_env("BIG_MARKET_DRAW_TIMEOUT_MS", "300");
            let c = Config::load(Some(Path::new("big-market.toml"))).expect("loads");
            assert_eq!(c.admin_token, Some(Secret("s3cret-admin".into())));
            assert_eq!(c.draw_timeout_ms, 300);
            assert!(c.jwt_secret.is_none(), "no built-in JWT secret");
            assert!(
                !format!("{c:?}").contains("s3cret"),
                "secrets never printed"
            );
            assert_eq!(c.addr, "127.0.0.1:7000", "environment wins over the file");
            assert_eq!(c.data_dir, PathBuf::from("/var/lib/big-market"));
            assert_eq!(c.cors_origins, vec!["https://a.example".to_string()]);
            assert_eq!(c.time_zone, "UTC");
            assert_eq!(c.sqlite_synchronous, "FULL", "default kept");
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
            jail.create_file("x.toml", "adress = \"typo\"")?;
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
    fn an_all_digit_secret_is_read_as_text_and_never_echoed() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("BIG_MARKET_ADMIN_TOKEN", "12345678");
            let c = Config::load(None).expect("loads");
            assert_eq!(c.admin_token, Some(Secret("12345678".into())));
            assert!(!format!("{c:?}").contains("12345678"));
            Ok(())
        });
    }

    #[test]
    fn an_outbox_lease_shorter_than_a_delivery_is_refused() {
        // A send is cut off at half the lease; the account service call must fit in it,
        // or a second sender could start while the first is still waiting for it.
        let config = |stale, timeout| Config {
            outbox_stale_secs: stale,
            openai_timeout_ms: timeout,
            ..Config::default()
        };
        assert!(config(10, 3000).validate().is_ok());
        let e = config(2, 400).validate().unwrap_err().to_string();
        assert!(e.contains("at least 3"), "{e}");
        let e = config(6, 3000).validate().unwrap_err().to_string();
        assert!(e.contains("openai_timeout_ms"), "{e}");
    }

    #[test]
    fn a_pool_too_small_for_the_group_workers_is_refused() {
        let config = |pool, workers| Config {
            mysql_url: Some(Secret("mysql://root@127.0.0.1:3306".into())),
            redis_url: Some(Secret("redis://127.0.0.1:6379".into())),
            mysql_pool_size: pool,
            mysql_draw_workers: workers,
            ..Config::default()
        };
        assert!(config(16, 1).validate().is_ok(), "the defaults fit");
        let e = config(16, 3).validate().unwrap_err().to_string();
        assert!(e.contains("use at least 36"), "{e}");
        assert!(config(4, 0).validate().is_ok(), "no workers, nothing held");
    }
}
