//! Award delivery, sign-in rebates, credits and paying credits for draws.

use crate::helpers::{TestApp, by_code, code, concurrently, eventually, in_process_bus};
use big_market::Seams;
use big_market::consumers;
use big_market_domain::task::Consumer;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn credits(app: &TestApp, user: &str) -> f64 {
    let v = app
        .post_raw(
            &format!("activity/query_user_credit_account?userId={user}"),
            "",
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    v["data"].as_f64().unwrap()
}

async fn total_draws(app: &TestApp, user: &str, activity: i64) -> i64 {
    let v = app
        .post(
            "activity/query_user_activity_account",
            json!({"userId": user, "activityId": activity}),
        )
        .await;
    v["data"]["totalCount"].as_i64().unwrap()
}

#[tokio::test]
async fn sign_in_grants_a_draw_and_ten_points_once_a_day() {
    // A fixed clock: the second sign-in must fall on the same day, even at midnight.
    let (app, _clock) = TestApp::spawn_at("2026-11-26 10:00:00").await;
    let v = app
        .post_raw("activity/calendar_sign_rebate?userId=xiaofuge", "")
        .await;
    assert_eq!((code(&v), &v["data"]), ("0000", &json!(true)), "{v}");
    let v = app
        .post_raw("activity/calendar_sign_rebate?userId=xiaofuge", "")
        .await;
    assert_eq!(code(&v), "0003", "{v}");
    assert!(
        v["info"].as_str().unwrap().starts_with("唯一索引冲突"),
        "{v}"
    );
    // The parameter may also come as a form body, as Spring binds it.
    let v = app
        .post_raw("activity/is_calendar_sign_rebate", "userId=xiaofuge")
        .await;
    assert_eq!(v["data"], json!(true));
    let v = app
        .post_raw("activity/is_calendar_sign_rebate?userId=someone", "")
        .await;
    assert_eq!(v["data"], json!(false));

    eventually("sign-in rebates settled", || async {
        total_draws(&app, "xiaofuge", 100401).await == 1 && credits(&app, "xiaofuge").await == 10.0
    })
    .await;
    assert_eq!(
        app.count_rows("user_behavior_rebate_order", "user_id = 'xiaofuge'")
            .await,
        2
    );
    assert_eq!(
        app.count_rows(
            "raffle_activity_order",
            "user_id = 'xiaofuge' AND sku = 9901"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_sign_in_key_taken_by_another_order_is_parked_not_swallowed() {
    // The parked task is the outbox's: see `in_process_bus`.
    let (app, _clock) =
        TestApp::spawn_custom("2026-11-26 10:00:00", in_process_bus, Seams::default()).await;
    // Someone recharges under the key alice's sign-in SKU rebate will use. On
    // MariaDB/MySQL an order key is unique per shard table (upstream's layout), so the
    // other user is one whose rows share alice's table (`oscar`: database 1, table 1).
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": "oscar", "sku": 9011, "outBusinessNo": "alice_sku_20261126"}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let v = app
        .post_raw("activity/calendar_sign_rebate?userId=alice", "")
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    eventually("the SKU rebate parked with its reason", || async {
        app.count_rows(
            "task",
            "user_id = 'alice' AND topic = 'send_rebate'
               AND state = 'parked' AND last_error LIKE '%held by another order%'",
        )
        .await
            == 1
    })
    .await;
    eventually("the points rebate delivered", || async {
        credits(&app, "alice").await == 10.0
    })
    .await;
    assert_eq!(total_draws(&app, "alice", 100401).await, 0);
}

#[tokio::test]
async fn exchanging_points_for_draws() {
    let app = TestApp::spawn().await;
    assert_eq!(
        code(
            &app.post_raw("activity/calendar_sign_rebate?userId=kiss", "")
                .await
        ),
        "0000"
    );
    eventually("10 points", || async {
        credits(&app, "kiss").await == 10.0
    })
    .await;

    for _ in 0..2 {
        let v = app
            .post(
                "activity/credit_pay_exchange_sku",
                json!({"userId": "kiss", "sku": 9014}),
            )
            .await;
        assert_eq!((code(&v), &v["data"]), ("0000", &json!(true)), "{v}");
        // Each payment is delivered before the next exchange (no unpaid order is reused).
        eventually("payment delivered", || async {
            app.count_rows(
                "raffle_activity_order",
                "user_id = 'kiss' AND state = 'wait_pay'",
            )
            .await
                == 0
        })
        .await;
    }
    let v = app
        .post(
            "activity/credit_pay_exchange_sku",
            json!({"userId": "kiss", "sku": 9014}),
        )
        .await;
    assert_eq!(code(&v), "ERR_CREDIT_001", "{v}");
    assert_eq!(credits(&app, "kiss").await, 0.0);
    assert_eq!(total_draws(&app, "kiss", 100301).await, 2);
    // The refused exchange left nothing behind: no order, no SKU stock used.
    assert_eq!(
        app.count_rows("raffle_activity_order", "user_id = 'kiss' AND sku = 9014")
            .await,
        2
    );
    assert_eq!(app.sku_stock(9014).await.1, 99866 - 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_exchanges_never_overspend() {
    let app = TestApp::spawn().await;
    assert_eq!(
        code(
            &app.post_raw("activity/calendar_sign_rebate?userId=race", "")
                .await
        ),
        "0000"
    );
    eventually("10 points", || async {
        credits(&app, "race").await == 10.0
    })
    .await;
    let body = json!({"userId": "race", "sku": 9014});
    let results = concurrently(&app, "activity/credit_pay_exchange_sku", vec![body; 8]).await;
    let codes = by_code(&results);
    let paid = codes.get("0000").copied().unwrap_or(0) as i64;
    assert!((1..=2).contains(&paid), "{codes:?}");
    assert!(
        codes
            .keys()
            .all(|c| ["0000", "0003", "ERR_CREDIT_001"].contains(&c.as_str())),
        "{codes:?}"
    );
    eventually("payments delivered", || async {
        app.count_rows(
            "raffle_activity_order",
            "user_id = 'race' AND state = 'wait_pay'",
        )
        .await
            == 0
    })
    .await;
    let spent = 10.0 - credits(&app, "race").await;
    assert!((0.0..=10.0).contains(&spent));
    let orders = app
        .count_rows("raffle_activity_order", "user_id = 'race' AND sku = 9014")
        .await;
    assert_eq!(
        spent,
        5.0 * orders as f64,
        "draws delivered = points spent / 5"
    );
    assert_eq!(total_draws(&app, "race", 100301).await, orders);
    assert_eq!(
        app.count_rows(
            "user_credit_order",
            "user_id = 'race' AND trade_type = 'reverse'"
        )
        .await,
        orders
    );
}

#[tokio::test]
async fn every_consumer_is_idempotent() {
    // Settled when every task is completed: see `in_process_bus`.
    let app = TestApp::spawn_with(in_process_bus).await;
    // Produce one message of each topic and let them be delivered once.
    assert_eq!(
        code(
            &app.post_raw("activity/calendar_sign_rebate?userId=twice", "")
                .await
        ),
        "0000"
    );
    eventually("10 points", || async {
        credits(&app, "twice").await == 10.0
    })
    .await;
    assert_eq!(
        code(
            &app.post(
                "activity/credit_pay_exchange_sku",
                json!({"userId": "twice", "sku": 9014})
            )
            .await
        ),
        "0000"
    );
    assert_eq!(
        code(
            &app.post(
                "activity/sku_recharge",
                json!({"userId": "twice", "sku": 9013, "outBusinessNo": "t1"})
            )
            .await
        ),
        "0000"
    );
    for _ in 0..3 {
        assert_eq!(
            code(
                &app.post(
                    "activity/draw",
                    json!({"userId": "twice", "activityId": 100301})
                )
                .await
            ),
            "0000"
        );
    }
    eventually("all tasks completed", || async {
        app.count_rows("task", "state <> 'completed'").await == 0
    })
    .await;
    let snapshot = || async {
        (
            credits(&app, "twice").await,
            total_draws(&app, "twice", 100301).await,
            total_draws(&app, "twice", 100401).await,
            app.count_rows("user_credit_order", "").await,
            app.count_rows("raffle_activity_order", "").await,
            app.count_rows("user_award_record", "award_state = 'completed'")
                .await,
        )
    };
    let before = snapshot().await;

    let send_award = consumers::SendAward(app.award.clone());
    let send_rebate = consumers::SendRebate(app.rebate.clone());
    let credit_done = consumers::CreditAdjustSuccess(app.activity.clone());
    let consumers: [(&str, &dyn Consumer); 3] = [
        ("send_award", &send_award),
        ("send_rebate", &send_rebate),
        ("credit_adjust_success", &credit_done),
    ];
    for (topic, consumer) in consumers {
        let mut messages = app
            .texts(
                "task",
                "message",
                &format!("WHERE topic = '{topic}' ORDER BY id"),
            )
            .await;
        assert!(!messages.is_empty(), "{topic}");
        // Twice each, the second round in reverse order.
        let mut again = messages.clone();
        again.reverse();
        messages.extend(again);
        for m in messages {
            consumer
                .consume(&m)
                .await
                .unwrap_or_else(|e| panic!("{topic}: {e}"));
        }
    }
    assert_eq!(snapshot().await, before, "redelivery changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn credit_balances_are_the_sum_of_their_orders() {
    // Settled when every task is completed: see `in_process_bus`.
    let app = TestApp::spawn_with(in_process_bus).await;
    let users: Vec<String> = (0..12).map(|i| format!("load{i}")).collect();
    for u in &users {
        assert_eq!(
            code(
                &app.post(
                    "activity/sku_recharge",
                    json!({"userId": u, "sku": 9012, "outBusinessNo": format!("{u}-r")})
                )
                .await
            ),
            "0000"
        );
        assert_eq!(
            code(
                &app.post_raw(&format!("activity/calendar_sign_rebate?userId={u}"), "")
                    .await
            ),
            "0000"
        );
    }
    // The blacklist path (0.01–1 credits) too.
    assert_eq!(
        code(
            &app.post(
                "activity/sku_recharge",
                json!({"userId": "user001", "sku": 9012, "outBusinessNo": "bl"})
            )
            .await
        ),
        "0000"
    );
    let mut bodies: Vec<Value> = (0..240)
        .map(|i| json!({"userId": users[i % users.len()], "activityId": 100301}))
        .collect();
    bodies.extend((0..10).map(|_| json!({"userId": "user001", "activityId": 100301})));
    let results = concurrently(&app, "activity/draw", bodies).await;
    assert_eq!(by_code(&results), BTreeMap::from([("0000".into(), 250)]));
    eventually("all tasks completed", || async {
        app.count_rows("task", "state <> 'completed'").await == 0
    })
    .await;

    // Exact decimal sums, per user: available = all orders, total = forward orders.
    type Rows = Vec<(String, String, String)>;
    let triples = |rows: Vec<Vec<String>>| -> Rows {
        rows.into_iter()
            .map(|r| (r[0].clone(), r[1].clone(), r[2].clone()))
            .collect()
    };
    let accounts: Rows = triples(
        app.rows(
            "user_credit_account",
            &["user_id", "total_amount", "available_amount"],
            "",
        )
        .await,
    );
    let orders: Rows = triples(
        app.rows(
            "user_credit_order",
            &["user_id", "trade_type", "trade_amount"],
            "",
        )
        .await,
    );
    assert!(accounts.len() >= 13, "{}", accounts.len());
    let dec = |s: &str| s.parse::<rust_decimal::Decimal>().unwrap();
    for (user, total, available) in &accounts {
        let mine = orders.iter().filter(|o| &o.0 == user);
        let sum: rust_decimal::Decimal = mine.clone().map(|o| dec(&o.2)).sum();
        let forward: rust_decimal::Decimal =
            mine.filter(|o| o.1 == "forward").map(|o| dec(&o.2)).sum();
        assert_eq!(dec(available), sum, "{user}: available = sum of orders");
        assert_eq!(dec(total), forward, "{user}: total = sum of forward orders");
    }
    let credit_awards = app
        .count_rows(
            "user_award_record",
            "award_id = 101 AND award_state = 'completed'",
        )
        .await;
    assert!(credit_awards > 0);
    // Counted here, not in SQL: on MariaDB/MySQL the rows are spread over the shards.
    let credit_keys = app.texts("user_credit_order", "out_business_no", "").await;
    let with_one_order = app
        .texts(
            "user_award_record",
            "order_id",
            "WHERE award_id = 101 AND award_state = 'completed'",
        )
        .await
        .iter()
        .filter(|order| {
            let key = format!("award_{order}");
            credit_keys.iter().filter(|k| **k == key).count() == 1
        })
        .count() as i64;
    assert_eq!(
        with_one_order, credit_awards,
        "every completed credit award has exactly one order"
    );
    // Blacklisted user001 got 0.01–1 per draw.
    let bl = credits(&app, "user001").await;
    assert!((0.1..=10.0).contains(&bl), "{bl}");
    // No credit award is left undelivered; the other awards wait with a reason.
    let v = app.get("erp/query_undelivered_award_list?limit=1000").await;
    for a in v["data"].as_array().unwrap() {
        assert_ne!(a["awardId"], 101, "{a}");
        assert!(
            a["note"].as_str().unwrap().contains("not configured")
                || a["note"].as_str().unwrap().contains("no distributor"),
            "{a}"
        );
    }
}

/// A stand-in for the external account service: answers `code` and records calls.
async fn account_service(
    code: Arc<Mutex<&'static str>>,
    calls: Arc<Mutex<Vec<(Value, String)>>>,
) -> String {
    account_service_after(Duration::ZERO, code, calls).await
}

/// The account service, answering each call only after `delay`.
async fn account_service_after(
    delay: Duration,
    code: Arc<Mutex<&'static str>>,
    calls: Arc<Mutex<Vec<(Value, String)>>>,
) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/api/v1/account/adjust_quota",
        post(move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
            let (code, calls) = (code.clone(), calls.clone());
            async move {
                let key = headers.get("Idempotency-Key").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                calls.lock().unwrap().push((body, key));
                tokio::time::sleep(delay).await;
                let c = *code.lock().unwrap();
                axum::Json(json!({"code": c, "info": "", "data": {"totalQuota": 1, "surplusQuota": 1}}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn openai_use_count_prizes_go_through_the_account_service_with_retries() {
    let answer = Arc::new(Mutex::new("0001"));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let url = account_service(answer.clone(), calls.clone()).await;
    // Retries and parking are the outbox's: see `in_process_bus`.
    let app = TestApp::spawn_with(|c| {
        in_process_bus(c);
        c.openai.api_host = Some(url);
        c.openai.app_token = big_market::config::Secret("secret-token".into());
        c.outbox.interval_secs = 1;
        c.outbox.retry_base_secs = 1;
        c.outbox.stale_secs = 3;
        c.openai.timeout_ms = 400;
    })
    .await;
    // Strategy 10007 (activity 100401): 80% award 110, an openai_use_count of 1.
    assert_eq!(
        code(
            &app.post(
                "activity/sku_recharge",
                json!({"userId": "oa", "sku": 9903, "outBusinessNo": "oa"})
            )
            .await
        ),
        "0000"
    );
    let mut won_110 = Vec::new();
    for _ in 0..10 {
        let v = app
            .post(
                "activity/draw",
                json!({"userId": "oa", "activityId": 100401}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
        if v["data"]["awardId"] == 110 {
            won_110.push(());
        }
    }
    assert!(!won_110.is_empty(), "10 draws at 80% give at least one 110");
    // The service refuses: records stay `create`, tasks wait for a retry.
    eventually("failed attempts recorded", || async {
        app.count_rows("task", "state = 'fail' AND attempts >= 1")
            .await
            >= 1
    })
    .await;
    assert_eq!(
        app.count_rows(
            "user_award_record",
            "award_id = 110 AND award_state = 'completed'"
        )
        .await,
        0
    );
    // It recovers: the compensation job delivers every one of them.
    *answer.lock().unwrap() = "0000";
    let expected = won_110.len() as i64;
    eventually("openai prizes delivered", || async {
        app.count_rows(
            "user_award_record",
            "award_id = 110 AND award_state = 'completed'",
        )
        .await
            == expected
    })
    .await;
    // A redelivered message of a completed prize does not call the service again.
    let before = calls.lock().unwrap().len();
    let order_id = app
        .texts(
            "user_award_record",
            "order_id",
            "WHERE award_id = 110 AND award_state = 'completed'",
        )
        .await
        .remove(0);
    let again = app
        .award
        .deliver(&big_market_domain::award::SendAwardMessage {
            award_config: None,
            award_id: 110,
            award_title: "1次使用次数".into(),
            order_id,
            user_id: "oa".into(),
        })
        .await
        .unwrap();
    assert_eq!(again.as_deref(), Some("delivered before"));
    assert_eq!(calls.lock().unwrap().len(), before);
    let calls = calls.lock().unwrap().clone();
    let last = &calls.last().unwrap().0;
    assert_eq!(last["openid"], "oa");
    assert_eq!(last["appToken"], "secret-token");
    assert!(last["increaseQuota"].as_i64().unwrap() >= 1);
    assert!(
        calls.iter().all(|(_, key)| key.len() == 12),
        "idempotency key = the raffle order id"
    );
}

/// Draws in activity 900200, whose only prize is award 110 (an `openai_use_count`).
async fn only_openai_prizes(app: &TestApp, user: &str, draws: usize) {
    only_prize(app, 110, user, draws).await;
}

/// Draws in activity 900200, whose only prize is `award_id`.
async fn only_prize(app: &TestApp, award_id: i32, user: &str, draws: usize) {
    app.config_sql(&format!(
        "INSERT INTO strategy (strategy_id, strategy_desc) VALUES (900200, 'one prize');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, sort)
           VALUES (900200, {award_id}, 'the prize', 100, 100, '1.0000', 1);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES (900200, 'p', 'p', '2020-01-01 00:00:00', '2099-01-01 00:00:00', 900200, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count) VALUES (990200, 50, 50, 50);
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES (990200, 900200, 990200, 10, 10, '1.00');"
    ))
    .await;
    assert_eq!(
        code(&app.get("activity/armory?activityId=900200").await),
        "0000"
    );
    let recharge = app
        .post(
            "activity/sku_recharge",
            json!({"userId": user, "sku": 990200, "outBusinessNo": user}),
        )
        .await;
    assert_eq!(code(&recharge), "0000", "{recharge}");
    for _ in 0..draws {
        let v = app
            .post(
                "activity/draw",
                json!({"userId": user, "activityId": 900200}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
    }
}

#[tokio::test]
async fn a_slow_delivery_is_never_sent_twice_at_once() {
    // Each call takes 1.5 s and the compensation job looks every second: the tasks are
    // in flight through several of its runs, and it must leave them to their sender
    // (the lease of 4 s covers the dispatcher's send, cut off at 2 s).
    let calls = Arc::new(Mutex::new(Vec::new()));
    let url = account_service_after(
        Duration::from_millis(1500),
        Arc::new(Mutex::new("0000")),
        calls.clone(),
    )
    .await;
    let app = TestApp::spawn_with(|c| {
        c.openai.api_host = Some(url);
        c.openai.timeout_ms = 1800;
        c.outbox.interval_secs = 1;
        c.outbox.stale_secs = 4;
    })
    .await;
    only_openai_prizes(&app, "slow", 6).await;
    eventually("prizes delivered", || async {
        app.count_rows("user_award_record", "award_state = 'completed'")
            .await
            == 6
    })
    .await;
    // The sender records the task after the prize's effect committed: wait for that.
    eventually("tasks completed", || async {
        app.count_rows("task", "state = 'completed'").await == 6
    })
    .await;
    let calls = calls.lock().unwrap().clone();
    let mut keys: Vec<&str> = calls.iter().map(|(_, k)| k.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!((calls.len(), keys.len()), (6, 6), "one call per prize");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_due_task_is_claimed_by_exactly_one_sender() {
    use big_market_domain::task::TaskOutcome;
    let calls = Arc::new(Mutex::new(Vec::new()));
    let url = account_service(Arc::new(Mutex::new("0001")), calls.clone()).await;
    // Retries and parking are the outbox's: see `in_process_bus`.
    let app = TestApp::spawn_with(|c| {
        in_process_bus(c);
        c.openai.api_host = Some(url);
        c.openai.timeout_ms = 400;
        c.outbox.interval_secs = 3600; // the test is the only compensation here
    })
    .await;
    only_openai_prizes(&app, "claim", 1).await;
    eventually("first attempt failed", || async {
        app.count_rows("task", "state = 'fail'").await == 1
    })
    .await;
    // Due a second ago (each store compares with its own clock).
    let mysql = app.is_mysql();
    app.user_sql("task", None, |t| {
        if mysql {
            format!("UPDATE {t} SET next_attempt_time = NOW(3) - INTERVAL 1 SECOND")
        } else {
            format!(
                "UPDATE {t} SET next_attempt_time = strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 seconds')"
            )
        }
    })
    .await;
    let store = app.tasks();
    let due = store.due_tasks(10, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    let id = due[0].message_id.clone();
    let claims = futures_join(32, |_| {
        let (store, id) = (store.clone(), id.clone());
        async move { store.claim(&id, 10).await.unwrap() }
    })
    .await;
    let won: Vec<_> = claims.into_iter().flatten().collect();
    assert_eq!(won.len(), 1, "one sender wins");
    let lease = won[0].lease.clone();
    assert!(lease.is_some(), "a claim carries its lease");
    let retry = TaskOutcome::Retry {
        error: "late".into(),
        retry_after_secs: 1,
    };
    // A sender whose lease was taken over (here: the dispatcher, lease `None`) records
    // nothing: it cannot shorten the claimant's lease.
    store.record(&id, None, &retry).await.unwrap();
    let row = store.task(&id).await.unwrap().unwrap();
    assert_eq!((row.attempts, &row.lease), (1, &lease));
    // The claimant records; a late failure report never overwrites its delivery.
    store
        .record(&id, lease.as_deref(), &TaskOutcome::Completed(None))
        .await
        .unwrap();
    store.record(&id, lease.as_deref(), &retry).await.unwrap();
    assert_eq!(store.task(&id).await.unwrap().unwrap().state, "completed");
    assert!(store.claim(&id, 10).await.unwrap().is_none());
}

/// Runs `n` futures at once on the runtime's threads and collects their results.
async fn futures_join<F, Fut, T>(n: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_task_that_keeps_failing_is_parked_not_looped() {
    let answer = Arc::new(Mutex::new("0001"));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let url = account_service(answer.clone(), calls.clone()).await;
    // Retries and parking are the outbox's: see `in_process_bus`.
    let app = TestApp::spawn_with(|c| {
        in_process_bus(c);
        c.openai.api_host = Some(url);
        c.outbox.interval_secs = 1;
        c.outbox.retry_base_secs = 1;
        c.outbox.max_attempts = 2;
    })
    .await;
    only_openai_prizes(&app, "pk", 1).await;
    eventually("task parked", || async {
        app.count_rows("task", "state = 'parked' AND attempts = 2")
            .await
            == 1
    })
    .await;
    let n = calls.lock().unwrap().len();
    assert_eq!(n, 2, "exactly max_attempts calls");
    let v = app.get("erp/query_undelivered_award_list").await;
    assert_eq!(v["data"][0]["awardId"], 110, "{v}");
    assert!(
        v["data"][0]["note"]
            .as_str()
            .unwrap()
            .contains("account service"),
        "the reason is kept: {v}"
    );
    // The operator sees why, fixes the cause and sends it again.
    let v = app.get("erp/query_parked_task_list").await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["data"][0]["topic"], "send_award");
    assert!(v["data"][0]["lastError"].as_str().unwrap().len() > 4, "{v}");
    let message_id = v["data"][0]["messageId"].as_str().unwrap().to_owned();
    *answer.lock().unwrap() = "0000";
    let v = app
        .post("erp/requeue_task", json!({"messageId": message_id}))
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    eventually("requeued task delivered", || async {
        app.count_rows("user_award_record", "award_state = 'completed'")
            .await
            == 1
    })
    .await;
    assert_eq!(calls.lock().unwrap().len(), 3);
    for body in [
        json!({"messageId": message_id}),
        json!({"messageId": "nope"}),
        json!({}),
    ] {
        let v = app.post("erp/requeue_task", body).await;
        assert_eq!(code(&v), "0002", "only a parked task: {v}");
    }
}

#[tokio::test]
async fn an_undelivered_award_can_be_redelivered() {
    // Settled when every task is completed: see `in_process_bus`.
    let app = TestApp::spawn_with(in_process_bus).await;
    // Award 105 is an `openai_model`: no distributor, kept `create` with the reason.
    only_prize(&app, 105, "rd", 1).await;
    eventually("noted", || async {
        app.count_rows("task", "state = 'completed'").await == 1
    })
    .await;
    let v = app.get("erp/query_undelivered_award_list").await;
    let order_id = v["data"][0]["orderId"].as_str().unwrap().to_owned();
    let v = app
        .post(
            "erp/redeliver_award",
            json!({"userId": "rd", "orderId": order_id}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    // Sent again: the consumer ran and completed the task with its note once more.
    eventually("sent again", || async {
        app.count_rows(
            "task",
            "state = 'completed'
               AND last_error LIKE 'no distributor%'",
        )
        .await
            == 1
    })
    .await;
    for body in [
        json!({"userId": "rd", "orderId": "000000000000"}),
        json!({"userId": "other", "orderId": order_id}),
        json!({"orderId": order_id}),
    ] {
        let v = app.post("erp/redeliver_award", body).await;
        assert_eq!(code(&v), "0002", "{v}");
    }
}

#[tokio::test]
async fn payment_rebate_needs_a_valid_app_token() {
    let app = TestApp::spawn_with(|c| {
        c.http.app_tokens.insert(
            "chatgpt-data".into(),
            big_market::config::Secret("tok-1".into()),
        );
    })
    .await;
    let req = |token: &str, no: &str| json!({"appId": "chatgpt-data", "appToken": token, "data": {"userId": "payer", "behaviorType": "OPENAI_PAY", "outBusinessNo": no}});
    let v = app
        .post("activity/behavior_rebate", req("wrong", "p-1"))
        .await;
    assert_eq!(code(&v), "0008", "{v}");
    let v = app
        .post("activity/behavior_rebate", req("tok-1", "p-1"))
        .await;
    assert_eq!((code(&v), &v["data"]), ("0000", &json!(true)), "{v}");
    let v = app
        .post("activity/behavior_rebate", req("tok-1", "p-1"))
        .await;
    assert_eq!(code(&v), "0003", "{v}");
    eventually("payment rebate settled", || async {
        credits(&app, "payer").await == 10.0 && total_draws(&app, "payer", 100401).await == 1
    })
    .await;
    // Long user ids and outside numbers make a bizId over the 64 characters an order
    // key holds (40 + 40), or over the 128 of `biz_id` itself (128 + 128): each still
    // settles, once.
    for (user, no) in [
        ("u".repeat(40), "n".repeat(40)),
        ("v".repeat(128), "m".repeat(128)),
    ] {
        let body = json!({"appId": "chatgpt-data", "appToken": "tok-1", "data": {"userId": user, "behaviorType": "OPENAI_PAY", "outBusinessNo": no}});
        let v = app.post("activity/behavior_rebate", body.clone()).await;
        assert_eq!(code(&v), "0000", "{v}");
        let v = app.post("activity/behavior_rebate", body).await;
        assert_eq!(code(&v), "0003", "{v}");
        eventually("long rebate settled", || async {
            credits(&app, &user).await == 10.0 && total_draws(&app, &user, 100401).await == 1
        })
        .await;
    }
    eventually("every task delivered, none parked", || async {
        app.count_rows("task", "state <> 'completed'").await == 0
    })
    .await;
}

#[tokio::test]
async fn rebate_and_credit_endpoints_reject_bad_input() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, &str, &str)> = vec![
        ("activity/calendar_sign_rebate", "", "0002"),
        ("activity/calendar_sign_rebate?userId=", "", "0002"),
        ("activity/is_calendar_sign_rebate", "", "0002"),
        ("activity/query_user_credit_account", "", "0002"),
        ("activity/credit_pay_exchange_sku", "", "0002"),
        ("activity/credit_pay_exchange_sku", "{", "0002"),
        (
            "activity/credit_pay_exchange_sku",
            r#"{"userId": "u"}"#,
            "0002",
        ),
        (
            "activity/credit_pay_exchange_sku",
            r#"{"sku": 9014}"#,
            "0002",
        ),
        (
            "activity/credit_pay_exchange_sku",
            r#"{"userId": "u", "sku": "x"}"#,
            "0002",
        ),
        (
            "activity/credit_pay_exchange_sku",
            r#"{"userId": "u", "sku": 1}"#,
            "0002",
        ),
        (
            "activity/credit_pay_exchange_sku",
            r#"{"userId": "nopoints", "sku": 9014}"#,
            "ERR_CREDIT_001",
        ),
        ("activity/behavior_rebate", "{}", "0002"),
        (
            "activity/behavior_rebate",
            r#"{"appId": "a", "appToken": "t"}"#,
            "0002",
        ),
        (
            "activity/behavior_rebate",
            r#"{"appId": "a", "appToken": "t", "data": {"userId": "u", "behaviorType": "sign"}}"#,
            "0002",
        ),
        (
            "activity/behavior_rebate",
            r#"{"appId": "a", "appToken": "t", "data": {"userId": "u", "behaviorType": "dance", "outBusinessNo": "1"}}"#,
            "0008",
        ),
    ];
    for (path, body, want) in cases {
        let v = app.post_raw(path, body).await;
        assert_eq!(code(&v), want, "{path} {body}: {v}");
        assert!(v["info"].as_str().unwrap().len() > 4, "{v}");
    }
    // A body over the 2 MB limit is refused in the envelope, not with a bare 413.
    let huge = format!("userId={}", "x".repeat(3 << 20));
    for path in [
        "activity/calendar_sign_rebate",
        "activity/query_user_credit_account",
        "activity/credit_pay_exchange_sku",
    ] {
        let v = app.post_raw(path, &huge).await;
        assert_eq!(code(&v), "0002", "{path}: {v}");
    }
    let v = app.get("erp/query_undelivered_award_list?limit=0").await;
    assert_eq!(code(&v), "0002");
    assert_eq!(credits(&app, "nobody").await, 0.0);
}

#[cfg(feature = "production-tests")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_amqp_url_tasks_go_through_rabbitmq() {
    let url = std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into());
    let prefix = format!(
        "bmt{}_{}.",
        std::process::id(),
        rand::random::<u32>() % 1_000_000
    );
    let app = TestApp::spawn_with(|c| {
        c.amqp.url = Some(big_market::config::Secret(url));
        c.amqp.prefix = prefix;
    })
    .await;
    assert!(
        app.amqp.is_some(),
        "the bus is RabbitMQ, not the in-process one"
    );
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": "mq", "sku": 9011, "outBusinessNo": "mq-1"}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    for _ in 0..10 {
        let v = app
            .post(
                "activity/draw",
                json!({"userId": "mq", "activityId": 100301}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
    }
    // Published (task completed on the broker's confirm) and consumed from the queue:
    // every award record is delivered, or kept with the consumer's reason.
    eventually("every task published", || async {
        app.count_rows("task", "state <> 'completed'").await == 0
    })
    .await;
    eventually("every award handled by the RabbitMQ consumer", || async {
        app.count_rows(
            "user_award_record",
            "award_state = 'create' AND delivery_note IS NULL",
        )
        .await
            == 0
    })
    .await;
    assert_eq!(app.count_rows("user_award_record", "").await, 10);
    app.stop_and_delete_amqp_queues().await;
}

/// Without a broker, the embedded store delivers a credit prize in the draw's own
/// transaction: when the draw answers, the record is `completed`, the credits and their
/// order are there, and the task is `completed` with the delivery's note. With RabbitMQ
/// (the production backend here) the outbox delivers it shortly after.
#[tokio::test]
async fn credit_prizes_are_delivered_with_their_draw_when_delivery_runs_in_process() {
    let app = TestApp::spawn().await;
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": "inline", "sku": 9011, "outBusinessNo": "inline-1"}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let mut credited_draws = 0;
    for _ in 0..6 {
        let v = app
            .post(
                "activity/draw",
                json!({"userId": "inline", "activityId": 100301}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
        if v["data"]["awardId"] == 101 {
            credited_draws += 1;
        }
    }
    assert!(
        credited_draws > 0,
        "a new user's draws end on the credit award 101"
    );
    let records_completed = || async {
        app.count_rows(
            "user_award_record",
            "user_id = 'inline' AND award_id = 101 AND award_state = 'completed'",
        )
        .await
    };
    if app.is_mysql() {
        eventually("credit prizes delivered through the broker", || async {
            records_completed().await == credited_draws
        })
        .await;
    } else {
        // No waiting: the draw's answer came after the commit that delivered it.
        assert_eq!(records_completed().await, credited_draws);
        assert_eq!(
            app.count_rows(
                "task",
                "user_id = 'inline' AND topic = 'send_award' AND state = 'completed'
                   AND last_error LIKE 'credited %'",
            )
            .await,
            credited_draws
        );
    }
    assert_eq!(
        app.count_rows("user_credit_order", "user_id = 'inline'")
            .await,
        credited_draws
    );
    let sum: f64 = app
        .texts(
            "user_credit_order",
            "trade_amount",
            "WHERE user_id = 'inline'",
        )
        .await
        .iter()
        .map(|a| a.parse::<f64>().unwrap())
        .sum();
    assert!((credits(&app, "inline").await - sum).abs() < 1e-9);
}
