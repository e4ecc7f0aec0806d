//! The big-market application: configuration, wiring of backends and services, and the
//! server's life cycle. `main.rs` only parses the command line.

pub mod audit;
pub mod bench;
pub mod campaign_cli;
pub mod config;
pub mod consumers;
pub mod jobs;
pub mod readiness;
pub mod verify;

use anyhow::Context;
use big_market_adapters::amqp::{AmqpBus, AmqpOptions, ConsumerPolicy, run_consumer};
use big_market_adapters::gateway::{AccountServiceConfig, HttpAccountService};
use big_market_adapters::inprocess::InProcessBus;
use big_market_adapters::mysql::MysqlStore;
use big_market_adapters::redis_store::{
    Invalidation, RedisBlockList, RedisLock, RedisServers, RedisStock, Subscription,
};
use big_market_adapters::sqlite::{SqliteOptions, SqliteStore};
use big_market_domain::activity::{ActivityRepository, ActivityService};
use big_market_domain::award::{AwardGateway, AwardRepository, AwardService};
use big_market_domain::campaign::{CampaignRepository, CampaignService};
use big_market_domain::cluster::ConfigBroadcast;
use big_market_domain::credit::{CreditRepository, CreditService};
use big_market_domain::dcc::{DccRepository, DynamicConfig};
use big_market_domain::erp::{ErpRepository, ErpService};
use big_market_domain::guard::{BlockList, DrawGuard, GuardOptions, MemoryBlockList};
use big_market_domain::health::StoreProbe;
use big_market_domain::rebate::{RebateRepository, RebateService};
use big_market_domain::sample::SampleData;
use big_market_domain::strategy::fairness::{FairnessRepository, FairnessService};
use big_market_domain::strategy::{StrategyRepository, StrategyService};
use big_market_domain::task::{Consumer, EventBus, TaskRepository, TaskService, topic};
use big_market_domain::time::{Clock, SystemClock};
use big_market_http::{AppState, HttpOptions};
use config::Config;
use jobs::Stage;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// File name of the embedded store inside the data directory.
pub const DB_FILE: &str = "big-market.db";

/// The store behind the services: the embedded SQLite file, or MariaDB/MySQL when
/// `mysql_url` is set.
#[derive(Clone)]
pub enum Store {
    Embedded(SqliteStore),
    Mysql(MysqlStore),
}

impl Store {
    /// The embedded store, when it is the one in use.
    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match self {
            Store::Embedded(s) => Some(s),
            Store::Mysql(_) => None,
        }
    }

    /// The MariaDB/MySQL store, when it is the one in use.
    pub fn mysql(&self) -> Option<&MysqlStore> {
        match self {
            Store::Embedded(_) => None,
            Store::Mysql(s) => Some(s),
        }
    }

    fn ports(&self) -> Ports {
        match self {
            Store::Embedded(s) => Ports::of(s),
            Store::Mysql(s) => Ports::of(s),
        }
    }
}

/// Every port of one store, as the services take them.
struct Ports {
    strategy: Arc<dyn StrategyRepository>,
    activity: Arc<dyn ActivityRepository>,
    award: Arc<dyn AwardRepository>,
    credit: Arc<dyn CreditRepository>,
    rebate: Arc<dyn RebateRepository>,
    task: Arc<dyn TaskRepository>,
    dcc: Arc<dyn DccRepository>,
    erp: Arc<dyn ErpRepository>,
    campaign: Arc<dyn CampaignRepository>,
    probe: Arc<dyn StoreProbe>,
    fairness: Arc<dyn FairnessRepository>,
}

