//! The application on MariaDB/MySQL (this machine's server, or `TEST_MYSQL_URL`): with
//! `mysql_url` set, `Services::build` serves from the sharded databases; a server that
//! cannot be reached is a start-up error naming it.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

use big_market::Application;
use big_market::config::{Config, Secret};
use big_market_adapters::mysql::migrate::{drop_databases, migrate};
use big_market_domain::activity::quota::{OrderTradeType, SkuRecharge};
use big_market_domain::sample::SampleData;
use big_market_domain::time::{Clock, FixedClock};
use std::sync::Arc;

fn mysql_config(dir: &std::path::Path, url: &str) -> Config {
    Config {
        addr: "127.0.0.1:0".into(),
        data_dir: dir.to_owned(),
        mysql_url: Some(Secret(url.to_owned())),
        mysql_database: format!(
            "bma_{}_{}",
            std::process::id(),
            rand::random::<u32>() % 1_000_000
        ),
        draw_timeout_ms: 10_000,
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_mysql_url_the_services_run_on_the_sharded_databases() {
    let url =
        std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let dir = tempfile::tempdir().unwrap();
    let config = mysql_config(dir.path(), &url);
    let options = config.mysql().unwrap();
    let now: jiff::Zoned = "2026-11-26T10:00:00+08:00[Asia/Shanghai]".parse().unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let sample = SampleData::upstream().with_open_activities(clock.now().datetime());
    migrate(&options, Some(&sample))
        .await
        .unwrap_or_else(|e| panic!("{e}: the tests need MariaDB/MySQL"));

    let app = Application::build_with_clock(config, clock).await.unwrap();
    let services = &app.services;
    assert!(services.store.mysql().is_some() && services.store.sqlite().is_none());
    assert!(
        !dir.path().join(big_market::DB_FILE).exists(),
        "no embedded store is opened"
    );
    services.probe.ready().await.unwrap();
    services
        .activity
        .recharge(SkuRecharge {
            user_id: "xiaofuge".into(),
            sku: 9011,
            out_business_no: "serve_key_1".into(),
            trade_type: OrderTradeType::RebateNoPayTrade,
        })
        .await
        .unwrap();
    let drawn = services
        .activity
        .draw("xiaofuge".into(), 100301)
        .await
        .unwrap();
    assert_eq!(drawn.order_id.len(), 12);
    let view = services.activity.account("xiaofuge", 100301).await.unwrap();
    assert_eq!((view.total_count, view.total_count_surplus), (150, 149));
    services.rebate.sign("xiaofuge").await.unwrap();
    // The draw wrote one send_award task and the sign-in two send_rebate tasks; the
    // dispatcher may already have delivered the points rebate, whose credit trade adds a
    // credit_adjust_success task, so count by topic rather than in total.
    let store = services.store.mysql().unwrap();
    let mut by_topic = std::collections::BTreeMap::<String, i64>::new();
    for db in options.user_databases() {
        let rows: Vec<(String, i64)> = sqlx::query_as(&format!(
            "SELECT topic, COUNT(*) FROM `{db}`.task WHERE user_id = 'xiaofuge' GROUP BY topic"
        ))
        .fetch_all(store.pool())
        .await
        .unwrap();
        for (topic, n) in rows {
            *by_topic.entry(topic).or_default() += n;
        }
    }
    assert_eq!(by_topic.get("send_award"), Some(&1), "{by_topic:?}");
    assert_eq!(by_topic.get("send_rebate"), Some(&2), "{by_topic:?}");
    assert!(
        by_topic
            .keys()
            .all(|t| ["send_award", "send_rebate", "credit_adjust_success"].contains(&t.as_str())),
        "{by_topic:?}"
    );
    drop(app);
    drop_databases(&options).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_mysql_server_stops_the_start_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let config = mysql_config(dir.path(), "mysql://root@127.0.0.1:1");
    let e = Application::build(config)
        .await
        .err()
        .expect("no server on port 1");
    let text = format!("{e:#}");
    assert!(text.contains("127.0.0.1:1"), "{text}");
}

/// Polls `check` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Two nodes on one MariaDB and one Redis key space, as a scaled-out deployment runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_stock_and_see_each_others_configuration_changes() {
    let url =
        std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let redis_url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let mut config = mysql_config(dir.path(), &url);
    config.redis_url = Some(Secret(redis_url));
    config.redis_prefix = format!("bma:{}:{}:", std::process::id(), rand::random::<u32>());
    let options = config.mysql().unwrap();
    let now: jiff::Zoned = "2026-11-26T10:00:00+08:00[Asia/Shanghai]".parse().unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let sample = SampleData::upstream().with_open_activities(clock.now().datetime());
    migrate(&options, Some(&sample))
        .await
        .unwrap_or_else(|e| panic!("{e}: the tests need MariaDB/MySQL"));
    let a = Application::build_with_clock(config.clone(), clock.clone())
        .await
        .unwrap_or_else(|e| panic!("{e:#}: the tests need Redis"));
    let b = Application::build_with_clock(config.clone(), clock)
        .await
        .unwrap();
    let store = a.services.store.mysql().unwrap().clone();
    assert!(store.redis_stock().is_some());

    // The switch flipped on one node is seen by the other.
    assert!(!b.services.dcc.degraded());
    a.services
        .dcc
        .update("degradeSwitch", "open")
        .await
        .unwrap();
    eventually("node b sees degradeSwitch open", async || {
        b.services.dcc.degraded()
    })
    .await;

    // The armory on one node rebuilds the strategy on the other.
    sqlx::query(&format!(
        "UPDATE `{}`.strategy_award SET award_title = 'renamed' WHERE strategy_id = 100006 AND award_id = 101",
        options.database
    ))
    .execute(store.pool())
    .await
    .unwrap();
    let title = |app: &Application| {
        let s = app.services.strategy.catalog().get(100006).unwrap();
        s.awards
            .iter()
            .find(|x| x.award_id == 101)
            .map(|x| x.award_title.clone())
    };
    assert_ne!(title(&b).as_deref(), Some("renamed"));
    a.services.strategy.armory(100006).await.unwrap();
    eventually("node b rebuilt strategy 100006", async || {
        title(&b).as_deref() == Some("renamed")
    })
    .await;

    // SKU stock is one Redis counter for both: 20 units, 60 recharges on two nodes.
    store.set_sku_stock(9014, 20).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..60 {
        let activity = if i % 2 == 0 {
            a.services.activity.clone()
        } else {
            b.services.activity.clone()
        };
        handles.push(tokio::spawn(async move {
            activity
                .recharge(SkuRecharge {
                    user_id: format!("node_user_{i}"),
                    sku: 9014,
                    out_business_no: format!("node_key_{i}"),
                    trade_type: OrderTradeType::RebateNoPayTrade,
                })
                .await
        }));
    }
    let mut granted = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => granted += 1,
            Err(e) => assert_eq!(e.code().code(), "ERR_BIZ_005", "{e}"),
        }
    }
    assert_eq!(granted, 20);
    let stock = store.redis_stock().unwrap();
    let key = big_market_adapters::redis_store::StockKey::Sku { sku: 9014 };
    assert_eq!(stock.surplus(key).await.unwrap(), Some(0));
    assert_eq!(stock.pending(key).await.unwrap(), 0);
    // The write-back job (one of the two nodes) brings the SQL column to 0.
    eventually("the SQL surplus of sku 9014 is written back", async || {
        store.sku_stock(9014).await.unwrap() == (20, 0)
    })
    .await;

    drop(a);
    drop(b);
    drop_databases(&options).await.unwrap();
    let (_, mut conn) =
        big_market_adapters::redis_store::connect(config.redis_url.as_ref().unwrap().0.as_str())
            .await
            .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", config.redis_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_redis_server_stops_the_start_with_its_address() {
    let url =
        std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let dir = tempfile::tempdir().unwrap();
    let mut config = mysql_config(dir.path(), &url);
    let options = config.mysql().unwrap();
    migrate(&options, None).await.unwrap();
    config.redis_url = Some(Secret("redis://127.0.0.1:1".into()));
    let e = Application::build(config)
        .await
        .err()
        .expect("no redis on port 1");
    let text = format!("{e:#}");
    drop_databases(&options).await.unwrap();
    assert!(
        text.contains("127.0.0.1:1") && text.contains("edis"),
        "{text}"
    );
}
