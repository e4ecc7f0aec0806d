//! The embedded store's disk: full in the middle of a draw load, and read-only at start.
//!
//! A full disk is the store reaching its size limit (`BIG_MARKET_SQLITE_MAX_SIZE_MB`,
//! SQLite's `max_page_count`, which fails a write with the same `SQLITE_FULL` as a full
//! disk): the test fills the store up to it with a ballast table from its own
//! connection, as another file would fill a disk, and frees the space again by dropping
//! the table. A small filesystem would need mount rights the tests do not assume.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{AwardRecord, Server, Snapshot, Task};

const USERS: usize = 40;
const DRAWS_PER_USER: usize = 50;
const CONNECTIONS: usize = 64;
const AWARD_STOCK: i64 = 700;
const SKU_STOCK: i64 = 100;
const ACTIVITY: i64 = 900500;
const STRATEGY: i64 = 900500;
const SKU: i64 = 990500;
const STOCKED: [i64; 2] = [102, 103];
/// The store's size limit given to the server (MiB): a fresh store with the sample data
/// and the whole load's rows fit well below it.
const MAX_SIZE_MB: i64 = 16;
const STORE_FULL: &str = "ERR_STORE_001";

/// Activity 900500: awards 102 and 103 with 700 units each, falling back to the luck
/// award 101; SKU 990500 granting 50 draws.
fn configure_sql() -> String {
    format!(
        "INSERT INTO strategy (strategy_id, strategy_desc) VALUES ({STRATEGY}, 'disk');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES ({STRATEGY}, 102, 'a', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 1),
                  ({STRATEGY}, 103, 'b', {AWARD_STOCK}, {AWARD_STOCK}, '0.5000', 'tree_luck_award', 2),
                  ({STRATEGY}, 101, 'luck', 0, 0, '0.0000', NULL, 3);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES ({ACTIVITY}, 'disk', 'disk', '2020-01-01 00:00:00', '2099-01-01 00:00:00', {STRATEGY}, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
           VALUES ({SKU}, {DRAWS_PER_USER}, {DRAWS_PER_USER}, {DRAWS_PER_USER});
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES ({SKU}, {ACTIVITY}, {SKU}, {SKU_STOCK}, {SKU_STOCK}, '1.00');"
    )
}

/// Pages of the store left free for the load to fill: roughly a fifth of its draws.
const HEADROOM_PAGES: i64 = 128;

/// Fills the store up to the server's size limit from a connection of the test under the
/// same limit, as another file would fill a disk: a `headroom` table of
/// [`HEADROOM_PAGES`] one-page rows, then a ballast of big rows and rows of about a page
/// until not one more fits. Dropping `headroom` then leaves the load exactly that much
/// space to fill by itself. Returns the store's pages.
fn fill(dir: &Path) -> i64 {
    let conn = support::open_store(dir);
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    conn.query_row(
        &format!(
            "PRAGMA max_page_count = {}",
            MAX_SIZE_MB * 1024 * 1024 / page
        ),
        [],
        |_| Ok(()),
    )
    .unwrap();
    conn.execute_batch("CREATE TABLE headroom (b BLOB); CREATE TABLE ballast (b BLOB);")
        .unwrap();
    for _ in 0..HEADROOM_PAGES {
        conn.execute("INSERT INTO headroom VALUES (zeroblob(?1))", [page - 200])
            .unwrap();
    }
    for size in [1 << 20, 64 << 10, page - 200] {
        loop {
            match conn.execute("INSERT INTO ballast VALUES (zeroblob(?1))", [size]) {
                Ok(_) => {}
                Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) => break,
                Err(e) => panic!("ballast: {e}"),
            }
        }
    }
    conn.query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap()
}

/// Gives the space back: the ballast's pages become free pages of the store.
fn free(dir: &Path) {
    support::open_store(dir)
        .execute_batch("DROP TABLE ballast")
        .expect("drop the ballast");
}

