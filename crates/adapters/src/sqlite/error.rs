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
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d,
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
