//! A subscriber whose connection is killed reconnects and asks for a resync. Its own
//! test binary: it kills a server-side connection, and the tests of one binary run in
//! parallel.
//!
//! Compiled only with `--features production-tests`.
#![cfg(feature = "production-tests")]

mod redis_common;

use big_market_adapters::redis_store::Notice;
use redis_common::{TestRedis, WAIT};
use std::collections::HashSet;
use tokio::time::timeout;

/// Ids of the server's pub/sub connections.
async fn pubsub_clients(redis: &TestRedis) -> HashSet<String> {
    let mut conn = redis.conn.clone();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .expect("client list");
    list.lines()
        .filter_map(|line| line.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn subscriber_reconnects_after_its_connection_is_killed() {
    let redis = TestRedis::start().await;
    let invalidation = redis.invalidation();
    let before = pubsub_clients(&redis).await;
    let mut sub = invalidation.subscribe().await.unwrap();
    let ours: Vec<String> = pubsub_clients(&redis)
        .await
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(ours.len(), 1, "found the subscriber's connection");

    let mut conn = redis.conn.clone();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&ours[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(killed, 1);

    let notice = timeout(WAIT, sub.recv())
        .await
        .expect("resubscribed in time");
    assert_eq!(notice, Some(Notice::Resync), "a gap means drop everything");
    assert_eq!(invalidation.publish("activity", 100301).await.unwrap(), 1);
    match timeout(WAIT, sub.recv()).await.expect("delivered in time") {
        Some(Notice::Invalidate(e)) => assert_eq!((e.kind.as_str(), e.id), ("activity", 100301)),
        other => panic!("unexpected {other:?}"),
    }
    redis.cleanup().await;
}