/// Every draw the load made was answered `0000` once and is in the store exactly once:
/// quota used = raffle orders = award records = `send_award` tasks; stock conserved.
fn check_counts(s: &Snapshot, answered: usize) {
    let total = USERS * DRAWS_PER_USER;
    assert_eq!(
        (s.orders.len(), answered),
        (total, total),
        "raffle orders, draws answered 0000"
    );
    let unused: Vec<_> = s.orders.iter().filter(|o| o.state != "used").collect();
    assert!(unused.is_empty(), "orders not used: {unused:?}");
    let mut orders_per_user = BTreeMap::<&str, i64>::new();
    for o in &s.orders {
        *orders_per_user.entry(o.user.as_str()).or_default() += 1;
    }
    assert_eq!(s.accounts.len(), USERS, "accounts");
    for a in &s.accounts {
        assert_eq!(
            (a.total, a.surplus, a.total - a.surplus),
            (DRAWS_PER_USER as i64, 0, orders_per_user[a.user.as_str()]),
            "user {}: quota used = raffle orders",
            a.user
        );
    }
    let (records, tasks) = (s.records_by_order(), s.award_tasks());
    for o in &s.orders {
        let id = o.order_id.as_str();
        assert_eq!(
            records.get(id).map_or(0, Vec::len),
            1,
            "award records of {id}"
        );
        assert_eq!(
            tasks.get(id).map_or(0, Vec::len),
            1,
            "send_award tasks of {id}"
        );
    }
    assert_eq!((s.records.len(), tasks.len()), (total, total));
    for award in STOCKED {
        let granted = s.records.iter().filter(|r| r.award_id == award).count() as i64;
        let left = s.award_surplus[&award];
        assert_eq!(
            granted + left,
            AWARD_STOCK,
            "award {award}: {granted} + {left}"
        );
    }
    assert_eq!(
        (s.sku_orders, s.sku_orders + s.sku_surplus),
        (USERS as i64, SKU_STOCK),
        "sku {SKU}: activity orders + surplus"
    );
}

/// Every task completed; each luck award credited once, by the credit order keyed by its
/// raffle order; credit balances equal the sum of their credit orders.
fn delivered(s: &Snapshot) -> Result<(), String> {
    let pending: Vec<&Task> = s.tasks.iter().filter(|t| t.state != "completed").collect();
    if let Some(t) = pending.first() {
        return Err(format!(
            "{} task(s) not completed, e.g. {t:?}",
            pending.len()
        ));
    }
    let mut credits = BTreeMap::<&str, usize>::new();
    for (_, key, _) in &s.credit_orders {
        *credits.entry(key.as_str()).or_default() += 1;
    }
    let luck = |r: &&AwardRecord| r.award_id == 101;
    if let Some(r) = s.records.iter().filter(luck).find(|r| {
        r.state != "completed" || credits.get(format!("award_{}", r.order_id).as_str()) != Some(&1)
    }) {
        return Err(format!("luck award not credited once: {r:?}"));
    }
    let luck_records = s.records.iter().filter(luck).count();
    if s.credit_orders.len() != luck_records {
        return Err(format!(
            "{} credit orders for {luck_records} luck awards",
            s.credit_orders.len()
        ));
    }
    let mut sums = BTreeMap::<&str, i64>::new();
    for (user, _, cents) in &s.credit_orders {
        *sums.entry(user.as_str()).or_default() += cents;
    }
    for (user, total, available) in &s.credit_accounts {
        let sum = sums.get(user.as_str()).copied().unwrap_or(0);
        if (*total, *available) != (sum, sum) {
            return Err(format!(
                "credit account of {user}: {total}/{available}, orders {sum}"
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_store_refuses_draws_clearly_and_recovers_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "BIG_MARKET_SQLITE_MAX_SIZE_MB".to_owned(),
        MAX_SIZE_MB.to_string(),
    )];
    let server = Server::start(dir.path(), &env).await;
    support::open_store(dir.path())
        .execute_batch(&configure_sql())
        .expect("configure");
    let users: Vec<String> = (0..USERS).map(|u| format!("disk{u}")).collect();
    support::armory(&server.base, ACTIVITY).await;
    support::recharge(&server.base, &users, SKU).await;

    let path = dir.path().to_owned();
    let pages = tokio::task::spawn_blocking(move || fill(&path))
        .await
        .unwrap();
    support::open_store(dir.path())
        .execute_batch("DROP TABLE headroom")
        .unwrap();

    let total = USERS * DRAWS_PER_USER;
    let answered = Arc::new(AtomicUsize::new(0));
    let codes = support::Codes::default();
    let filled = Instant::now();
    let load = tokio::spawn({
        let (base, users, answered, codes) = (
            server.base.clone(),
            users.clone(),
            answered.clone(),
            codes.clone(),
        );
        async move {
            support::draw_counting(&base, &users, ACTIVITY, CONNECTIONS, answered, codes).await
        }
    });
    let refused_after = |since: Instant| {
        codes
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, code)| *at >= since && code == STORE_FULL)
            .count()
    };
    // Once the pages left in the store's tables are used, every draw needs space.
    support::until_ok(
        "draws refused as the store is full",
        Duration::from_secs(120),
        async || {
            if refused_after(filled) >= 500 {
                return Ok(());
            }
            let mut since = BTreeMap::<String, usize>::new();
            for (_, code) in codes.lock().unwrap().iter().filter(|(at, _)| *at >= filled) {
                *since.entry(code.clone()).or_default() += 1;
            }
            Err(format!(
                "store of {pages} pages; answers since it was filled: {since:?}; {} of {total} \
                 answered 0000, load ended: {}\n{}",
                answered.load(Ordering::SeqCst),
                load.is_finished(),
                server
                    .log()
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            ))
        },
    )
    .await;
    let during = answered.load(Ordering::SeqCst);
    assert!(during < total, "the load ended before the store was freed");

    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || free(&path))
        .await
        .unwrap();
    let freed = Instant::now();
    assert!(
        load.await.unwrap(),
        "every quota spent after the space returned, on the same server:\n{}",
        server.log()
    );

    let codes = codes.lock().unwrap().clone();
    let seen: BTreeSet<&str> = codes.iter().map(|(_, c)| c.as_str()).collect();
    let allowed: BTreeSet<&str> = [
        "0000",
        STORE_FULL,
        "ERR_BIZ_006",
        "ERR_BIZ_007",
        "ERR_BIZ_008",
    ]
    .into_iter()
    .collect();
    assert!(
        seen.is_subset(&allowed),
        "codes answered: {seen:?}\n{}",
        server.log()
    );
    let after_free = codes
        .iter()
        .filter(|(at, c)| *at >= freed && c == "0000")
        .count();
    eprintln!(
        "store full at {pages} pages after {during} of {total} draws: {} draws refused with \
         {STORE_FULL}; {after_free} answered 0000 after the space returned",
        codes.iter().filter(|(_, c)| c == STORE_FULL).count(),
    );
    assert!(
        after_free > 0,
        "no draw answered 0000 after the space returned"
    );

    let conn = support::open_store(dir.path());
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    check_counts(
        &support::embedded_snapshot(&conn, ACTIVITY, STRATEGY, SKU),
        answered.load(Ordering::SeqCst),
    );
    support::until_ok(
        "every task delivered",
        Duration::from_secs(60),
        async || delivered(&support::embedded_snapshot(&conn, ACTIVITY, STRATEGY, SKU)),
    )
    .await;
    server.kill9();
}

