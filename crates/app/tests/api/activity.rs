use crate::helpers::{TestApp, by_code, code, concurrently};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// A test activity 900100 (strategy 900100) with SKU 990100 granting
/// total/day/month = `t/d/m`, SKU stock `stock`, and award 102 (rate 1, stock `award_stock`,
/// tree_luck_award) with the zero-rate luck award 101.
async fn test_activity(app: &TestApp, t: i64, d: i64, m: i64, stock: i64, award_stock: i64) {
    let sql = format!(
        "INSERT INTO strategy (strategy_id, strategy_desc, rule_models) VALUES (900100, 'test', NULL);
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES (900100, 102, 'scarce', {award_stock}, {award_stock}, '1.0000', 'tree_luck_award', 1),
                  (900100, 101, 'luck', 0, 0, '0.0000', NULL, 2);
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES (900100, 'test activity', 'test', '2020-01-01 00:00:00', '2099-01-01 00:00:00', 900100, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count) VALUES (990100, {t}, {d}, {m});
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES (990100, 900100, 990100, {stock}, {stock}, '1.00');"
    );
    app.config_sql(&sql).await;
    let v = app.get("activity/armory?activityId=900100").await;
    assert_eq!(code(&v), "0000", "{v}");
}

async fn recharge(app: &TestApp, user: &str, sku: i64, key: &str) -> Value {
    app.post(
        "activity/sku_recharge",
        json!({"userId": user, "sku": sku, "outBusinessNo": key}),
    )
    .await
}

