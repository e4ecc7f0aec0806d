//! `big-market`: the raffle platform in one binary.

use big_market::campaign_cli::CampaignCommand;
use big_market::config::{Config, LogFormat};
use big_market::{Application, Services, audit, shutdown_signal};
use big_market_domain::campaign::{CampaignKey, SimulationRequest};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

/// glibc's allocator spent about a fifth of the server's CPU under load (many small,
/// short-lived buffers across threads); mimalloc serves them from per-thread pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "big-market",
    version,
    about = "Marketing raffle platform (upstream-compatible big-market)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file (see docs/CONFIGURATION.md).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the embedded store.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve {
        #[command(flatten)]
        common: Common,
        /// Address to listen on, e.g. 127.0.0.1:8091.
        #[arg(long, value_name = "HOST:PORT")]
        addr: Option<String>,
    },
    /// Sample each strategy's tables and compare observed with configured odds.
    Audit {
        #[command(flatten)]
        common: Common,
        /// Only this strategy.
        #[arg(long)]
        strategy: Option<i64>,
        /// Draws per table.
        #[arg(long, default_value_t = 1_000_000)]
        samples: u64,
    },
    /// Create or upgrade the MariaDB/MySQL databases (config and user shards) named by
    /// `mysql_url` and `mysql_database`.
    Migrate {
        #[command(flatten)]
        common: Common,
        /// Also load upstream's sample configuration into an empty config database.
        #[arg(long)]
        sample_data: bool,
    },
    /// Plan a change of `mysql_db_count` × `mysql_tb_count`: print which users' rows move
    /// from which database and table to which (docs/SCALING.md has the procedure).
    Reshard {
        #[command(flatten)]
        common: Common,
        /// Print the plan (the only mode: moving rows is the documented procedure).
        #[arg(long)]
        plan: bool,
        /// The new number of user databases.
        #[arg(long)]
        db_count: u32,
        /// The new number of tables per user database.
        #[arg(long)]
        tb_count: u32,
    },
    /// Campaigns as documents: export, validate, simulate, apply, versions, rollback
    /// (docs/CAMPAIGNS.md), on the configured store.
    Campaign {
        #[command(flatten)]
        common: Common,
        #[command(subcommand)]
        action: CampaignAction,
    },
    /// Load-test `POST activity/draw` of a running service over HTTP.
    Bench {
        /// Base URL of the service; repeat it for several nodes of one deployment (the
        /// connections are spread over them in turn).
        #[arg(long = "url", default_value = "http://127.0.0.1:8091")]
        urls: Vec<String>,
        /// Requests kept in flight.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// Distinct users, each recharged once with --sku before the draws.
        #[arg(long, default_value_t = 2000)]
        users: usize,
        #[arg(long, default_value_t = 100301)]
        activity: i64,
        /// SKU recharged per user (9011 grants 150 draws a day).
        #[arg(long, default_value_t = 9011)]
        sku: i64,
        /// Stop after this many draws…
        #[arg(long, default_value_t = 200_000)]
        draws: u64,
        /// …or after this many seconds.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// First measure `GET /health` for this many seconds at the same connections and
        /// print draws/s as a ratio of it (0: no baseline).
        #[arg(long, default_value_t = 0, num_args = 0..=1, default_missing_value = "5")]
        baseline: u64,
        /// A process to report CPU per draw and resident memory for (repeatable: the
        /// server, mariadbd, redis-server, beam.smp…).
        #[arg(long = "pid")]
        pids: Vec<u32>,
        /// Seconds to wait after the load for the outbox to deliver every task.
        #[arg(long, default_value_t = 10)]
        drain: u64,
    },
    /// Check one provably fair draw: the proof from the service, the revealed seed
    /// against its commitment, and the draw recomputed here (docs/FAIRNESS.md).
    Verify {
        /// Base URL of the service.
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        url: String,
        #[arg(long)]
        activity_id: i64,
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        order_id: String,
    },
}

