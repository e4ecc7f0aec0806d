//! The draw's guards (spec §3.9 step 0): degrade switch (`0004`), per-user rate limit with
//! a block list (`0005`), and a circuit breaker over the store (`0006`).
//!
//! Time comes from the injected [`Clock`], so tests move it instead of sleeping. The
//! per-request deadline itself is monotonic time and is enforced where the work runs
//! (the handler bounds the reads, the store's writer refuses a late transaction).

use crate::ResponseCode;
use crate::dcc::DynamicConfig;
use crate::error::{Error, Result};
use crate::time::Clock;
use async_trait::async_trait;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tuning of the guards. Defaults are upstream's (1 draw/s, blocked for 24 h after more
/// than 1 rejection, Hystrix 150 ms).
#[derive(Debug, Clone)]
pub struct GuardOptions {
    pub permits_per_second: u32,
    /// A user rejected more than this many times within `block_window` is blocked.
    pub blacklist_count: u32,
    /// How long a block lasts; it restarts on every rejection (upstream's cache
    /// expire-after-write).
    pub block_window: Duration,
    pub draw_timeout: Duration,
    /// Consecutive timeouts or store failures that open the breaker.
    pub breaker_threshold: u32,
    /// How long the open breaker answers `0006` before letting one probe through.
    pub breaker_cooldown: Duration,
}

impl Default for GuardOptions {
    fn default() -> Self {
        Self {
            permits_per_second: 1,
            blacklist_count: 1,
            block_window: Duration::from_secs(24 * 3600),
            draw_timeout: Duration::from_millis(150),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(5),
        }
    }
}

fn plus(now: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Users refused by the rate limiter, counted per window. In process on the embedded
/// backend; shared by every node through Redis on the production backend.
#[async_trait]
pub trait BlockList: Send + Sync {
    /// Rejections of `user_id` still inside their window.
    async fn rejections(&self, user_id: &str, now: Timestamp) -> Result<u32>;
    /// Counts one more rejection and restarts the window; returns the new count.
    async fn reject(&self, user_id: &str, now: Timestamp, window: Duration) -> Result<u32>;
    /// Forgets expired entries.
    fn purge(&self, now: Timestamp);
}

/// The embedded backend's block list.
#[derive(Default)]
pub struct MemoryBlockList(Mutex<HashMap<String, (u32, Timestamp)>>);

#[async_trait]
impl BlockList for MemoryBlockList {
    async fn rejections(&self, user_id: &str, now: Timestamp) -> Result<u32> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .get(user_id)
            .filter(|(_, expires)| *expires > now)
            .map_or(0, |(n, _)| *n))
    }

    async fn reject(&self, user_id: &str, now: Timestamp, window: Duration) -> Result<u32> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(user_id.to_owned()).or_insert((0, now));
        if entry.1 <= now {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = plus(now, window);
        Ok(entry.0)
    }

    fn purge(&self, now: Timestamp) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, expires)| *expires > now);
    }
}

/// The domain clock as governor's clock, so the limiter follows an injected clock.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let ns = self.0.now().timestamp().as_nanosecond();
        Nanos::from(u64::try_from(ns).unwrap_or(0))
    }
}

type UserLimiter = RateLimiter<
    String,
    HashMapStateStore<String>,
    LimiterClock,
    governor::middleware::NoOpMiddleware<Nanos>,
>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BreakerState {
    Closed {
        failures: u32,
    },
    Open {
        until: Timestamp,
    },
    /// One probe is in flight since `since`; if it never reports, another may start
    /// after a cool-down.
    HalfOpen {
        since: Timestamp,
    },
}

/// A circuit breaker: after `threshold` consecutive failures it answers `0006` at once
/// for `cooldown`, then lets one probe through; the probe's outcome closes or reopens it.
pub struct Breaker {
    state: Mutex<BreakerState>,
    threshold: u32,
    cooldown: Duration,
}