impl Ports {
    fn of<S>(store: &S) -> Self
    where
        S: StrategyRepository
            + ActivityRepository
            + AwardRepository
            + CreditRepository
            + RebateRepository
            + TaskRepository
            + DccRepository
            + ErpRepository
            + CampaignRepository
            + StoreProbe
            + FairnessRepository
            + Clone
            + 'static,
    {
        Self {
            strategy: Arc::new(store.clone()),
            activity: Arc::new(store.clone()),
            award: Arc::new(store.clone()),
            credit: Arc::new(store.clone()),
            rebate: Arc::new(store.clone()),
            task: Arc::new(store.clone()),
            dcc: Arc::new(store.clone()),
            erp: Arc::new(store.clone()),
            campaign: Arc::new(store.clone()),
            probe: Arc::new(store.clone()),
            fairness: Arc::new(store.clone()),
        }
    }
}

/// The wired services of one process.
pub struct Services {
    pub store: Store,
    /// `/ready` and `/metrics` answers of the store.
    pub probe: Arc<dyn StoreProbe>,
    pub strategy: Arc<StrategyService>,
    pub activity: Arc<ActivityService>,
    pub award: Arc<AwardService>,
    pub credit: Arc<CreditService>,
    pub rebate: Arc<RebateService>,
    pub tasks: Arc<TaskService>,
    pub clock: Arc<dyn Clock>,
    pub dcc: Arc<DynamicConfig>,
    pub guard: Arc<DrawGuard>,
    pub erp: Arc<ErpService>,
    /// Campaign documents: export, validate, simulate, apply, versions, rollback.
    pub campaign: Arc<CampaignService>,
    /// Task ids committed by the services, for the dispatcher (taken when it starts).
    notices: Mutex<Option<mpsc::UnboundedReceiver<jobs::Committed>>>,
    /// With `amqp_url`: the broker, and the consumer of each topic to run against it.
    pub amqp: Option<(AmqpBus, Vec<TopicConsumer>)>,
    /// With `redis_url` or `redis_cluster_urls`: stock, job leases and cache invalidation.
    pub redis: Option<RedisParts>,
    /// Other nodes' configuration changes (taken by the follower job when it starts).
    changes: Mutex<Option<Subscription>>,
}

/// The Redis side of the production backend.
#[derive(Clone)]
pub struct RedisParts {
    pub stock: RedisStock,
    pub lock: RedisLock,
    pub invalidation: Invalidation,
    pub blocks: RedisBlockList,
}

impl RedisParts {
    /// Connects (a clear error naming the server when it cannot be reached) and loads the
    /// stock scripts.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Self::connect_to(&RedisServers::Single(url.to_owned()), prefix).await
    }

    /// As [`RedisParts::connect`], to one server or a cluster.
    pub async fn connect_to(servers: &RedisServers, prefix: &str) -> anyhow::Result<Self> {
        let (clients, conn) = big_market_adapters::redis_store::connect_to(servers)
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            stock: RedisStock::new(conn.clone(), prefix).await?,
            lock: RedisLock::new(conn.clone(), prefix)?,
            blocks: RedisBlockList::new(conn.clone(), prefix)?,
            invalidation: Invalidation::on_nodes(clients, conn, prefix)?,
        })
    }
}

