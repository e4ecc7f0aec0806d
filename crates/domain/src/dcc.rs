//! Dynamic configuration (upstream's DCC, spec §3.15): switches an operator flips at run
//! time without a restart.
//!
//! Values live in process (read on every draw, so they are atomics) and are written
//! through a [`DccRepository`] so they survive a restart (SQLite or MariaDB/MySQL). On
//! the production backend an update is announced to the other nodes
//! ([`crate::cluster`]), which [`DynamicConfig::reload`] the stored values.

use crate::cluster::{Broadcaster, Changed, ConfigBroadcast};
use crate::error::{Error, Result};
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};

/// The keys upstream binds with `@DCCValue`, with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DccKey {
    /// `open` → `activity/draw` answers `0004` at once.
    DegradeSwitch,
    /// `open` → per-user rate limit and block list on draws (`0005`).
    RateLimiterSwitch,
}

impl DccKey {
    pub const ALL: [DccKey; 2] = [DccKey::DegradeSwitch, DccKey::RateLimiterSwitch];

    pub fn name(self) -> &'static str {
        match self {
            DccKey::DegradeSwitch => "degradeSwitch",
            DccKey::RateLimiterSwitch => "rateLimiterSwitch",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                Error::illegal(format!(
                    "unknown dcc key {name:?}; known keys: degradeSwitch, rateLimiterSwitch"
                ))
            })
    }
}

/// A switch value: upstream compares with the strings `open` and `close`.
fn parse_switch(key: DccKey, value: &str) -> Result<bool> {
    match value {
        "open" => Ok(true),
        "close" => Ok(false),
        other => Err(Error::illegal(format!(
            "{} must be open or close, not {other:?}",
            key.name()
        ))),
    }
}

fn switch_text(open: bool) -> &'static str {
    if open { "open" } else { "close" }
}

/// Where values are kept across restarts.
#[async_trait]
pub trait DccRepository: Send + Sync {
    /// Every stored `(key, value)`.
    async fn load_dcc(&self) -> Result<Vec<(String, String)>>;
    async fn save_dcc(&self, key: &str, value: &str) -> Result<()>;
}

/// The switches as this process sees them.
pub struct DynamicConfig {
    repo: std::sync::Arc<dyn DccRepository>,
    degrade: AtomicBool,
    rate_limiter: AtomicBool,
    broadcast: Broadcaster,
}

impl DynamicConfig {
    /// Loads stored values over the defaults (both switches `close`). A stored value this
    /// version does not understand is ignored with a warning, never fatal.
    pub async fn load(repo: std::sync::Arc<dyn DccRepository>) -> Result<Self> {
        let config = Self {
            repo,
            degrade: AtomicBool::new(false),
            rate_limiter: AtomicBool::new(false),
            broadcast: Broadcaster::default(),
        };
        config.reload().await?;
        Ok(config)
    }

    /// Where updates are announced to the other nodes.
    pub fn set_broadcast(&self, broadcast: std::sync::Arc<dyn ConfigBroadcast>) {
        self.broadcast.set(broadcast);
    }

    /// Reads the stored values again (another node changed one).
    pub async fn reload(&self) -> Result<()> {
        for (key, value) in self.repo.load_dcc().await? {
            if let Err(e) = self.apply(&key, &value) {
                tracing::warn!(%key, %value, error = %e, "ignoring a stored dcc value");
            }
        }
        Ok(())
    }

    fn cell(&self, key: DccKey) -> &AtomicBool {
        match key {
            DccKey::DegradeSwitch => &self.degrade,
            DccKey::RateLimiterSwitch => &self.rate_limiter,
        }
    }

    /// Validates and applies in process only.
    fn apply(&self, key: &str, value: &str) -> Result<DccKey> {
        let key = DccKey::parse(key)?;
        let open = parse_switch(key, value.trim())?;
        self.cell(key).store(open, Ordering::Relaxed);
        Ok(key)
    }

    /// `dcc/update_config`: validates, persists, then takes effect at once.
    pub async fn update(&self, key: &str, value: &str) -> Result<()> {
        let parsed = DccKey::parse(key)?;
        let open = parse_switch(parsed, value.trim())?;
        self.repo.save_dcc(parsed.name(), switch_text(open)).await?;
        self.cell(parsed).store(open, Ordering::Relaxed);
        self.broadcast.changed(Changed::Dcc);
        tracing::info!(
            key = parsed.name(),
            value = switch_text(open),
            "dcc updated"
        );
        Ok(())
    }

    /// Every key with its current value.
    pub fn values(&self) -> Vec<(&'static str, &'static str)> {
        DccKey::ALL
            .into_iter()
            .map(|k| (k.name(), switch_text(self.is_open(k))))
            .collect()
    }

    pub fn is_open(&self, key: DccKey) -> bool {
        self.cell(key).load(Ordering::Relaxed)
    }

    pub fn degraded(&self) -> bool {
        self.is_open(DccKey::DegradeSwitch)
    }

    pub fn rate_limited(&self) -> bool {
        self.is_open(DccKey::RateLimiterSwitch)
    }
}

/// Values in memory only, for tests and tools.
#[derive(Default)]
pub struct MemoryDcc(std::sync::Mutex<Vec<(String, String)>>);

#[async_trait]
impl DccRepository for MemoryDcc {
    async fn load_dcc(&self) -> Result<Vec<(String, String)>> {
        Ok(self.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    async fn save_dcc(&self, key: &str, value: &str) -> Result<()> {
        let mut rows = self.0.lock().unwrap_or_else(|p| p.into_inner());
        rows.retain(|(k, _)| k != key);
        rows.push((key.to_owned(), value.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn switches_default_close_validate_and_persist() {
        let repo = Arc::new(MemoryDcc::default());
        let dcc = pollster::block_on(DynamicConfig::load(repo.clone())).unwrap();
        assert!(!dcc.degraded() && !dcc.rate_limited());
        pollster::block_on(dcc.update("degradeSwitch", "open")).unwrap();
        assert!(dcc.degraded());
        let e = pollster::block_on(dcc.update("degradeSwitch", "maybe")).unwrap_err();
        assert_eq!(e.code(), crate::ResponseCode::IllegalParameter);
        let e = pollster::block_on(dcc.update("blackListSwitch", "open")).unwrap_err();
        assert_eq!(e.code(), crate::ResponseCode::IllegalParameter);
        assert!(dcc.degraded(), "a refused update changes nothing");
        let reloaded = pollster::block_on(DynamicConfig::load(repo)).unwrap();
        assert!(reloaded.degraded() && !reloaded.rate_limited());
        assert_eq!(
            reloaded.values(),
            vec![("degradeSwitch", "open"), ("rateLimiterSwitch", "close")]
        );
    }
}