/// Whether a request may go on, and whether it is the half-open probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    probe: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            state: Mutex::new(BreakerState::Closed { failures: 0 }),
            threshold: threshold.max(1),
            cooldown,
        }
    }

    pub fn acquire(&self, now: Timestamp) -> Result<Admission> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match *state {
            BreakerState::Closed { .. } => Ok(Admission { probe: false }),
            BreakerState::Open { until } if now >= until => {
                *state = BreakerState::HalfOpen { since: now };
                Ok(Admission { probe: true })
            }
            BreakerState::HalfOpen { since } if now >= plus(since, self.cooldown) => {
                *state = BreakerState::HalfOpen { since: now };
                Ok(Admission { probe: true })
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => Err(Error::biz(
                ResponseCode::Hystrix,
                "the store is slow or failing; draws are paused for a moment",
            )),
        }
    }

    /// Reports how an admitted request ended (`ok`: the store answered in time).
    pub fn record(&self, admission: Admission, ok: bool, now: Timestamp) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        *state = match (*state, ok) {
            (BreakerState::Closed { .. }, true) => BreakerState::Closed { failures: 0 },
            (BreakerState::Closed { failures }, false) if failures + 1 >= self.threshold => {
                tracing::warn!(failures = failures + 1, "circuit breaker opened");
                BreakerState::Open {
                    until: plus(now, self.cooldown),
                }
            }
            (BreakerState::Closed { failures }, false) => BreakerState::Closed {
                failures: failures + 1,
            },
            (BreakerState::HalfOpen { .. }, true) if admission.probe => {
                tracing::info!("circuit breaker closed");
                BreakerState::Closed { failures: 0 }
            }
            (BreakerState::HalfOpen { .. }, false) if admission.probe => BreakerState::Open {
                until: plus(now, self.cooldown),
            },
            // Late answers of requests admitted before the breaker opened change nothing.
            (other, _) => other,
        };
    }

    pub fn is_open(&self) -> bool {
        !matches!(
            *self.state.lock().unwrap_or_else(|p| p.into_inner()),
            BreakerState::Closed { .. }
        )
    }
}

/// Whether an outcome says the store is unhealthy (a missed deadline or an internal
/// failure); business refusals mean it answered fine.
pub fn is_store_failure(e: &Error) -> bool {
    matches!(e, Error::Internal(_)) || e.code() == ResponseCode::Hystrix
}

/// The guards of `activity/draw`, in upstream's order after the parameter check:
/// degrade, rate limit, then the breaker.
pub struct DrawGuard {
    dcc: Arc<DynamicConfig>,
    limiter: UserLimiter,
    blocks: Arc<dyn BlockList>,
    breaker: Breaker,
    clock: Arc<dyn Clock>,
    options: GuardOptions,
}

impl DrawGuard {
    pub fn new(
        dcc: Arc<DynamicConfig>,
        blocks: Arc<dyn BlockList>,
        clock: Arc<dyn Clock>,
        options: GuardOptions,
    ) -> Self {
        let per_second = NonZeroU32::new(options.permits_per_second).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::hashmap_with_clock(
            Quota::per_second(per_second),
            LimiterClock(clock.clone()),
        );
        Self {
            dcc,
            limiter,
            blocks,
            breaker: Breaker::new(options.breaker_threshold, options.breaker_cooldown),
            clock,
            options,
        }
    }

    pub fn draw_timeout(&self) -> Duration {
        self.options.draw_timeout
    }

    /// Runs the guards for one draw of `user_id`.
    pub async fn admit(&self, user_id: &str) -> Result<Admission> {
        if self.dcc.degraded() {
            return Err(Error::biz(
                ResponseCode::DegradeSwitch,
                "draws are switched off (degradeSwitch=open)",
            ));
        }
        if self.dcc.rate_limited() {
            self.rate_limit(user_id).await?;
        }
        self.breaker.acquire(self.clock.now().timestamp())
    }

    async fn rate_limit(&self, user_id: &str) -> Result<()> {
        let now = self.clock.now().timestamp();
        if self.blocks.rejections(user_id, now).await? > self.options.blacklist_count {
            return Err(Error::biz(
                ResponseCode::RateLimiter,
                "this user is blocked for drawing too fast",
            ));
        }
        if self.limiter.check_key(&user_id.to_owned()).is_err() {
            self.blocks
                .reject(user_id, now, self.options.block_window)
                .await?;
            return Err(Error::biz(
                ResponseCode::RateLimiter,
                format!(
                    "at most {} draws per second",
                    self.options.permits_per_second
                ),
            ));
        }
        Ok(())
    }