/// A topic and the consumer of its messages.
pub type TopicConsumer = (&'static str, Arc<dyn Consumer>);

/// Wraps a repository (tests put a slow or failing double around the real store).
pub type WrapActivityRepository =
    Arc<dyn Fn(Arc<dyn ActivityRepository>) -> Arc<dyn ActivityRepository> + Send + Sync>;

/// Places where tests swap in doubles; production uses the default (none).
#[derive(Clone, Default)]
pub struct Seams {
    pub activity_repository: Option<WrapActivityRepository>,
}

impl Services {
    /// Opens the store (migrating it, loading the sample into a fresh one) and assembles
    /// every strategy.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::build_with(config, clock, &Seams::default()).await
    }

    pub async fn build_with(
        config: &Config,
        clock: Arc<dyn Clock>,
        seams: &Seams,
    ) -> anyhow::Result<Self> {
        let mut redis = None;
        let mut changes = None;
        let store = match config.mysql() {
            Some(options) => {
                anyhow::ensure!(
                    options.shard_urls.is_empty() || config.redis_servers().is_some(),
                    "[mysql] shard_urls needs Redis ([redis] url or cluster_urls): without it \
                     a draw takes stock with one update across the config and user databases, \
                     which must then be on one server"
                );
                let mut store = MysqlStore::connect(&options)
                    .await
                    .context("opening the MariaDB/MySQL store")?;
                match config.redis_servers() {
                    Some(servers) => {
                        let parts = RedisParts::connect_to(&servers, &config.redis.prefix).await?;
                        // Subscribed before anything is loaded, so no change announced
                        // while this node starts is missed.
                        changes = Some(
                            parts
                                .invalidation
                                .subscribe()
                                .await
                                .context("subscribing to configuration changes in Redis")?,
                        );
                        tracing::info!(prefix = %config.redis.prefix, ?servers, "award and SKU stock, job leases and cache invalidation go through Redis");
                        store = store.with_redis_stock(parts.stock.clone());
                        if config.mysql.draw_workers > 0 {
                            store = store.with_grouped_writes(
                                config.mysql.draw_workers as usize,
                                big_market_adapters::mysql::MAX_GROUP,
                            );
                        }
                        redis = Some(parts);
                    }
                    None => tracing::warn!(
                        server = %options.server(),
                        "MariaDB/MySQL without redis_url: award and SKU stock are SQL row updates \
                         and jobs are not elected; run a single node"
                    ),
                }
                Store::Mysql(store)
            }
            None => {
                let path = config.embedded.data_dir.join(DB_FILE);
                let store = SqliteStore::open(
                    &path,
                    SqliteOptions {
                        max_batch: config.embedded.max_batch,
                        synchronous: config.embedded.synchronous.pragma().to_owned(),
                        // Without a broker, `send_award` is consumed in this process only.
                        credit_in_draw: config.amqp.url.is_none(),
                        max_size_mb: config.embedded.max_size_mb,
                    },
                )
                .with_context(|| format!("opening the embedded store {}", path.display()))?;
                if config.embedded.sample_data {
                    let sample =
                        SampleData::upstream().with_open_activities(clock.now().datetime());
                    if store.load_sample_if_fresh(sample).await? {
                        tracing::info!(path = %path.display(), "fresh store: loaded upstream's sample configuration");
                    }
                }
                Store::Embedded(store)
            }
        };
        let ports = store.ports();
        let strategy = Arc::new(StrategyService::new(ports.strategy, clock.clone()));
        let failures = strategy.armory_all().await.context(
            "reading the strategies (for MariaDB/MySQL, create the databases with `big-market migrate`)",
        )?;
        tracing::info!(
            assembled = strategy.catalog().ids().len(),
            failed = failures.len(),
            "strategy armory done"
        );
        let (notify, notices) = mpsc::unbounded_channel();
        let notifier = Arc::new(jobs::ChannelNotifier(notify));
        let mut activity_repo = ports.activity;
        if let Some(wrap) = &seams.activity_repository {
            activity_repo = wrap(activity_repo);
        }
        let activity = Arc::new(ActivityService::new(
            activity_repo,
            strategy.clone(),
            clock.clone(),
            notifier.clone(),
        ));
        activity.set_fairness(Arc::new(FairnessService::new(
            ports.fairness,
            clock.clone(),
            config.fairness.epoch_secs,
        )));
        activity.armory_all().await?;
        let credit = Arc::new(CreditService::new(
            ports.credit,
            clock.clone(),
            notifier.clone(),
        ));
        let rebate = Arc::new(RebateService::new(
            ports.rebate,
            clock.clone(),
            notifier.clone(),
            activity.clone(),
            credit.clone(),
        ));
        let gateway: Option<Arc<dyn AwardGateway>> = match &config.openai.api_host {
            Some(host) if !host.trim().is_empty() => {
                Some(Arc::new(HttpAccountService::new(AccountServiceConfig {
                    api_host: host.clone(),
                    app_id: config.openai.app_id.clone(),
                    app_token: config.openai.app_token.0.clone(),
                    timeout: Duration::from_millis(config.openai.timeout_ms),
                })?))
            }
            _ => {
                tracing::warn!(
                    "openai_api_host is not set: openai_use_count prizes stay undelivered with a reason"
                );
                None
            }
        };
        let award = Arc::new(AwardService::new(ports.award, gateway));
        let consumers: Vec<TopicConsumer> = vec![
            (
                topic::SEND_AWARD,
                Arc::new(consumers::SendAward(award.clone())),
            ),
            (
                topic::SEND_REBATE,
                Arc::new(consumers::SendRebate(rebate.clone())),
            ),
            (
                topic::CREDIT_ADJUST_SUCCESS,
                Arc::new(consumers::CreditAdjustSuccess(activity.clone())),
            ),
        ];
        // Tasks go to RabbitMQ when it is configured (consumers run against its queues,
        // started with the application), else straight to the consumers in process.
        let (bus, amqp): (Arc<dyn EventBus>, _) = match &config.amqp.url {
            Some(url) => {
                let options = AmqpOptions {
                    prefix: config.amqp.prefix.clone(),
                    ..AmqpOptions::default()
                };
                let amqp = AmqpBus::connect(&url.0, options)
                    .await
                    .context("connecting to RabbitMQ")?;
                tracing::info!(broker = %amqp.address(), "events go through RabbitMQ");
                (Arc::new(amqp.clone()), Some((amqp, consumers)))
            }
            None => {
                let bus = consumers
                    .into_iter()
                    .fold(InProcessBus::new(), |bus, (topic, c)| {
                        bus.subscribe(topic, c)
                    });
                (Arc::new(bus), None)
            }
        };
        let tasks = Arc::new(TaskService::new(
            ports.task,
            bus,
            config.retry_policy(),
            Duration::from_secs(config.outbox.stale_secs),
        ));
        let dcc = Arc::new(DynamicConfig::load(ports.dcc).await?);
        let guard = Arc::new(DrawGuard::new(
            dcc.clone(),
            match &redis {
                Some(r) => Arc::new(r.blocks.clone()) as Arc<dyn BlockList>,
                None => Arc::new(MemoryBlockList::default()),
            },
            clock.clone(),
            GuardOptions {
                permits_per_second: config.guards.rate_limit_per_second,
                blacklist_count: config.guards.rate_limit_blacklist_count,
                block_window: Duration::from_secs(config.guards.rate_limit_block_secs),
                draw_timeout: Duration::from_millis(config.guards.draw_timeout_ms),
                breaker_threshold: config.guards.breaker_failure_threshold,
                breaker_cooldown: Duration::from_millis(config.guards.breaker_cooldown_ms),
            },
        ));
        let erp = Arc::new(ErpService::new(ports.erp, activity.clone()));
        let campaign = Arc::new(CampaignService::new(
            ports.campaign,
            strategy.clone(),
            activity.clone(),
        ));
        // `/ready` asks every server a draw needs, not only the store.
        let probe: Arc<dyn StoreProbe> = Arc::new(readiness::Readiness {
            store: ports.probe,
            store_name: if store.mysql().is_some() {
                "MariaDB/MySQL"
            } else {
                "the embedded store"
            },
            others: redis
                .iter()
                .map(|r| {
                    Arc::new(readiness::RedisPing(r.stock.clone()))
                        as Arc<dyn readiness::Dependency>
                })
                .chain(amqp.iter().map(|(bus, _)| {
                    Arc::new(readiness::BrokerReachable(bus.clone()))
                        as Arc<dyn readiness::Dependency>
                }))
                .collect(),
        });
        Ok(Self {
            campaign,
            probe,
            dcc,
            guard,
            erp,
            store,
            strategy,
            activity,
            award,
            credit,
            rebate,
            tasks,
            clock,
            notices: Mutex::new(Some(notices)),
            amqp,
            redis,
            changes: Mutex::new(changes),
        })
    }
}