async fn account(app: &TestApp, user: &str, activity: i64) -> Value {
    let v = app
        .post(
            "activity/query_user_activity_account",
            json!({"userId": user, "activityId": activity}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    v["data"].clone()
}

#[tokio::test]
async fn recharge_then_draw_end_to_end() {
    let app = TestApp::spawn().await;
    assert_eq!(
        code(&app.get("activity/armory?activityId=100301").await),
        "0000"
    );
    let v = recharge(&app, "xiaofuge", 9013, "biz-1").await;
    assert_eq!(code(&v), "0000", "{v}");
    let order_id = v["data"].as_str().unwrap().to_owned();
    assert_eq!(order_id.len(), 12);
    assert!(order_id.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(
        account(&app, "xiaofuge", 100301).await,
        json!({"totalCount":5,"totalCountSurplus":5,"dayCount":5,"dayCountSurplus":5,"monthCount":5,"monthCountSurplus":5})
    );

    let v = app
        .post(
            "activity/draw",
            json!({"userId": "xiaofuge", "activityId": 100301}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let award = v["data"]["awardId"].as_i64().unwrap();
    assert!((101..=108).contains(&award), "{v}");
    assert!(v["data"]["awardTitle"].is_string() && v["data"]["awardIndex"].is_i64());
    assert_eq!(
        account(&app, "xiaofuge", 100301).await,
        json!({"totalCount":5,"totalCountSurplus":4,"dayCount":5,"dayCountSurplus":4,"monthCount":5,"monthCountSurplus":4})
    );
    // The draw wrote one used raffle order, one award record and one send_award task
    // (which the outbox then delivers, so their states move on).
    assert_eq!(
        app.count_rows("user_raffle_order", "order_state = 'used'")
            .await,
        1
    );
    assert_eq!(app.count_rows("user_award_record", "").await, 1);
    assert_eq!(app.count_rows("task", "topic = 'send_award'").await, 1);
    let messages = app
        .texts("task", "message", "WHERE topic = 'send_award'")
        .await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m: Value = serde_json::from_str(&messages[0]).unwrap();
    assert_eq!(m["data"]["userId"], "xiaofuge");
    assert_eq!(m["data"]["awardId"], award);
    assert_eq!(m["id"].as_str().unwrap().len(), 11);
    assert!(m["timestamp"].is_i64());

    // Weight and award-list queries now see the real counts.
    let w = app
        .post(
            "strategy/query_raffle_strategy_rule_weight",
            json!({"userId": "xiaofuge", "activityId": 100301}),
        )
        .await;
    assert_eq!(w["data"][0]["userActivityAccountTotalUseCount"], 1);
    let l = app
        .post(
            "strategy/query_raffle_award_list",
            json!({"userId": "xiaofuge", "activityId": 100301}),
        )
        .await;
    let a107 = l["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["awardId"] == 107)
        .unwrap()
        .clone();
    assert_eq!(
        (&a107["isAwardUnlock"], &a107["waitUnLockCount"]),
        (&json!(true), &json!(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_recharges_with_one_key_grant_once() {
    let app = TestApp::spawn().await;
    let body = json!({"userId": "lun", "sku": 9011, "outBusinessNo": "same-key"});
    let results = concurrently(&app, "activity/sku_recharge", vec![body; 64]).await;
    let codes = by_code(&results);
    assert_eq!(
        codes,
        BTreeMap::from([("0000".into(), 1), ("0003".into(), 63)]),
        "{codes:?}"
    );
    assert_eq!(
        app.count_rows("raffle_activity_order", "out_business_no = 'same-key'")
            .await,
        1
    );
    assert_eq!(
        account(&app, "lun", 100301).await["totalCount"],
        150,
        "granted once"
    );
    assert_eq!(
        app.sku_stock(9011).await.1,
        99886,
        "one unit of SKU stock used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sku_stock_is_never_oversold() {
    let app = TestApp::spawn().await;
    test_activity(&app, 1, 1, 1, 20, 1).await;
    let bodies = (0..100)
        .map(
            |i| json!({"userId": format!("u{i}"), "sku": 990100, "outBusinessNo": format!("k{i}")}),
        )
        .collect();
    let results = concurrently(&app, "activity/sku_recharge", bodies).await;
    let codes = by_code(&results);
    assert_eq!(
        codes,
        BTreeMap::from([("0000".into(), 20), ("ERR_BIZ_005".into(), 80)]),
        "{codes:?}"
    );
    assert_eq!(
        app.count_rows("raffle_activity_order", "sku = 990100")
            .await,
        20
    );
    assert_eq!(app.sku_stock(990100).await.1, 0);
    // The list shows the stored surplus.
    let v = app
        .post_raw(
            "activity/query_sku_product_list_by_activity_id?activityId=900100",
            "",
        )
        .await;
    assert_eq!(v["data"][0]["stockCountSurplus"], 0, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_draws_spend_exactly_the_quota() {
    let app = TestApp::spawn().await;
    // Total-limited: Q = 5 (SKU 9013), 20 parallel draws.
    assert_eq!(code(&recharge(&app, "q", 9013, "q-1").await), "0000");
    let body = json!({"userId": "q", "activityId": 100301});
    let results = concurrently(&app, "activity/draw", vec![body; 20]).await;
    assert_eq!(
        by_code(&results),
        BTreeMap::from([("0000".into(), 5), ("ERR_BIZ_006".into(), 15)])
    );
    let v = account(&app, "q", 100301).await;
    assert_eq!(
        (
            &v["totalCountSurplus"],
            &v["dayCountSurplus"],
            &v["monthCountSurplus"]
        ),
        (&json!(0), &json!(0), &json!(0))
    );
    assert_eq!(
        app.count_rows(
            "user_raffle_order",
            "user_id = 'q' AND order_state = 'used'"
        )
        .await,
        5
    );
    assert_eq!(
        app.count_rows("user_raffle_order", "user_id = 'q'").await,
        5
    );
    assert_eq!(
        app.count_rows("user_award_record", "user_id = 'q'").await,
        5
    );
    assert_eq!(app.count_rows("task", "user_id = 'q'").await, 5);
    let orders: HashSet<String> = app
        .texts("user_award_record", "order_id", "WHERE user_id = 'q'")
        .await
        .into_iter()
        .collect();
    assert_eq!(orders.len(), 5, "one award record per raffle order");

    // Day-limited: total 10, day 3.
    test_activity(&app, 10, 3, 10, 100, 1000).await;
    assert_eq!(code(&recharge(&app, "d", 990100, "d-1").await), "0000");
    let body = json!({"userId": "d", "activityId": 900100});
    let results = concurrently(&app, "activity/draw", vec![body; 12]).await;
    assert_eq!(
        by_code(&results),
        BTreeMap::from([("0000".into(), 3), ("ERR_BIZ_008".into(), 9)])
    );
    let v = account(&app, "d", 900100).await;
    assert_eq!(
        (&v["totalCountSurplus"], &v["dayCountSurplus"]),
        (&json!(7), &json!(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn award_stock_is_exact_under_parallel_draws() {
    let app = TestApp::spawn().await;
    test_activity(&app, 4, 4, 4, 1000, 37).await;
    for i in 0..30 {
        assert_eq!(
            code(&recharge(&app, &format!("p{i}"), 990100, &format!("p{i}")).await),
            "0000"
        );
    }
    let bodies = (0..120)
        .map(|i| json!({"userId": format!("p{}", i % 30), "activityId": 900100}))
        .collect();
    let results = concurrently(&app, "activity/draw", bodies).await;
    assert_eq!(by_code(&results), BTreeMap::from([("0000".into(), 120)]));
    let mut awards: BTreeMap<i64, usize> = BTreeMap::new();
    for v in &results {
        *awards
            .entry(v["data"]["awardId"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        awards,
        BTreeMap::from([(101, 83), (102, 37)]),
        "exactly the stock, the rest the luck award"
    );
    assert_eq!(app.award_stock(900100, 102).await, (37, 0));
    assert_eq!(
        app.count_rows("user_award_record", "award_id = 102").await,
        37
    );
}

#[tokio::test]
async fn day_and_month_quota_start_again_and_totals_carry_on() {
    let (app, clock) = TestApp::spawn_at("2026-11-29 10:00:00").await;
    test_activity(&app, 10, 2, 5, 100, 1000).await;
    assert_eq!(code(&recharge(&app, "t", 990100, "t-1").await), "0000");
    let draw = || {
        app.post(
            "activity/draw",
            json!({"userId": "t", "activityId": 900100}),
        )
    };
    let mut codes = Vec::new();
    for day in [
        "2026-11-29 10:00:00",
        "2026-11-30 23:59:59",
        "2026-12-01 00:00:00",
        "2026-12-02 08:00:00",
    ] {
        clock.set(crate::helpers::zoned(day));
        for _ in 0..3 {
            codes.push(code(&draw().await).to_owned());
        }
    }
    assert_eq!(
        codes,
        vec![
            // Nov 29: day quota 2.
            "0000",
            "0000",
            "ERR_BIZ_008",
            // Nov 30: a new day row (2); the month row (5) has 1 left after this.
            "0000",
            "0000",
            "ERR_BIZ_008",
            // Dec 1: a new month and day: 2 more; total used 6 of 10.
            "0000",
            "0000",
            "ERR_BIZ_008",
            // Dec 2: total left 4, day 2.
            "0000",
            "0000",
            "ERR_BIZ_008",
        ]
    );
    let v = account(&app, "t", 900100).await;
    assert_eq!(
        (&v["totalCount"], &v["totalCountSurplus"]),
        (&json!(10), &json!(2))
    );
    assert_eq!(
        (&v["dayCount"], &v["dayCountSurplus"]),
        (&json!(2), &json!(0))
    );
    assert_eq!(
        (&v["monthCount"], &v["monthCountSurplus"]),
        (&json!(5), &json!(1))
    );
}

#[tokio::test]
async fn month_quota_limits_within_a_month() {
    let (app, clock) = TestApp::spawn_at("2026-11-01 10:00:00").await;
    test_activity(&app, 10, 2, 3, 100, 1000).await;
    assert_eq!(code(&recharge(&app, "m", 990100, "m-1").await), "0000");
    let mut codes = Vec::new();
    for day in ["2026-11-01 10:00:00", "2026-11-02 10:00:00"] {
        clock.set(crate::helpers::zoned(day));
        for _ in 0..2 {
            codes.push(
                code(
                    &app.post(
                        "activity/draw",
                        json!({"userId": "m", "activityId": 900100}),
                    )
                    .await,
                )
                .to_owned(),
            );
        }
    }
    assert_eq!(codes, vec!["0000", "0000", "0000", "ERR_BIZ_007"]);
}

#[tokio::test]
async fn activity_state_and_dates_are_checked() {
    let (app, clock) = TestApp::spawn_at("2026-11-25 10:00:00").await;
    test_activity(&app, 10, 10, 10, 100, 10).await;
    assert_eq!(code(&recharge(&app, "s", 990100, "s-1").await), "0000");
    clock.set(crate::helpers::zoned("2099-02-01 00:00:00"));
    let v = app
        .post(
            "activity/draw",
            json!({"userId": "s", "activityId": 900100}),
        )
        .await;
    assert_eq!(code(&v), "ERR_BIZ_004", "{v}");
    assert_eq!(
        code(&recharge(&app, "s", 990100, "s-2").await),
        "ERR_BIZ_004"
    );
    clock.set(crate::helpers::zoned("2026-11-25 10:00:00"));
    app.config_sql("UPDATE raffle_activity SET state = 'close' WHERE activity_id = 900100")
        .await;
    assert_eq!(
        code(&app.get("activity/armory?activityId=900100").await),
        "0000"
    );
    let v = app
        .post(
            "activity/draw",
            json!({"userId": "s", "activityId": 900100}),
        )
        .await;
    assert_eq!(code(&v), "ERR_BIZ_003", "{v}");
    assert_eq!(
        code(&recharge(&app, "s", 990100, "s-3").await),
        "ERR_BIZ_003"
    );
    // Nothing was spent by the refused calls.
    assert_eq!(account(&app, "s", 900100).await["totalCountSurplus"], 10);
    assert_eq!(
        app.count_rows("raffle_activity_order", "user_id = 's'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_failed_draw_consumes_nothing() {
    let app = TestApp::spawn().await;
    test_activity(&app, 3, 3, 3, 100, 10).await;
    assert_eq!(code(&recharge(&app, "f", 990100, "f-1").await), "0000");
    // Make the last writes of the draw fail: quota and stock are already taken by then,
    // and must come back with the rollback.
    app.user_sql("user_award_record", None, |t| {
        format!("DROP TABLE {t}; CREATE TABLE {t} (x INTEGER)")
    })
    .await;
    let v = app
        .post(
            "activity/draw",
            json!({"userId": "f", "activityId": 900100}),
        )
        .await;
    assert_eq!(code(&v), "0001", "{v}");
    assert_eq!(
        account(&app, "f", 900100).await["totalCountSurplus"],
        3,
        "no quota taken"
    );
    assert_eq!(
        app.award_stock(900100, 102).await,
        (10, 10),
        "no stock taken"
    );
    assert_eq!(app.count_rows("user_raffle_order", "").await, 0);
    assert_eq!(app.count_rows("task", "").await, 0);
}

#[tokio::test]
async fn activity_endpoints_reject_bad_input() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, &str, &str)> = vec![
        ("activity/draw", "", "0002"),
        ("activity/draw", "{", "0002"),
        ("activity/draw", r#"{"activityId": 100301}"#, "0002"),
        (
            "activity/draw",
            r#"{"userId": "", "activityId": 100301}"#,
            "0002",
        ),
        ("activity/draw", r#"{"userId": "u"}"#, "0002"),
        (
            "activity/draw",
            r#"{"userId": "u", "activityId": "x"}"#,
            "0002",
        ),
        (
            "activity/draw",
            r#"{"userId": "u", "activityId": 1}"#,
            "0002",
        ),
        (
            "activity/draw",
            r#"{"userId": "nobody", "activityId": 100301}"#,
            "ERR_BIZ_006",
        ),
        (
            "activity/sku_recharge",
            r#"{"userId": "u", "sku": 9011}"#,
            "0002",
        ),
        (
            "activity/sku_recharge",
            r#"{"userId": "u", "sku": 9011, "outBusinessNo": "  "}"#,
            "0002",
        ),
        (
            "activity/sku_recharge",
            r#"{"userId": "u", "outBusinessNo": "k"}"#,
            "0002",
        ),
        (
            "activity/sku_recharge",
            r#"{"userId": "u", "sku": 1234, "outBusinessNo": "k"}"#,
            "0002",
        ),
        (
            "activity/sku_recharge",
            r#"{"userId": "u", "sku": [1], "outBusinessNo": "k"}"#,
            "0002",
        ),
        (
            "activity/query_user_activity_account",
            r#"{"userId": "u"}"#,
            "0002",
        ),
        ("activity/query_user_activity_account", "[]", "0002"),
        ("activity/query_sku_product_list_by_activity_id", "", "0002"),
        (
            "activity/query_sku_product_list_by_activity_id?activityId=abc",
            "",
            "0002",
        ),
    ];
    for (path, body, want) in cases {
        let v = app.post_raw(path, body).await;
        assert_eq!(code(&v), want, "{path} {body}: {v}");
        assert!(v["info"].as_str().unwrap().len() > 4, "{v}");
    }
    for (query, want) in [
        ("activity/armory", "0002"),
        ("activity/armory?activityId=77", "0002"),
        ("activity/armory?activityId=1x", "0002"),
        ("activity/query_stage_activity_id?channel=c01", "0002"),
    ] {
        let v = app.get(query).await;
        assert_eq!(code(&v), want, "{query}: {v}");
    }
    // No account: zeros, not an error.
    assert_eq!(
        account(&app, "nobody", 100301).await,
        json!({"totalCount":0,"totalCountSurplus":0,"dayCount":0,"dayCountSurplus":0,"monthCount":0,"monthCountSurplus":0})
    );
}

#[tokio::test]
async fn product_list_and_stage_lookup() {
    let app = TestApp::spawn().await;
    let v = app
        .post_raw(
            "activity/query_sku_product_list_by_activity_id?activityId=100301",
            "",
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let list = v["data"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(
        list[3],
        json!({"sku":9014,"activityId":100301,"activityCountId":11104,"stockCount":100000,"stockCountSurplus":99866,
               "productAmount":5.0,"activityCount":{"totalCount":1,"dayCount":1,"monthCount":1}})
    );
    let v = app
        .get("activity/query_stage_activity_id?channel=c01&source=s01")
        .await;
    assert_eq!((code(&v), &v["data"]), ("0000", &json!(100401)));
    let v = app
        .get("activity/query_stage_activity_id?channel=c09&source=s01")
        .await;
    assert_eq!((code(&v), &v["data"]), ("0000", &Value::Null));
    // The stage's activity (end moved out) takes draws through SKU 9901.
    assert_eq!(code(&recharge(&app, "xfg", 9901, "x-1").await), "0000");
    let v = app
        .post(
            "activity/draw",
            json!({"userId": "xfg", "activityId": 100401}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
}
