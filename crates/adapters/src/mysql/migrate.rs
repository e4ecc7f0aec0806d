//! `big-market migrate`: creates the config and user databases and brings their tables
//! to the current version, from the migration files under `migrations/mysql/`.
//!
//! Each database records the versions applied to it in `big_market_migrations`, so a run
//! applies only what is new. `0001` creates upstream's tables where missing (a database
//! made from upstream's own dump is taken as it is); later files are our additive
//! changes. A statement naming `{t}` runs once per table suffix.

use super::{MysqlError, MysqlOptions, seed};
use big_market_domain::sample::SampleData;
use sqlx::{Connection, Executor, MySqlConnection};

/// One migration file.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
    /// A count query, given the database's name as its parameter; when it answers more
    /// than 0, the statements are not needed (MySQL has no `ADD … IF NOT EXISTS` for keys) and only the version is
    /// recorded.
    skip_if: Option<&'static str>,
}

const CONFIG: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/mysql/config/0001_init.sql"),
        skip_if: None,
    },
    Migration {
        version: 2,
        name: "dcc_config",
        sql: include_str!("../../migrations/mysql/config/0002_dcc_config.sql"),
        skip_if: None,
    },
    Migration {
        version: 3,
        name: "campaign_version",
        sql: include_str!("../../migrations/mysql/config/0003_campaign_version.sql"),
        skip_if: None,
    },
    Migration {
        version: 4,
        name: "fairness",
        sql: include_str!("../../migrations/mysql/config/0004_fairness.sql"),
        skip_if: None,
    },
    Migration {
        version: 5,
        name: "stock_baseline",
        sql: include_str!("../../migrations/mysql/config/0005_stock_baseline.sql"),
        skip_if: None,
    },
];

const USER: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../../migrations/mysql/user/0001_init.sql"),
        skip_if: None,
    },
    Migration {
        version: 2,
        name: "outbox",
        sql: include_str!("../../migrations/mysql/user/0002_outbox.sql"),
        skip_if: None,
    },
    Migration {
        version: 3,
        name: "task_millis",
        sql: include_str!("../../migrations/mysql/user/0003_task_millis.sql"),
        skip_if: None,
    },
    Migration {
        version: 4,
        name: "credit_account_unique",
        sql: include_str!("../../migrations/mysql/user/0004_credit_account_unique.sql"),
        skip_if: Some(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = ?
             AND table_name = 'user_credit_account' AND index_name = 'uq_user_id'",
        ),
    },
    Migration {
        version: 5,
        name: "raffle_order_state_index",
        sql: include_str!("../../migrations/mysql/user/0005_raffle_order_state_index.sql"),
        skip_if: None,
    },
    Migration {
        version: 6,
        name: "award_proof",
        sql: include_str!("../../migrations/mysql/user/0006_award_proof.sql"),
        skip_if: None,
    },
    Migration {
        version: 7,
        name: "award_stock_units",
        sql: include_str!("../../migrations/mysql/user/0007_award_stock_units.sql"),
        skip_if: None,
    },
];

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// `database: NNNN_name` for every migration applied by this run.
    pub applied: Vec<String>,
    /// Whether the sample configuration was loaded (only into an empty config database).
    pub sample_loaded: bool,
}

/// Opens one connection to the config server (no database selected), failing fast with
/// the server's address when it cannot be reached.
pub async fn connect(options: &MysqlOptions) -> Result<MySqlConnection, MysqlError> {
    connect_to(options, &options.url).await
}

/// As [`connect`], to the server of `url`.
pub async fn connect_to(options: &MysqlOptions, url: &str) -> Result<MySqlConnection, MysqlError> {
    let unreachable = |source| MysqlError::Unreachable {
        server: super::server_of(url),
        source,
    };
    tokio::time::timeout(options.connect_timeout, MySqlConnection::connect(url))
        .await
        .map_err(|_| unreachable(sqlx::Error::PoolTimedOut))?
        .map_err(unreachable)
}

/// Creates missing databases, applies new migrations to each, and loads `sample` into
/// the config database if it holds no strategy yet.
pub async fn migrate(
    options: &MysqlOptions,
    sample: Option<&SampleData>,
) -> Result<MigrateReport, MysqlError> {
    options.validate()?;
    let mut report = MigrateReport::default();
    let suffixes = options.table_suffixes();
    // Every server first answers, so a wrong address changes nothing anywhere.
    let mut conns = Vec::new();
    for (url, dbs) in options.servers() {
        conns.push((connect_to(options, &url).await?, dbs));
    }
    for (i, (conn, dbs)) in conns.iter_mut().enumerate() {
        if i == 0 {
            apply(conn, &options.database, CONFIG, &suffixes, &mut report).await?;
        }
        for db in dbs.iter() {
            apply(conn, db, USER, &suffixes, &mut report).await?;
        }
    }
    let mut conn = connect(options).await?;
    if let Some(sample) = sample {
        report.sample_loaded = seed::load_if_empty(&mut conn, &options.database, sample).await?;
    }
    Ok(report)
}

