//! userId → (database, table) exactly as upstream's db-router (`DBRouterStrategyHashCode`),
//! so a Rust node finds the rows a Java node wrote, and the other way round.

/// Where a user's rows live: database `1..=db_count`, table `0..tb_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    pub db: u32,
    pub table: u32,
}

impl Route {
    /// The user database's name, e.g. `big_market_01` for prefix `big_market`.
    pub fn database(&self, prefix: &str) -> String {
        format!("{prefix}_{:02}", self.db)
    }

    /// The table suffix, e.g. `_001`.
    pub fn suffix(&self) -> String {
        format!("_{:03}", self.table)
    }
}

/// The routing formula with its two parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Router {
    db_count: u32,
    tb_count: u32,
}

/// Java's `String.hashCode`: `h = 31·h + c` over UTF-16 code units, wrapping at 32 bits.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

impl Router {
    /// `db_count × tb_count` must be a power of two (the formula masks with `size − 1`).
    pub fn new(db_count: u32, tb_count: u32) -> Result<Self, String> {
        let size = db_count
            .checked_mul(tb_count)
            .ok_or("db_count × tb_count overflows")?;
        if db_count == 0 || tb_count == 0 || !size.is_power_of_two() {
            return Err(format!(
                "db_count ({db_count}) × tb_count ({tb_count}) must be a power of two"
            ));
        }
        Ok(Self { db_count, tb_count })
    }

    pub fn db_count(&self) -> u32 {
        self.db_count
    }

    pub fn tb_count(&self) -> u32 {
        self.tb_count
    }

    pub fn route(&self, user_id: &str) -> Route {
        let size = self.db_count * self.tb_count;
        let h = java_string_hash(user_id);
        // `h ^ (h >>> 16)` with Java's unsigned shift.
        let spread = (h as u32) ^ ((h as u32) >> 16);
        let idx = (size - 1) & spread;
        let db = idx / self.tb_count + 1;
        let table = idx - self.tb_count * (db - 1);
        Route { db, table }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's test vectors (spec §4.3), dbCount 2, tbCount 4.
    #[test]
    fn upstream_vectors() {
        let r = Router::new(2, 4).unwrap();
        for (user, hash, db, table) in [
            ("xiaofuge", 265141580, 1, 1),
            ("user001", -147179898, 2, 0),
            ("user002", -147179897, 2, 1),
            ("user003", -147179896, 1, 2),
            ("咸鱼12138", -1689275311, 2, 2),
            ("chen", 3052494, 1, 0),
            ("system", -887328209, 1, 3),
        ] {
            assert_eq!(java_string_hash(user), hash, "{user}");
            let route = r.route(user);
            assert_eq!(route, Route { db, table }, "{user}");
        }
        assert_eq!(r.route("xiaofuge").database("big_market"), "big_market_01");
        assert_eq!(r.route("xiaofuge").suffix(), "_001");
    }

    #[test]
    fn counts_must_multiply_to_a_power_of_two() {
        assert!(Router::new(3, 4).is_err());
        assert!(Router::new(0, 4).is_err());
        assert!(Router::new(1, 1).is_ok());
        let r = Router::new(4, 8).unwrap();
        for u in ["a", "bb", "用户", "😀x"] {
            let route = r.route(u);
            assert!((1..=4).contains(&route.db) && route.table < 8);
        }
    }
}
