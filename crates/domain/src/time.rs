//! Time as the domain sees it: an injected [`Clock`] in one configured zone decides
//! "today" (`yyyy-MM-dd`) and "this month" (`yyyy-MM`), as upstream does in Asia/Shanghai.

use jiff::{Timestamp, Zoned, civil::DateTime, tz::TimeZone};
use std::sync::Mutex;

/// The source of "now". Production uses [`SystemClock`]; tests use [`FixedClock`].
pub trait Clock: Send + Sync {
    fn now(&self) -> Zoned;
}

/// Wall-clock time in a fixed zone.
#[derive(Debug, Clone)]
pub struct SystemClock {
    zone: TimeZone,
}

impl SystemClock {
    pub fn new(zone: TimeZone) -> Self {
        Self { zone }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Zoned {
        Timestamp::now().to_zoned(self.zone.clone())
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock {
    now: Mutex<Zoned>,
}

impl FixedClock {
    pub fn new(now: Zoned) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    pub fn set(&self, now: Zoned) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Zoned {
        self.now.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The calendar keys upstream stores: day `yyyy-MM-dd`, month `yyyy-MM`, sign-in `yyyyMMdd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarKeys {
    pub day: String,
    pub month: String,
    pub compact_day: String,
}

impl CalendarKeys {
    pub fn of(now: &Zoned) -> Self {
        Self {
            day: now.strftime("%Y-%m-%d").to_string(),
            month: now.strftime("%Y-%m").to_string(),
            compact_day: now.strftime("%Y%m%d").to_string(),
        }
    }
}

/// Local date-time as stored in `datetime` columns (`yyyy-MM-dd HH:mm:ss`, zone implied).
pub fn format_datetime(dt: &DateTime) -> String {
    dt.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// Parses a `datetime` column value.
pub fn parse_datetime(s: &str) -> Result<DateTime, jiff::Error> {
    DateTime::strptime("%Y-%m-%d %H:%M:%S", s)
}