/// A built server, bound but not yet serving (tests read the port first).
pub struct Application {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    pub services: Services,
    /// The background jobs, running from `build` on (tests use a built application's
    /// services without serving), stopped by `run_until_stopped`.
    jobs: jobs::RunningJobs,
    /// How long the jobs may take to stop once the server stopped.
    shutdown_timeout: Duration,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let zone = jiff::tz::TimeZone::get(&config.time_zone)?;
        Self::build_with_clock(config, Arc::new(SystemClock::new(zone))).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::build_with(config, clock, Seams::default()).await
    }

    pub async fn build_with(
        config: Config,
        clock: Arc<dyn Clock>,
        seams: Seams,
    ) -> anyhow::Result<Self> {
        let services = Services::build_with(&config, clock, &seams).await?;
        if config.http.admin_token.is_none() && config.http.admin_tokens.is_empty() {
            tracing::warn!(
                "admin_token is not set: operator endpoints (armory, sku_recharge, dcc, erp, admin/campaign) answer loopback clients only"
            );
        }
        if config.http.jwt_secret.is_none() {
            tracing::warn!("jwt_secret is not set: the *_by_token endpoints are off");
        }
        let listener = tokio::net::TcpListener::bind(&config.http.addr)
            .await
            .with_context(|| format!("binding {}", config.http.addr))?;
        let router = big_market_http::router(
            AppState::new(big_market_http::Services {
                strategy: services.strategy.clone(),
                activity: services.activity.clone(),
                award: services.award.clone(),
                credit: services.credit.clone(),
                rebate: services.rebate.clone(),
                tasks: services.tasks.clone(),
                app_tokens: Arc::new(
                    config
                        .http
                        .app_tokens
                        .iter()
                        .map(|(k, v)| (k.clone(), v.0.clone()))
                        .collect(),
                ),
                dcc: services.dcc.clone(),
                guard: services.guard.clone(),
                erp: services.erp.clone(),
                campaign: services.campaign.clone(),
                probe: services.probe.clone(),
                auth: Arc::new(big_market_http::auth::AuthConfig {
                    admin_token: config.http.admin_token.as_ref().map(|s| s.0.clone()),
                    named_admin_tokens: config
                        .http
                        .admin_tokens
                        .iter()
                        .map(|(name, token)| (name.clone(), token.0.clone()))
                        .collect(),
                    jwt_secret: config.http.jwt_secret.as_ref().map(|s| s.0.clone()),
                }),
                metrics: Arc::new(
                    big_market_http::metrics::Metrics::new().context("registering metrics")?,
                ),
                clock: services.clock.clone(),
            }),
            &HttpOptions {
                cors_origins: config.http.cors_origins.clone(),
            },
        );
        let mut jobs = jobs::Supervisor::default();
        if let Some(notices) = services
            .notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let (queue, tasks) = (
                Arc::new(tokio::sync::Mutex::new(notices)),
                services.tasks.clone(),
            );
            jobs.add("outbox dispatcher", Stage::Work, move |stop| {
                jobs::dispatcher(queue.clone(), tasks.clone(), stop)
            });
        }
        let subscription = services
            .changes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let (Some(redis), Some(subscription)) = (&services.redis, subscription) {
            let broadcast: Arc<dyn ConfigBroadcast> = Arc::new(redis.invalidation.clone());
            services.strategy.set_broadcast(broadcast.clone());
            services.activity.set_broadcast(broadcast.clone());
            services.dcc.set_broadcast(broadcast);
            let subscription = Arc::new(tokio::sync::Mutex::new(subscription));
            let (strategy, activity, dcc) = (
                services.strategy.clone(),
                services.activity.clone(),
                services.dcc.clone(),
            );
            jobs.add("configuration follower", Stage::Work, move |stop| {
                jobs::follow_config_changes(
                    subscription.clone(),
                    strategy.clone(),
                    activity.clone(),
                    dcc.clone(),
                    stop,
                )
            });
        }
        let leadership = jobs::Leadership(services.redis.as_ref().map(|r| r.lock.clone()));
        {
            let (tasks, leadership) = (services.tasks.clone(), leadership.clone());
            let interval = Duration::from_secs(config.outbox.interval_secs);
            jobs.add("outbox compensation", Stage::Work, move |stop| {
                jobs::compensation(tasks.clone(), interval, leadership.clone(), stop)
            });
        }
        if let (Some(store), Some(_)) = (services.store.mysql(), &services.redis) {
            let rebuilder = store.clone();
            let store = store.clone();
            let interval = Duration::from_millis(config.redis.stock_writeback_ms);
            let bound = Duration::from_secs(config.redis.stock_reservation_secs);
            jobs.add("stock upkeep", Stage::Settle, move |stop| {
                jobs::stock_upkeep(store.clone(), interval, bound, leadership.clone(), stop)
            });
            jobs.add("stock rebuild", Stage::Work, move |stop| {
                jobs::stock_rebuild(rebuilder.clone(), stop)
            });
        }
        {
            let guard = services.guard.clone();
            jobs.add("housekeeping", Stage::Work, move |stop| {
                jobs::housekeeping(guard.clone(), stop)
            });
        }
        if let Some((bus, consumers)) = &services.amqp {
            let policy = ConsumerPolicy::from(&config.retry_policy());
            for (topic, consumer) in consumers.clone() {
                let (bus, policy) = (bus.clone(), policy.clone());
                jobs.add("RabbitMQ consumer", Stage::Work, move |stop| {
                    let (bus, policy, consumer) = (bus.clone(), policy.clone(), consumer.clone());
                    async move {
                        if let Err(e) = run_consumer(&bus, topic, consumer, policy, stop).await {
                            tracing::error!(%topic, error = %e, "RabbitMQ consumer stopped");
                        }
                    }
                });
            }
        }
        Ok(Self {
            listener,
            router,
            services,
            jobs: jobs.start(),
            shutdown_timeout: Duration::from_millis(config.shutdown_timeout_ms),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then stops in order: no new connections, the
    /// requests in flight answered (a draw that committed is reported), the background
    /// jobs stopped stage by stage (sends in flight confirmed, the last stock write-back),
    /// the broker connection closed. All of it within `shutdown_timeout_ms` after the
    /// signal; past it the error says what was cut off.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        let running = self.jobs;
        tracing::info!(%addr, "big-market listening");
        let (signalled, signal) = oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            let _ = signalled.send(());
        };
        let deadline = self.shutdown_timeout;
        let served = big_market_http::serve(self.listener, self.router, shutdown);
        tokio::pin!(served);
        // The deadline runs from the signal: a server that never drains is cut off too.
        let (served, signalled_at) = tokio::select! {
            result = &mut served => (result.map_err(anyhow::Error::from), tokio::time::Instant::now()),
            _ = signal => {
                let at = tokio::time::Instant::now();
                let result = match tokio::time::timeout(deadline, &mut served).await {
                    Ok(result) => result.map_err(anyhow::Error::from),
                    Err(_) => Err(anyhow::anyhow!("requests still in flight after {deadline:?}; cut off")),
                };
                (result, at)
            }
        };
        tracing::info!("no more requests; stopping the background jobs");
        let stopped = running
            .stop(deadline.saturating_sub(signalled_at.elapsed()))
            .await;
        if let Some((bus, _)) = &self.services.amqp {
            bus.close_publisher().await;
        }
        served?;
        stopped?;
        tracing::info!("big-market stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received");
}