    /// Reports how an admitted draw ended, for the breaker.
    pub fn finish<T>(&self, admission: Admission, outcome: &Result<T>) {
        let ok = match outcome {
            Ok(_) => true,
            Err(e) => !is_store_failure(e),
        };
        self.breaker
            .record(admission, ok, self.clock.now().timestamp());
    }

    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Drops limiter and block-list state nobody needs any more (run periodically).
    pub fn housekeeping(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.blocks.purge(self.clock.now().timestamp());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcc::MemoryDcc;
    use crate::time::FixedClock;

    fn at(ts: &str) -> jiff::Zoned {
        ts.parse::<Timestamp>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
    }

    fn guard(clock: Arc<FixedClock>) -> (DrawGuard, Arc<DynamicConfig>) {
        let dcc = Arc::new(
            pollster::block_on(DynamicConfig::load(Arc::new(MemoryDcc::default()))).unwrap(),
        );
        let options = GuardOptions {
            block_window: Duration::from_secs(60),
            breaker_threshold: 2,
            breaker_cooldown: Duration::from_secs(5),
            ..GuardOptions::default()
        };
        let g = DrawGuard::new(
            dcc.clone(),
            Arc::new(MemoryBlockList::default()),
            clock,
            options,
        );
        (g, dcc)
    }

    fn code<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
        r.map_or_else(|e| e.code().code(), |_| "0000")
    }

    #[test]
    fn rate_limit_blocks_after_more_than_one_rejection() {
        let clock = Arc::new(FixedClock::new(at("2026-01-01T00:00:00Z")));
        let (g, dcc) = guard(clock.clone());
        let admit = |u: &str| code(pollster::block_on(g.admit(u)));
        assert_eq!(admit("a"), "0000");
        assert_eq!(admit("a"), "0000", "switch closed: no limit");
        pollster::block_on(dcc.update("rateLimiterSwitch", "open")).unwrap();
        clock.set(at("2026-01-01T00:00:10Z"));
        assert_eq!(admit("a"), "0000");
        assert_eq!(admit("a"), "0005", "second draw in the same second");
        assert_eq!(admit("a"), "0005");
        assert_eq!(admit("b"), "0000", "other users are not affected");
        clock.set(at("2026-01-01T00:00:15Z"));
        assert_eq!(
            admit("a"),
            "0005",
            "blocked although the limiter has refilled"
        );
        clock.set(at("2026-01-01T00:01:20Z"));
        assert_eq!(admit("a"), "0000", "the block window has passed");
    }

    #[test]
    fn degrade_wins_over_everything() {
        let clock = Arc::new(FixedClock::new(at("2026-01-01T00:00:00Z")));
        let (g, dcc) = guard(clock);
        pollster::block_on(dcc.update("degradeSwitch", "open")).unwrap();
        assert_eq!(code(pollster::block_on(g.admit("a"))), "0004");
    }

    #[test]
    fn breaker_opens_after_consecutive_failures_then_probes() {
        let clock = Arc::new(FixedClock::new(at("2026-01-01T00:00:00Z")));
        let (g, _) = guard(clock.clone());
        let timeout: Result<()> = Err(Error::biz(ResponseCode::Hystrix, "late"));
        let refused: Result<()> = Err(Error::biz(ResponseCode::AccountQuotaError, ""));
        for outcome in [&refused, &timeout, &timeout] {
            let a = pollster::block_on(g.admit("a")).unwrap();
            g.finish(a, outcome);
        }
        assert!(g.breaker_open());
        assert_eq!(code(pollster::block_on(g.admit("a"))), "0006");
        clock.set(at("2026-01-01T00:00:06Z"));
        let probe = pollster::block_on(g.admit("a")).unwrap();
        assert_eq!(
            code(pollster::block_on(g.admit("b"))),
            "0006",
            "one probe at a time"
        );
        g.finish(probe, &timeout);
        assert_eq!(code(pollster::block_on(g.admit("a"))), "0006", "reopened");
        clock.set(at("2026-01-01T00:00:12Z"));
        let probe = pollster::block_on(g.admit("a")).unwrap();
        g.finish(probe, &Ok(()));
        assert!(!g.breaker_open());
        assert_eq!(code(pollster::block_on(g.admit("b"))), "0000");
    }
}
