use big_market_domain::Error;

/// Failures of the embedded store. Business outcomes raised inside a transaction travel
/// as `Domain` and come out unchanged; everything else becomes an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Domain(#[from] Error),
    #[error("stored value is not valid: {0}")]
    Corrupt(String),
    #[error("store i/o: {0}")]
    Io(String),
    #[error("the store's writer has stopped")]
    Closed,
    /// A transaction reached the writer after its caller's deadline and was not run.
    #[error("the transaction's deadline passed before it could start")]
    Expired,
    /// The store could not grow (`SQLITE_FULL`: the disk, or `max_size_mb`); the
    /// transaction was rolled back.
    #[error("the store is full: {0}")]
    Full(String),
}

impl StoreError {
    /// Whether the store refused the write for want of space, however the failure was
    /// carried (SQLite's own error, or a domain error made from it inside a transaction).
    pub fn is_full(&self) -> bool {
        match self {
            StoreError::Full(_) => true,
            StoreError::Sqlite(e) => is_full(e),
            StoreError::Domain(e) => e.code() == big_market_domain::ResponseCode::StoreFull,
            _ => false,
        }
    }
}

/// True when SQLite could not allocate space (`SQLITE_FULL`).
pub fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

/// What a user is told when the store is full: the one place this text is written.
pub fn store_full() -> Error {
    Error::biz(
        big_market_domain::ResponseCode::StoreFull,
        "the store has no space left (disk full or its size limit reached); \
         nothing was taken, try again later",
    )
}

/// Logs that the store is full, at most once every ten seconds: every refused write
/// meets it, and the log may be on the same full disk.
fn log_full(reason: &dyn std::fmt::Display) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::error!(%reason, "the embedded store is full: writes are refused until space returns");
    }
}

/// A SQLite failure as a domain error: `SQLITE_FULL` becomes [`store_full`], anything
/// else an internal error.
pub fn sqlite_error(e: rusqlite::Error) -> Error {
    if is_full(&e) {
        log_full(&e);
        store_full()
    } else {
        Error::internal(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d,
            StoreError::Full(reason) => {
                log_full(&reason);
                store_full()
            }
            StoreError::Sqlite(e) => sqlite_error(e),
            StoreError::Expired => Error::biz(
                big_market_domain::ResponseCode::Hystrix,
                "the store did not start the draw before its deadline; nothing was taken",
            ),
            other => Error::internal(other),
        }
    }
}

/// True when `e` is a violation of a UNIQUE index (the idempotency keys).
pub fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
