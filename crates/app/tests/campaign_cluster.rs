//! Campaigns on two nodes of the production backend (this machine's MariaDB and Redis,
//! or `TEST_MYSQL_URL` / `TEST_REDIS_URL`): a document applied on one node is served by
//! the other within a second, through the armory's own announcement.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

use big_market::Application;
use big_market::config::{Config, Secret};
use big_market_adapters::mysql::migrate::{drop_databases, migrate};
use big_market_domain::campaign::CampaignKey;
use big_market_domain::sample::SampleData;
use big_market_domain::time::{Clock, FixedClock};
use rust_decimal::Decimal;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_campaign_applied_on_one_node_is_served_by_the_other_within_a_second() {
    let url =
        std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let redis_url =
        std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        addr: "127.0.0.1:0".into(),
        data_dir: dir.path().to_owned(),
        mysql_url: Some(Secret(url)),
        mysql_database: format!(
            "bmc_{}_{}",
            std::process::id(),
            rand::random::<u32>() % 1_000_000
        ),
        redis_url: Some(Secret(redis_url)),
        redis_prefix: format!("bmc:{}:{}:", std::process::id(), rand::random::<u32>()),
        draw_timeout_ms: 10_000,
        ..Config::default()
    };
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

    // Both nodes serve (their background jobs, the configuration follower among them,
    // run while they do).
    let (a_services, b_strategy) = (a.services.campaign.clone(), b.services.strategy.clone());
    let (a_strategy, b_campaign) = (a.services.strategy.clone(), b.services.campaign.clone());
    let b_store = b.services.store.mysql().unwrap().clone();
    let a_base = format!("http://127.0.0.1:{}", a.port());
    let mut stops = Vec::new();
    let mut servers = Vec::new();
    for app in [a, b] {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stops.push(stop);
        servers.push(tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        })));
    }
    let served = |strategy: &big_market_domain::strategy::StrategyService| {
        let s = strategy.catalog().get(100006).unwrap();
        let a101 = s.awards.iter().find(|x| x.award_id == 101).unwrap();
        (a101.award_title.clone(), a101.award_rate)
    };
    assert_eq!(served(&b_strategy).0, "随机积分");

    let mut doc = a_services
        .export(CampaignKey::Activity(100301))
        .await
        .unwrap();
    let award = doc
        .strategy
        .awards
        .iter_mut()
        .find(|x| x.award_id == 101)
        .unwrap();
    award.award_title = "新版随机积分".into();
    award.award_rate.0 = "0.5000".into();
    let i102 = doc
        .strategy
        .awards
        .iter()
        .position(|x| x.award_id == 102)
        .unwrap();
    doc.strategy.awards[i102].award_count += 40;

    // Applied over HTTP on node a, as an operator (loopback, no token: author `local`).
    let started = Instant::now();
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!("{a_base}/api/v1/raffle/admin/campaign/apply"))
        .json(&doc)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["code"], "0000", "{resp}");
    assert_eq!(resp["data"]["version"], 1);
    let wanted = ("新版随机积分".to_owned(), Decimal::new(5000, 4));
    assert_eq!(
        served(&a_strategy),
        wanted,
        "node a serves the new version at once"
    );
    while served(&b_strategy) != wanted {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "node b still serves {:?} after a second",
            served(&b_strategy)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The award's Redis counter moved by the delta (15 left + 40), shared by both nodes.
    let store = b_store;
    let key = big_market_adapters::redis_store::StockKey::Award {
        strategy_id: 100006,
        award_id: 102,
    };
    assert_eq!(
        store.redis_stock().unwrap().surplus(key).await.unwrap(),
        Some(55)
    );
    // Node b reads the same document and versions.
    assert_eq!(
        b_campaign
            .export(CampaignKey::Strategy(100006))
            .await
            .unwrap(),
        doc
    );
    let versions = b_campaign
        .versions(CampaignKey::Activity(100301))
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].author, "local");

    for stop in stops {
        let _ = stop.send(());
    }
    for server in servers {
        server.await.unwrap().unwrap();
    }
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