/// Makes a path unwritable for the test's user, and writable again when dropped: an
/// immutable file (`chattr +i`) for root, whom permission bits do not stop, else the
/// write bits removed.
struct ReadOnly {
    path: PathBuf,
    root: bool,
    mode: u32,
}

impl ReadOnly {
    fn new(path: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let uid = Command::new("id").arg("-u").output().expect("id -u");
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        if root {
            let status = Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .expect("chattr (e2fsprogs) is needed to make a path read-only for root");
            assert!(status.success(), "chattr +i {}", path.display());
        } else {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o222)).unwrap();
        }
        Self {
            path: path.to_owned(),
            root,
            mode,
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.root {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        } else {
            let _ =
                std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(self.mode));
        }
    }
}

/// A store made by a server that then stopped cleanly (no `-wal` or `-shm` file left).
async fn made_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]).await;
    let (status, _) = server.terminate(Duration::from_secs(60)).await;
    assert!(status.success(), "{status}");
    dir
}

async fn refused_start(dir: &Path) -> String {
    let (status, stderr) = support::serve_until_exit(dir, &[], Duration::from_secs(60)).await;
    assert!(!status.success(), "serve exited with {status}:\n{stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_stops_serve_at_start_naming_it() {
    let dir = made_store().await;
    let stderr = {
        let _ro = ReadOnly::new(dir.path());
        refused_start(dir.path()).await
    };
    let expected = format!(
        "the data directory {} is not writable",
        dir.path().display()
    );
    assert!(stderr.contains(&expected), "{stderr}");

    // A fresh data directory that cannot be written: nothing to open, same refusal.
    let fresh = tempfile::tempdir().unwrap();
    let stderr = {
        let _ro = ReadOnly::new(fresh.path());
        refused_start(fresh.path()).await
    };
    let expected = format!(
        "the data directory {} is not writable",
        fresh.path().display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!fresh.path().join("big-market.db").exists());

    // The store file alone read-only.
    let store = dir.path().join("big-market.db");
    let stderr = {
        let _ro = ReadOnly::new(&store);
        refused_start(dir.path()).await
    };
    let expected = format!("the store file {} is not writable", store.display());
    assert!(stderr.contains(&expected), "{stderr}");

    // Writable again: the same store serves.
    let server = Server::start(dir.path(), &[]).await;
    server.kill9();
}
