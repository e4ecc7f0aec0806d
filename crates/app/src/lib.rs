//! The big-market application: configuration, wiring of backends and services, and the
//! server's life cycle. `main.rs` only parses the command line.

pub mod audit;
pub mod bench;
pub mod config;

use anyhow::Context;
use big_market_adapters::sqlite::{SqliteOptions, SqliteStore};
use big_market_domain::activity::ActivityService;
use big_market_domain::sample::SampleData;
use big_market_domain::strategy::StrategyService;
use big_market_domain::time::{Clock, SystemClock};
use big_market_http::{AppState, HttpOptions};
use config::Config;
use std::sync::Arc;

/// File name of the embedded store inside the data directory.
pub const DB_FILE: &str = "big-market.db";

/// The wired services of one process.
pub struct Services {
    pub store: SqliteStore,
    pub strategy: Arc<StrategyService>,
    pub activity: Arc<ActivityService>,
    pub clock: Arc<dyn Clock>,
}

impl Services {
    /// Opens the store (migrating it, loading the sample into a fresh one) and assembles
    /// every strategy.
    pub async fn build(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let path = config.data_dir.join(DB_FILE);
        let store = SqliteStore::open(
            &path,
            SqliteOptions {
                max_batch: config.sqlite_max_batch,
                synchronous: config.sqlite_synchronous.clone(),
            },
        )
        .with_context(|| format!("opening the embedded store {}", path.display()))?;
        if config.sample_data {
            let sample = SampleData::upstream().with_open_activities(clock.now().datetime());
            if store.load_sample_if_fresh(sample).await? {
                tracing::info!(path = %path.display(), "fresh store: loaded upstream's sample configuration");
            }
        }
        let strategy = Arc::new(StrategyService::new(Arc::new(store.clone()), clock.clone()));
        let failures = strategy.armory_all().await?;
        tracing::info!(
            assembled = strategy.catalog().ids().len(),
            failed = failures.len(),
            "strategy armory done"
        );
        let activity = Arc::new(ActivityService::new(
            Arc::new(store.clone()),
            strategy.clone(),
            clock.clone(),
        ));
        activity.armory_all().await?;
        Ok(Self {
            store,
            strategy,
            activity,
            clock,
        })
    }
}

/// A built server, bound but not yet serving (tests read the port first).
pub struct Application {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    pub services: Services,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let zone = jiff::tz::TimeZone::get(&config.time_zone)?;
        Self::build_with_clock(config, Arc::new(SystemClock::new(zone))).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let services = Services::build(&config, clock).await?;
        let listener = tokio::net::TcpListener::bind(&config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let router = big_market_http::router(
            AppState {
                strategy: services.strategy.clone(),
                activity: services.activity.clone(),
            },
            &HttpOptions {
                cors_origins: config.cors_origins.clone(),
            },
        );
        Ok(Self {
            listener,
            router,
            services,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.listener.local_addr()?;
        tracing::info!(%addr, "big-market listening");
        big_market_http::serve(self.listener, self.router, shutdown).await?;
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
