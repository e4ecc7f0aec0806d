//! The embedded backend: one SQLite file holding upstream's tables.
//!
//! All writes go through one writer thread ([`writer`]) that groups concurrent
//! transactions into one commit: each caller's work runs in its own savepoint, so one
//! failure rolls back only its own changes, and one fsync makes the whole group durable
//! before any caller is answered. Single-writer also makes stock exact without locks:
//! `UPDATE … WHERE surplus > 0` statements run one after another.
//!
//! Reads that need no transaction use a small pool of read-only connections (WAL lets
//! them run beside the writer).

mod activity;
mod award;
mod campaign;
mod erp;
mod error;
mod fairness;
mod seed;
mod strategy;
mod writer;

pub use error::StoreError;

use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use writer::Writer;

/// Migration files, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        "0002_outbox",
        include_str!("../../migrations/sqlite/0002_outbox.sql"),
    ),
    (
        "0003_dcc_config",
        include_str!("../../migrations/sqlite/0003_dcc_config.sql"),
    ),
    (
        "0004_campaign_version",
        include_str!("../../migrations/sqlite/0004_campaign_version.sql"),
    ),
    (
        "0005_fairness",
        include_str!("../../migrations/sqlite/0005_fairness.sql"),
    ),
];

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most transactions committed together in one group.
    pub max_batch: usize,
    /// `PRAGMA synchronous`: `FULL` makes every commit durable before it is answered.
    pub synchronous: String,
    /// Deliver credit prizes in the draw's own transaction (when delivery runs in this
    /// process: no broker carries `send_award` to other consumers). Saves the writer two
    /// transactions per such draw; the rows are those of a delivered message.
    pub credit_in_draw: bool,
    /// Largest size of the store file in MiB (`PRAGMA max_page_count` of the writer);
    /// writes past it are refused as on a full disk (`ERR_STORE_001`), keeping the
    /// disk's last space for the WAL and the logs. `None`: the disk is the limit.
    pub max_size_mb: Option<u64>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_batch: 256,
            synchronous: "FULL".into(),
            credit_in_draw: false,
            max_size_mb: None,
        }
    }
}

/// Handle to the embedded store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    credit_in_draw: bool,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
}

fn configure(conn: &Connection, synchronous: &str) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // A draw and a delivery use about thirty distinct statements; rusqlite keeps 16 by
    // default, so the writer would prepare most of them again on every draw.
    conn.set_prepared_statement_cache_capacity(256);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Savepoint sub-journals in memory, not in temporary files.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -65536)?;
    // Checkpoints run on their own thread (see `checkpointer`); the writer only steps in
    // if the WAL grows very large.
    conn.pragma_update(None, "wal_autocheckpoint", 50_000)?;
    Ok(())
}

/// Copies the WAL into the database file every second on its own connection, so the
/// writer thread never pays for it. `PASSIVE` never blocks the writer or readers.
fn checkpointer(path: PathBuf, alive: std::sync::Weak<Inner>) {
    let conn = match Connection::open(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "checkpointer could not open the store; the writer checkpoints instead");
            return;
        }
    };
    let _ = conn.busy_timeout(std::time::Duration::from_millis(100));
    while alive.strong_count() > 0 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }
}

fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut ran = 0;
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
        tracing::info!(migration = name, "applied migration");
        ran += 1;
    }
    Ok(ran)
}

impl SqliteStore {
    /// Opens (creating if needed) `path`, applies pending migrations and starts the writer.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io(format!("create {}: {e}", dir.display())))?;
        }
        probe_writable(path)?;
        let mut conn = Connection::open(path)?;
        configure(&conn, &options.synchronous)?;
        migrate(&mut conn)?;
        if let Some(mb) = options.max_size_mb {
            let page: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let wanted = (mb * 1024 * 1024 / page.max(1)).max(1);
            // SQLite never sets the limit below the pages already used.
            let set: u64 =
                conn.query_row(&format!("PRAGMA max_page_count = {wanted}"), [], |r| {
                    r.get(0)
                })?;
            if set > wanted {
                tracing::warn!(path = %path.display(), max_size_mb = mb, "the store is already larger than its size limit; writes that need space are refused");
            }
        }
        // `FULL`: the writer commits without waiting for the disk and the sync thread
        // syncs the WAL before anyone is answered (the same promise, made off the writer).
        let wal = if options.synchronous.eq_ignore_ascii_case("FULL") {
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            Some(PathBuf::from(wal))
        } else {
            None
        };
        let writer = Writer::start(conn, options.max_batch, wal)?;
        let inner = Arc::new(Inner {
            writer,
            credit_in_draw: options.credit_in_draw,
            path: path.to_owned(),
            readers: Mutex::new(Vec::new()),
        });
        let (alive, ckpt_path) = (Arc::downgrade(&inner), path.to_owned());
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpointer(ckpt_path, alive))
            .map_err(|e| StoreError::Io(format!("start checkpoint thread: {e}")))?;
        Ok(Self { inner })
    }

    /// Runs `f` in the next group commit; its result is returned only once the group is
    /// durable. An `Err` from `f` rolls back `f`'s changes only.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.submit(None, f).await
    }

    /// As [`SqliteStore::write`], but the writer refuses to start `f` after `deadline`
    /// (`StoreError::Expired`); once started, `f` is answered however late.
    pub async fn write_by<T, F>(
        &self,
        deadline: Option<std::time::Instant>,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.submit(deadline, f).await
    }

    /// Stops the writer after the transactions already sent; later writes fail and
    /// `/ready` reports the store down. Used at shutdown and by tests.
    pub fn close(&self) {
        self.inner.writer.close();
    }

    /// Runs `f` on a read-only connection, off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
            {
                Some(c) => c,
                None => {
                    let c = Connection::open(&inner.path)?;
                    c.busy_timeout(std::time::Duration::from_secs(5))?;
                    c.set_prepared_statement_cache_capacity(256);
                    c.pragma_update(None, "query_only", "ON")?;
                    c
                }
            };
            let result = f(&conn);
            inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Io(format!("read task failed: {e}")))?
    }
}

/// Fails with a message naming the path when the store cannot be written: a read-only
/// directory (SQLite needs to create its `-wal` and `-shm` files there) or a read-only
/// store file would otherwise start a server whose every draw fails. Probes with real
/// writes, since permission bits do not stop root (a read-only mount or an immutable
/// file does).
fn probe_writable(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let probe = dir.join(".big-market-write-probe");
    let written = std::fs::write(&probe, b"probe");
    let _ = std::fs::remove_file(&probe);
    written.map_err(|e| {
        StoreError::Io(format!(
            "the data directory {} is not writable ({e}); the embedded store needs to \
             create files there",
            dir.display()
        ))
    })?;
    match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Io(format!(
            "the store file {} is not writable ({e})",
            path.display()
        ))),
    }
}

/// Reads a TEXT decimal column.
fn decimal(s: &str) -> Result<rust_decimal::Decimal, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{s:?} is not a decimal")))
}

/// Reads a TEXT local date-time column.
fn datetime(s: &str) -> Result<jiff::civil::DateTime, StoreError> {
    big_market_domain::time::parse_datetime(s)
        .map_err(|_| StoreError::Corrupt(format!("{s:?} is not a datetime")))
}
