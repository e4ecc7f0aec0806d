//! The application on MariaDB/MySQL (this machine's server, or `TEST_MYSQL_URL`): with
//! `mysql_url` set, `Services::build` serves from the sharded databases; a server that
//! cannot be reached is a start-up error naming it.

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