/// Which campaign: `--activity-id` or `--strategy-id`.
#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
struct Which {
    #[arg(long)]
    activity_id: Option<i64>,
    #[arg(long)]
    strategy_id: Option<i64>,
}

impl Which {
    fn key(&self) -> Option<CampaignKey> {
        match (self.activity_id, self.strategy_id) {
            (Some(a), _) => Some(CampaignKey::Activity(a)),
            (None, Some(s)) => Some(CampaignKey::Strategy(s)),
            (None, None) => None,
        }
    }
}

#[derive(Subcommand)]
enum CampaignAction {
    /// Print a campaign's document.
    Export {
        #[command(flatten)]
        which: Which,
    },
    /// Check a document (FILE, or - for stdin) against the store; exits 1 when invalid.
    Validate { file: PathBuf },
    /// Run the real draw on an in-memory copy of a document's (or a stored campaign's)
    /// stock; nothing is stored.
    Simulate {
        /// A document; else --activity-id or --strategy-id.
        file: Option<PathBuf>,
        #[arg(long)]
        activity_id: Option<i64>,
        #[arg(long)]
        strategy_id: Option<i64>,
        #[arg(long, default_value_t = 1000)]
        users: u32,
        #[arg(long, default_value_t = 100)]
        draws_per_user: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Validate, write in one transaction as a new version, and publish a document.
    Apply {
        file: PathBuf,
        /// Recorded with the version.
        #[arg(long, default_value = "local")]
        author: String,
    },
    /// List a campaign's versions, newest first.
    Versions {
        #[command(flatten)]
        which: Which,
    },
    /// Apply an old version again, as a new version.
    Rollback {
        #[command(flatten)]
        which: Which,
        #[arg(long)]
        version: i64,
        #[arg(long, default_value = "local")]
        author: String,
    },
}

fn load(common: &Common) -> anyhow::Result<Config> {
    let mut config = Config::load(common.config.as_deref())?;
    if let Some(dir) = &common.data_dir {
        config.embedded.data_dir = dir.clone();
    }
    Ok(config)
}

fn init_tracing(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log.filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log.format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { common, addr } => {
            let mut config = load(&common)?;
            if let Some(addr) = addr {
                config.http.addr = addr;
            }
            init_tracing(&config);
            let app = Application::build(config).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate {
            common,
            sample_data,
        } => {
            let config = load(&common)?;
            init_tracing(&config);
            let Some(mysql) = config.mysql() else {
                anyhow::bail!(
                    "migrate needs mysql_url (BIG_MARKET_MYSQL_URL=mysql://user@host:3306)"
                );
            };
            let sample = sample_data.then(big_market_domain::sample::SampleData::upstream);
            let report = big_market_adapters::mysql::migrate(&mysql, sample.as_ref()).await?;
            for line in &report.applied {
                println!("applied {line}");
            }
            println!(
                "{} migration(s) applied to {} and {} user database(s); sample data {}",
                report.applied.len(),
                mysql.database,
                mysql.db_count,
                if report.sample_loaded {
                    "loaded"
                } else {
                    "not loaded"
                }
            );
            Ok(())
        }
        Command::Reshard {
            common,
            plan,
            db_count,
            tb_count,
        } => {
            anyhow::ensure!(
                plan,
                "reshard moves no rows itself: run it with --plan and follow docs/SCALING.md"
            );
            let config = load(&common)?;
            init_tracing(&config);
            let Some(mysql) = config.mysql() else {
                anyhow::bail!(
                    "reshard needs mysql_url (BIG_MARKET_MYSQL_URL=mysql://user@host:3306)"
                );
            };
            use big_market_adapters::mysql::reshard;
            use big_market_adapters::router::Router;
            let old = mysql.validate()?;
            let new = Router::new(db_count, tb_count).map_err(|e| anyhow::anyhow!(e))?;
            let store = big_market_adapters::mysql::MysqlStore::connect(&mysql).await?;
            let users = store.user_ids(&mysql).await?;
            let place = |r: big_market_adapters::router::Route| {
                format!("{}{}", r.database(&mysql.database), r.suffix())
            };
            let moves = reshard::moves(&old, &new, users.iter().map(String::as_str));
            for m in &moves {
                println!("move {} {} -> {}", m.user_id, place(m.from), place(m.to));
            }
            println!(
                "{} x {} -> {db_count} x {tb_count}: {} of {} user(s) move",
                old.db_count(),
                old.tb_count(),
                moves.len(),
                users.len()
            );
            for ((from, to), n) in reshard::summary(&old, &new, users.iter().map(String::as_str)) {
                let what = if from == to { "stay in" } else { "move to" };
                println!("  {n:>8} from {} {what} {}", place(from), place(to));
            }
            Ok(())
        }
        Command::Audit {
            common,
            strategy,
            samples,
        } => {
            let config = load(&common)?;
            init_tracing(&config);
            let zone = jiff::tz::TimeZone::get(&config.time_zone)?;
            let clock = Arc::new(big_market_domain::time::SystemClock::new(zone));
            let services = Services::build(&config, clock).await?;
            let strategies = match strategy {
                Some(id) => vec![services.strategy.armory(id).await?],
                None => services
                    .strategy
                    .catalog()
                    .ids()
                    .into_iter()
                    .map(|id| services.strategy.catalog().get(id))
                    .collect::<Result<Vec<_>, _>>()?,
            };
            let tables = audit::run(&strategies, samples);
            print!("{}", audit::render(&tables));
            let deviating = tables.iter().filter(|t| t.p_value < 1e-6).count();
            anyhow::ensure!(
                deviating == 0,
                "{deviating} table(s) deviate from their configured odds"
            );
            Ok(())
        }
        Command::Campaign { common, action } => {
            let config = load(&common)?;
            init_tracing(&config);
            let zone = jiff::tz::TimeZone::get(&config.time_zone)?;
            let clock = Arc::new(big_market_domain::time::SystemClock::new(zone));
            let command = match action {
                CampaignAction::Export { which } => {
                    CampaignCommand::Export(which.key().expect("clap requires one"))
                }
                CampaignAction::Validate { file } => CampaignCommand::Validate(file),
                CampaignAction::Simulate {
                    file,
                    activity_id,
                    strategy_id,
                    users,
                    draws_per_user,
                    seed,
                } => CampaignCommand::Simulate {
                    key: Which {
                        activity_id,
                        strategy_id,
                    }
                    .key(),
                    file,
                    request: SimulationRequest {
                        users,
                        draws_per_user,
                        seed,
                    },
                },
                CampaignAction::Apply { file, author } => CampaignCommand::Apply { file, author },
                CampaignAction::Versions { which } => {
                    CampaignCommand::Versions(which.key().expect("clap requires one"))
                }
                CampaignAction::Rollback {
                    which,
                    version,
                    author,
                } => CampaignCommand::Rollback {
                    key: which.key().expect("clap requires one"),
                    version,
                    author,
                },
            };
            let services = Services::build(&config, clock).await?;
            big_market::campaign_cli::run(&services, command).await
        }
        Command::Bench {
            urls,
            connections,
            users,
            activity,
            sku,
            draws,
            seconds,
            baseline,
            pids,
            drain,
        } => {
            let report = big_market::bench::run(big_market::bench::BenchOptions {
                urls,
                connections: connections.max(1),
                users: users.max(1),
                activity_id: activity,
                sku,
                draws,
                duration: std::time::Duration::from_secs(seconds),
                baseline: (baseline > 0).then(|| std::time::Duration::from_secs(baseline)),
                pids,
                drain: std::time::Duration::from_secs(drain),
            })
            .await?;
            println!("{report}");
            Ok(())
        }
        Command::Verify {
            url,
            activity_id,
            user_id,
            order_id,
        } => {
            let report = big_market::verify::run(big_market::verify::VerifyOptions {
                url,
                activity_id,
                user_id,
                order_id,
            })
            .await?;
            println!("{report}");
            anyhow::ensure!(report.verified(), "the draw is not verified");
            Ok(())
        }
    }
}
