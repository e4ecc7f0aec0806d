//! The Redis adapter against the real server on this machine (127.0.0.1:6379 or
//! `TEST_REDIS_URL`). These tests fail, never skip, when it is unreachable.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

mod redis_common;

use big_market_adapters::redis_store::{
    Notice, RedisError, RedisStock, Reservation, StockKey, SweepReport,
};
use big_market_domain::ResponseCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis_common::{TestRedis, WAIT};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::timeout;

const AWARD: StockKey = StockKey::Award {
    strategy_id: 100006,
    award_id: 101,
};
const SKU: StockKey = StockKey::Sku { sku: 9011 };

/// Runs `total` reservations from `tasks` parallel tasks; returns the ones that got a unit.
async fn reserve_concurrently(
    stock: &RedisStock,
    key: StockKey,
    tasks: usize,
    total: usize,
) -> Vec<Reservation> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..tasks {
        let stock = stock.clone();
        let next = next.clone();
        set.spawn(async move {
            let mut won = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= total {
                    return won;
                }
                let id = format!("order-{n}");
                if stock.reserve(key, &id, 1_000).await.expect("reserve") {
                    won.push(Reservation { key, id });
                }
            }
        });
    }
    let mut all = Vec::new();
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("task"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_reservations_take_exactly_the_stock() {
    let redis = TestRedis::start().await;
    let stock = redis.stock().await;
    for key in [AWARD, SKU] {
        assert!(stock.init(key, 150).await.unwrap());
        let won = reserve_concurrently(&stock, key, 64, 500).await;
        assert_eq!(won.len(), 150, "{key}: exactly the stock is reserved");
        assert_eq!(
            stock.surplus(key).await.unwrap(),
            Some(0),
            "{key}: never negative"
        );
        assert_eq!(stock.pending(key).await.unwrap(), 150);
        let ids: HashSet<_> = won.iter().map(|r| r.id.clone()).collect();
        assert_eq!(ids.len(), 150, "each unit has its own order");
        // Sold out stays sold out.
        assert!(!stock.reserve(key, "late", 2_000).await.unwrap());
        assert_eq!(stock.surplus(key).await.unwrap(), Some(0));
    }
    redis.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn random_confirm_and_cancel_conserve_every_unit() {
    let redis = TestRedis::start().await;
    let stock = redis.stock().await;
    let initial = 200;
    stock.init(AWARD, initial).await.unwrap();
    let confirmed = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for task in 0..64u64 {
        let (stock, confirmed, next) = (stock.clone(), confirmed.clone(), next.clone());
        set.spawn(async move {
            let mut rng = StdRng::seed_from_u64(task);
            loop {
                let n = next.fetch_add(1, Ordering::SeqCst);
                if n >= 600 {
                    return;
                }
                let id = format!("order-{n}");
                if !stock.reserve(AWARD, &id, 1_000).await.unwrap() {
                    continue;
                }
                let r = Reservation { key: AWARD, id };
                match rng.random_range(0..3) {
                    0 => {
                        assert!(stock.confirm(&r).await.unwrap());
                        confirmed.fetch_add(1, Ordering::SeqCst);
                        // A late rollback of a committed order changes nothing.
                        assert!(!stock.cancel(&r).await.unwrap());
                    }
                    1 => {
                        assert!(stock.cancel(&r).await.unwrap());
                        assert!(!stock.cancel(&r).await.unwrap());
                        assert!(!stock.confirm(&r).await.unwrap());
                    }
                    _ => {} // left pending, as a crashed node would
                }
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.expect("task");
    }
    let remaining = stock.surplus(AWARD).await.unwrap().unwrap();
    let pending = i64::try_from(stock.pending(AWARD).await.unwrap()).unwrap();
    let confirmed = i64::try_from(confirmed.load(Ordering::SeqCst)).unwrap();
    assert!(remaining >= 0);
    assert!(confirmed > 0 && pending > 0, "the mix exercised every path");
    assert_eq!(
        initial,
        remaining + pending + confirmed,
        "initial = remaining + pending + confirmed"
    );
    redis.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sweep_after_a_crash_returns_or_confirms_every_unit() {
    let redis = TestRedis::start().await;
    let stock = redis.stock().await;
    let initial = 100;
    stock.init(AWARD, initial).await.unwrap();
    stock.init(SKU, initial).await.unwrap();

    // Before the crash: 80 reservations per key at t=1000, some of whose orders committed.
    let mut rng = StdRng::seed_from_u64(7);
    let mut in_sql: HashSet<(StockKey, String)> = HashSet::new();
    for key in [AWARD, SKU] {
        for n in 0..80 {
            let id = format!("{key}-order-{n}");
            assert!(stock.reserve(key, &id, 1_000 + n).await.unwrap());
            if rng.random_bool(0.5) {
                in_sql.insert((key, id));
            }
        }
        // A draw still in flight after the restart: too young to be swept.
        assert!(stock.reserve(key, "in-flight", 60_000).await.unwrap());
    }

    let calls = Arc::new(AtomicUsize::new(0));
    let report = {
        let in_sql = in_sql.clone();
        let calls = calls.clone();
        stock
            .sweep(30_000, 7, move |key, ids| {
                calls.fetch_add(1, Ordering::SeqCst);
                assert!(ids.len() <= 7, "batches are bounded");
                let found: HashSet<String> = ids
                    .into_iter()
                    .filter(|id| in_sql.contains(&(key, id.clone())))
                    .collect();
                async move { Ok(found) }
            })
            .await
            .unwrap()
    };
    let granted = in_sql.len() as u64;
    assert_eq!(
        report,
        SweepReport {
            returned: 160 - granted,
            confirmed: granted,
        }
    );
    assert!(calls.load(Ordering::SeqCst) >= 2 * 80 / 7);

    for key in [AWARD, SKU] {
        assert_eq!(
            stock.pending(key).await.unwrap(),
            1,
            "{key}: the young one stays"
        );
        let in_flight = Reservation {
            key,
            id: "in-flight".into(),
        };
        assert!(stock.cancel(&in_flight).await.unwrap());
        let granted = in_sql.iter().filter(|(k, _)| *k == key).count() as i64;
        let remaining = stock.surplus(key).await.unwrap().unwrap();
        assert_eq!(
            remaining + granted,
            initial,
            "{key}: remaining + granted = initial"
        );
    }

    // A second sweep finds nothing.
    let again = stock
        .sweep(i64::MAX, 7, |_, _| async { Ok(HashSet::new()) })
        .await
        .unwrap();
    assert_eq!(again, SweepReport::default());
    redis.cleanup().await;
}

#[tokio::test]
async fn cancel_and_confirm_are_idempotent() {
    let redis = TestRedis::start().await;
    let stock = redis.stock().await;
    stock.init(SKU, 5).await.unwrap();

    let a = stock.reserve_sku(9011, "a", 1).await.unwrap().unwrap();
    assert_eq!(stock.surplus(SKU).await.unwrap(), Some(4));
    // Repeating a reservation id takes nothing more.
    assert!(stock.reserve(SKU, "a", 2).await.unwrap());
    assert_eq!(stock.surplus(SKU).await.unwrap(), Some(4));
    assert!(stock.cancel(&a).await.unwrap());
    assert!(!stock.cancel(&a).await.unwrap());
    assert!(!stock.confirm(&a).await.unwrap());
    assert_eq!(stock.surplus(SKU).await.unwrap(), Some(5), "returned once");

    let b = stock.reserve_sku(9011, "b", 3).await.unwrap().unwrap();
    assert!(stock.confirm(&b).await.unwrap());
    assert!(!stock.confirm(&b).await.unwrap());
    assert!(!stock.cancel(&b).await.unwrap());
    assert_eq!(stock.surplus(SKU).await.unwrap(), Some(4), "stays taken");
    assert_eq!(stock.pending(SKU).await.unwrap(), 0);
    redis.cleanup().await;
}

#[tokio::test]
async fn missing_stock_is_not_assembled_and_init_sets_only_if_absent() {
    let redis = TestRedis::start().await;
    let stock = redis.stock().await;

    let err = stock.reserve_award(100006, 101, "x", 1).await.unwrap_err();
    assert!(matches!(err, RedisError::NotAssembled(AWARD)), "{err}");
    let domain: big_market_domain::Error = err.into();
    assert_eq!(domain.code(), ResponseCode::UnAssembledStrategyArmory);
    let err = stock.reserve_sku(9011, "x", 1).await.unwrap_err();
    let domain: big_market_domain::Error = err.into();
    assert_eq!(domain.code(), ResponseCode::ActivitySkuStockError);

    assert!(stock.init_award(100006, 101, 3).await.unwrap());
    assert!(
        !stock.init_award(100006, 101, 99).await.unwrap(),
        "armory again keeps the count"
    );
    assert_eq!(stock.surplus(AWARD).await.unwrap(), Some(3));

    // Zero stock is sold out, not an error.
    stock.init(SKU, 0).await.unwrap();
    assert_eq!(stock.reserve_sku(9011, "y", 1).await.unwrap(), None);

    // The operator's reset is absolute: pending reservations are forgotten.
    let r = stock
        .reserve_award(100006, 101, "p", 1)
        .await
        .unwrap()
        .unwrap();
    stock.reset(AWARD, 10).await.unwrap();
    assert_eq!(stock.pending(AWARD).await.unwrap(), 0);
    assert!(
        !stock.cancel(&r).await.unwrap(),
        "a forgotten reservation returns nothing"
    );
    assert_eq!(stock.surplus(AWARD).await.unwrap(), Some(10));

    assert!(
        RedisStock::new(redis.conn.clone(), "bad{prefix}")
            .await
            .is_err()
    );
    redis.cleanup().await;
}

#[tokio::test]
async fn write_back_reports_each_changed_counter_once() {
    let redis = TestRedis::start().await;
    let stock = redis.stock().await;
    let other = StockKey::Award {
        strategy_id: 100006,
        award_id: 102,
    };
    for key in [AWARD, other, SKU] {
        stock.init(key, 10).await.unwrap();
    }
    assert!(
        stock.take_dirty().await.unwrap().is_empty(),
        "the armory writes nothing back"
    );

    let r1 = stock
        .reserve_award(100006, 101, "1", 1)
        .await
        .unwrap()
        .unwrap();
    stock
        .reserve_award(100006, 101, "2", 1)
        .await
        .unwrap()
        .unwrap();
    stock.reserve_sku(9011, "3", 1).await.unwrap().unwrap();
    assert_eq!(
        stock.take_dirty().await.unwrap(),
        vec![(AWARD, 8), (SKU, 9)]
    );
    assert!(
        stock.take_dirty().await.unwrap().is_empty(),
        "each change once"
    );

    stock.confirm(&r1).await.unwrap();
    assert!(
        stock.take_dirty().await.unwrap().is_empty(),
        "confirm changes no counter"
    );
    stock
        .cancel(&Reservation {
            key: AWARD,
            id: "2".into(),
        })
        .await
        .unwrap();
    assert_eq!(stock.take_dirty().await.unwrap(), vec![(AWARD, 9)]);

    // A failed SQL write hands its keys back.
    stock.mark_dirty(&[other]).await.unwrap();
    assert_eq!(stock.take_dirty().await.unwrap(), vec![(other, 10)]);
    assert_eq!(
        stock.surplus_all().await.unwrap(),
        vec![(AWARD, 9), (other, 10), (SKU, 9)]
    );
    redis.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lock_has_one_holder_under_contention() {
    let redis = TestRedis::start().await;
    let lock = redis.lock();
    let holders = Arc::new(AtomicUsize::new(0));
    let acquisitions = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for _ in 0..32 {
        let (lock, holders, acquisitions) = (lock.clone(), holders.clone(), acquisitions.clone());
        set.spawn(async move {
            let mut mine = 0;
            while mine < 3 {
                let Some(guard) = lock
                    .try_acquire("award_100006", Duration::from_secs(30))
                    .await
                    .unwrap()
                else {
                    tokio::task::yield_now().await;
                    continue;
                };
                assert_eq!(
                    holders.fetch_add(1, Ordering::SeqCst),
                    0,
                    "two holders at once"
                );
                tokio::task::yield_now().await;
                holders.fetch_sub(1, Ordering::SeqCst);
                assert!(guard.release().await.unwrap());
                acquisitions.fetch_add(1, Ordering::SeqCst);
                mine += 1;
            }
        });
    }
    timeout(WAIT * 3, async {
        while let Some(r) = set.join_next().await {
            r.expect("task");
        }
    })
    .await
    .expect("every task got the lock three times");
    assert_eq!(acquisitions.load(Ordering::SeqCst), 96);
    redis.cleanup().await;
}

#[tokio::test]
async fn only_the_token_holder_releases_or_renews() {
    let redis = TestRedis::start().await;
    let lock = redis.lock();
    let guard = lock
        .try_acquire("credit", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("free lock");
    assert!(!lock.release(guard.key(), "not-the-token").await.unwrap());
    assert!(
        lock.try_acquire("credit", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none(),
        "still held after a wrong-token release"
    );
    assert!(guard.renew(Duration::from_secs(60)).await.unwrap());
    assert!(guard.release().await.unwrap());
    let again = lock
        .try_acquire("credit", Duration::from_secs(30))
        .await
        .unwrap();
    assert!(again.is_some(), "free after the holder released");

    // Leadership: one node leads until its lease expires; the old leader then can
    // neither renew nor release the new leader's lock.
    let leader = lock
        .try_lead("updateAwardStockJob", Duration::from_millis(300))
        .await
        .unwrap()
        .expect("first node leads");
    assert!(leader.key().ends_with("big-market-updateAwardStockJob"));
    assert!(
        lock.try_lead("updateAwardStockJob", Duration::from_secs(30))
            .await
            .unwrap()
            .is_none()
    );
    let next = timeout(WAIT, async {
        loop {
            if let Some(g) = lock
                .try_lead("updateAwardStockJob", Duration::from_secs(30))
                .await
                .unwrap()
            {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the lease expires");
    assert!(!leader.renew(Duration::from_secs(30)).await.unwrap());
    assert!(!leader.release().await.unwrap());
    assert!(
        next.renew(Duration::from_secs(30)).await.unwrap(),
        "the new leader still holds it"
    );
    drop(next);
    redis.cleanup().await;
}

#[tokio::test]
async fn invalidation_reaches_every_subscriber() {
    let redis = TestRedis::start().await;
    let node_a = redis.invalidation();
    let node_b = redis.invalidation();
    let mut sub_a = node_a.subscribe().await.unwrap();
    let mut sub_b = node_b.subscribe().await.unwrap();

    let receivers = node_a.publish("strategy", 100006).await.unwrap();
    assert_eq!(receivers, 2);
    for sub in [&mut sub_a, &mut sub_b] {
        let notice = timeout(WAIT, sub.recv()).await.expect("delivered in time");
        match notice {
            Some(Notice::Invalidate(e)) => {
                assert_eq!((e.kind.as_str(), e.id), ("strategy", 100006))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    redis.cleanup().await;
}

#[tokio::test]
async fn the_block_list_is_shared_by_nodes_and_follows_the_callers_clock() {
    use big_market_adapters::redis_store::RedisBlockList;
    use big_market_domain::guard::BlockList;
    let redis = TestRedis::start().await;
    let node_a = RedisBlockList::new(redis.conn.clone(), redis.prefix.clone()).unwrap();
    let node_b = RedisBlockList::new(redis.conn.clone(), redis.prefix.clone()).unwrap();
    let t0 = jiff::Timestamp::now();
    let window = Duration::from_secs(60);
    assert_eq!(node_b.rejections("u1", t0).await.unwrap(), 0);
    assert_eq!(node_a.reject("u1", t0, window).await.unwrap(), 1);
    assert_eq!(node_b.reject("u1", t0, window).await.unwrap(), 2);
    assert_eq!(node_a.rejections("u1", t0).await.unwrap(), 2);
    assert_eq!(node_a.rejections("u2", t0).await.unwrap(), 0, "per user");
    // The window ends by the caller's clock, not by Redis's.
    let later = t0 + jiff::SignedDuration::from_secs(61);
    assert_eq!(node_b.rejections("u1", later).await.unwrap(), 0);
    assert_eq!(
        node_b.reject("u1", later, window).await.unwrap(),
        1,
        "a new window"
    );
    redis.cleanup().await;
}

/// A campaign's change of a total moves what is left by the same amount, atomically and
/// never below zero, with reservations in flight already out of the counter.
#[tokio::test]
async fn adjust_moves_what_is_left_by_the_delta_and_never_below_zero() {
    let redis = TestRedis::start().await;
    let stock = redis.stock().await;
    assert_eq!(stock.adjust(AWARD, 5).await.unwrap(), None, "not assembled");
    stock.init(AWARD, 10).await.unwrap();
    assert!(stock.reserve(AWARD, "r:order1.1:u1", -1).await.unwrap());
    let _ = stock.take_dirty().await.unwrap();
    assert_eq!(stock.adjust(AWARD, 30).await.unwrap(), Some(true));
    assert_eq!(stock.surplus(AWARD).await.unwrap(), Some(39));
    assert_eq!(
        stock.take_dirty().await.unwrap(),
        vec![(AWARD, 39)],
        "marked for the write-back"
    );
    assert_eq!(stock.adjust(AWARD, -40).await.unwrap(), Some(false));
    assert_eq!(
        stock.surplus(AWARD).await.unwrap(),
        Some(39),
        "refused: unchanged"
    );
    assert_eq!(stock.adjust(AWARD, -39).await.unwrap(), Some(true));
    assert_eq!(stock.surplus(AWARD).await.unwrap(), Some(0));
    // The reserved unit goes back if its order rolls back.
    let r = Reservation {
        key: AWARD,
        id: "r:order1.1:u1".into(),
    };
    assert!(stock.cancel(&r).await.unwrap());
    assert_eq!(stock.surplus(AWARD).await.unwrap(), Some(1));
    redis.cleanup().await;
}