/// Drops the config and user databases of `options` on every server (tests and
/// throw-away setups).
pub async fn drop_databases(options: &MysqlOptions) -> Result<(), MysqlError> {
    options.validate()?;
    for (i, (url, dbs)) in options.servers().into_iter().enumerate() {
        let mut conn = connect_to(options, &url).await?;
        let config = (i == 0).then(|| options.database.clone());
        for db in config.into_iter().chain(dbs) {
            conn.execute(sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS `{db}`")))
                .await?;
        }
    }
    Ok(())
}

/// Creates the databases from upstream's own MySQL dumps in `dir` (`big_market.sql`,
/// `big_market_01.sql`, …) under `options`' names: the config database with its rows,
/// the user databases with their tables only (their demo rows are left out). MySQL 8's
/// `utf8mb4_0900_ai_ci` is mapped to `utf8mb4_general_ci`, which MariaDB has. Run
/// [`migrate`] afterwards to add our changes. (Compatibility tests, and moving from the
/// Java service.)
pub async fn load_upstream_dumps(
    options: &MysqlOptions,
    dir: &std::path::Path,
) -> Result<(), MysqlError> {
    options.validate()?;
    let mut conn = connect(options).await?;
    let mut files = vec![("big_market".to_owned(), true)];
    files.extend((1..=options.db_count).map(|n| (format!("big_market_{n:02}"), false)));
    for (name, keep_rows) in files {
        let path = dir.join(format!("{name}.sql"));
        let dump = std::fs::read_to_string(&path)
            .map_err(|e| MysqlError::Dump(format!("reading {}: {e}", path.display())))?;
        let sql = rewrite_dump(&dump, &options.database, keep_rows);
        conn.execute(sqlx::raw_sql(&sql)).await?;
    }
    Ok(())
}

/// A dump with its databases renamed after `database`, the collation mapped, and,
/// unless `keep_rows`, without its `INSERT` statements.
pub fn rewrite_dump(dump: &str, database: &str, keep_rows: bool) -> String {
    let mut sql = dump.replace("utf8mb4_0900_ai_ci", "utf8mb4_general_ci");
    // Longest names first, so `big_market` does not rewrite `big_market_01`'s prefix.
    for n in (1..=99).rev() {
        let from = format!("`big_market_{n:02}`");
        if sql.contains(&from) {
            sql = sql.replace(&from, &format!("`{database}_{n:02}`"));
        }
    }
    sql = sql.replace("`big_market`", &format!("`{database}`"));
    if !keep_rows {
        sql = sql
            .split(";\n")
            .filter(|s| !s.trim_start().starts_with("INSERT INTO"))
            .collect::<Vec<_>>()
            .join(";\n");
    }
    sql
}

async fn apply(
    conn: &mut MySqlConnection,
    database: &str,
    migrations: &[Migration],
    suffixes: &[String],
    report: &mut MigrateReport,
) -> Result<(), MysqlError> {
    conn.execute(sqlx::raw_sql(&format!(
        "CREATE DATABASE IF NOT EXISTS `{database}` DEFAULT CHARACTER SET utf8mb4"
    )))
    .await?;
    conn.execute(sqlx::raw_sql(&format!("USE `{database}`")))
        .await?;
    conn.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS `big_market_migrations` (
           `version` int NOT NULL PRIMARY KEY,
           `name` varchar(64) NOT NULL,
           `applied_time` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ))
    .await?;
    // Prepared statements are cached per connection and keep the database they were
    // prepared in, so they name it rather than rely on `USE`.
    let applied: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM `{database}`.big_market_migrations"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for m in migrations.iter().filter(|m| !applied.contains(&m.version)) {
        let label = format!("{:04}_{}", m.version, m.name);
        let skip = match m.skip_if {
            Some(query) => {
                sqlx::query_scalar::<_, i64>(query)
                    .bind(database)
                    .fetch_one(&mut *conn)
                    .await?
                    > 0
            }
            None => false,
        };
        let run = if skip {
            Vec::new()
        } else {
            statements(m.sql, suffixes)
        };
        for statement in run {
            conn.execute(sqlx::raw_sql(&statement))
                .await
                .map_err(|source| MysqlError::Migration {
                    database: database.to_owned(),
                    migration: label.clone(),
                    statement: statement.chars().take(120).collect(),
                    source,
                })?;
        }
        sqlx::query(&format!(
            "INSERT INTO `{database}`.big_market_migrations (version, name) VALUES (?, ?)"
        ))
        .bind(m.version)
        .bind(m.name)
        .execute(&mut *conn)
        .await?;
        tracing::info!(%database, migration = %label, "migration applied");
        report.applied.push(format!("{database}: {label}"));
    }
    Ok(())
}

/// The statements of a migration file: `--` comment lines dropped, split at a `;` that
/// ends a line, and a statement naming `{t}` repeated for each table suffix.
fn statements(sql: &str, suffixes: &[String]) -> Vec<String> {
    let text: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for statement in text.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
        let statement = statement.trim_end_matches(';');
        if statement.contains("{t}") {
            out.extend(suffixes.iter().map(|t| statement.replace("{t}", t)));
        } else {
            out.push(statement.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_and_repeat_per_table() {
        let sql = "-- a comment\nCREATE TABLE a (x int);\n\nCREATE TABLE b{t} (\n  y int COMMENT 'p;q'\n);\n";
        let got = statements(sql, &["_000".into(), "_001".into()]);
        assert_eq!(
            got,
            vec![
                "CREATE TABLE a (x int)",
                "CREATE TABLE b_000 (\n  y int COMMENT 'p;q'\n)",
                "CREATE TABLE b_001 (\n  y int COMMENT 'p;q'\n)",
            ]
        );
    }

    #[test]
    fn every_migration_file_has_statements() {
        for m in CONFIG.iter().chain(USER) {
            assert!(
                !statements(m.sql, &["_000".into()]).is_empty(),
                "{}",
                m.name
            );
        }
    }
}
