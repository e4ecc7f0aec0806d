use crate::helpers::{TestApp, code};
use serde_json::{Value, json};
use std::collections::HashMap;

#[tokio::test]
async fn armory_builds_known_strategies_and_rejects_bad_ids() {
    let app = TestApp::spawn().await;
    let ok = app.get("strategy/strategy_armory?strategyId=100006").await;
    assert_eq!((code(&ok), &ok["data"]), ("0000", &json!(true)));
    // Also without the `strategy/` segment and with a trailing slash.
    let ok = app.get("strategy_armory/?strategyId=100001").await;
    assert_eq!(code(&ok), "0000");

    for (query, needle) in [
        (
            "strategy/strategy_armory?strategyId=999",
            "999 does not exist",
        ),
        ("strategy/strategy_armory", "strategyId is required"),
        (
            "strategy/strategy_armory?strategyId=",
            "strategyId is required",
        ),
        ("strategy/strategy_armory?strategyId=abc", "not an integer"),
    ] {
        let v = app.get(query).await;
        assert_eq!(code(&v), "0002", "{query}: {v}");
        assert!(v["info"].as_str().unwrap().contains(needle), "{query}: {v}");
        assert!(v["data"].is_null());
    }
}

#[tokio::test]
async fn random_raffle_draws_an_award_of_the_strategy() {
    let app = TestApp::spawn().await;
    let sorts: HashMap<i64, i64> = [
        (101, 1),
        (102, 2),
        (103, 3),
        (104, 4),
        (105, 5),
        (106, 6),
        (107, 7),
        (108, 8),
    ]
    .into_iter()
    .collect();
    for body in [
        json!({"strategyId": 100006}),
        json!({"strategyId": "100006"}),
    ] {
        for _ in 0..20 {
            let v = app.post("strategy/random_raffle", body.clone()).await;
            assert_eq!(code(&v), "0000", "{v}");
            let award = v["data"]["awardId"].as_i64().unwrap();
            assert_eq!(
                v["data"]["awardIndex"].as_i64(),
                sorts.get(&award).copied(),
                "{v}"
            );
            // `system` has no draws today: locked awards 105–107 end as the luck award.
            assert!(![105, 106, 107].contains(&award), "{v}");
        }
    }
    let v = app
        .post("random_raffle", json!({"strategyId": 100004}))
        .await;
    assert_eq!(v["data"]["awardId"], 109, "{v}");
    // 109's one unit is gone: its tree gives luck award 101, which 100004 does not list;
    // it comes from the award table, on no cell of the grid.
    for _ in 0..3 {
        let v = app
            .post("random_raffle", json!({"strategyId": 100004}))
            .await;
        assert_eq!(code(&v), "0000", "{v}");
        assert_eq!(
            (&v["data"]["awardId"], &v["data"]["awardIndex"]),
            (&json!(101), &json!(0)),
            "{v}"
        );
    }
}

#[tokio::test]
async fn bad_input_gets_a_code_and_a_message_never_a_5xx() {
    let app = TestApp::spawn().await;
    let cases: Vec<(&str, &str, &str)> = vec![
        ("strategy/random_raffle", "", "0002"),
        ("strategy/random_raffle", "{", "0002"),
        ("strategy/random_raffle", "[1,2]", "0002"),
        ("strategy/random_raffle", "{}", "0002"),
        ("strategy/random_raffle", r#"{"strategyId": null}"#, "0002"),
        ("strategy/random_raffle", r#"{"strategyId": "x1"}"#, "0002"),
        ("strategy/random_raffle", r#"{"strategyId": 1.5}"#, "0002"),
        (
            "strategy/random_raffle",
            r#"{"strategyId": 424242}"#,
            "ERR_BIZ_002",
        ),
        (
            "strategy/query_raffle_award_list",
            r#"{"activityId": 100301}"#,
            "0002",
        ),
        (
            "strategy/query_raffle_award_list",
            r#"{"userId": " ", "activityId": 100301}"#,
            "0002",
        ),
        (
            "strategy/query_raffle_award_list",
            r#"{"userId": "u"}"#,
            "0002",
        ),
        (
            "strategy/query_raffle_award_list",
            r#"{"userId": "u", "activityId": 1}"#,
            "ERR_BIZ_002",
        ),
        (
            "strategy/query_raffle_strategy_rule_weight",
            r#"{"userId": 5, "activityId": 100301}"#,
            "0002",
        ),
        (
            "strategy/query_raffle_strategy_rule_weight",
            "not json",
            "0002",
        ),
    ];
    for (path, body, want) in cases {
        let v = app.post_raw(path, body).await;
        assert_eq!(code(&v), want, "{path} {body}: {v}");
        assert!(v["info"].as_str().unwrap().len() > 4, "a message: {v}");
        assert!(v["data"].is_null(), "{v}");
    }
    let resp = app
        .client
        .get(format!("{}/api/v1/raffle/nope", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn award_list_shows_lock_progress() {
    let app = TestApp::spawn().await;
    let v = app
        .post(
            "strategy/query_raffle_award_list",
            json!({"userId": "xiaofuge", "activityId": 100301}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let list = v["data"].as_array().unwrap();
    let ids: Vec<i64> = list
        .iter()
        .map(|a| a["awardId"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![101, 102, 103, 104, 105, 106, 107, 108],
        "ordered by sort"
    );
    let by_id = |id: i64| list.iter().find(|a| a["awardId"] == id).unwrap().clone();
    let a105 = by_id(105);
    assert_eq!(
        (
            &a105["awardRuleLockCount"],
            &a105["isAwardUnlock"],
            &a105["waitUnLockCount"]
        ),
        (&json!(3), &json!(false), &json!(3))
    );
    assert_eq!(a105["awardSubtitle"], "抽奖3次后解锁");
    let a101 = by_id(101);
    assert_eq!(
        (
            &a101["awardRuleLockCount"],
            &a101["isAwardUnlock"],
            &a101["waitUnLockCount"]
        ),
        (&Value::Null, &json!(true), &json!(0))
    );
}

#[tokio::test]
async fn rule_weight_lists_the_groups() {
    let app = TestApp::spawn().await;
    let v = app
        .post(
            "strategy/query_raffle_strategy_rule_weight",
            json!({"userId": "xiaofuge", "activityId": 100301}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let groups = v["data"].as_array().unwrap();
    let counts: Vec<i64> = groups
        .iter()
        .map(|g| g["ruleWeightCount"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![10, 70, 1000]);
    assert_eq!(groups[0]["userActivityAccountTotalUseCount"], 0);
    assert_eq!(
        groups[1]["strategyAwards"],
        json!([{"awardId": 106, "awardTitle": "轻奢办公椅"}, {"awardId": 107, "awardTitle": "小霸王游戏机"}])
    );
    // 100401's strategy 10007 has no rule_weight: no groups.
    let v = app
        .post(
            "strategy/query_raffle_strategy_rule_weight",
            json!({"userId": "xiaofuge", "activityId": 100401}),
        )
        .await;
    assert_eq!((code(&v), &v["data"]), ("0000", &json!([])));
}

#[tokio::test]
async fn cors_answers_preflight_from_any_origin() {
    let app = TestApp::spawn().await;
    let resp = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("strategy/random_raffle"))
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(resp.headers()["access-control-allow-origin"], "*");
    let resp = app
        .client
        .get(app.url("strategy/strategy_armory?strategyId=100001"))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers().contains_key("x-request-id"),
        "request id header"
    );
}

/// A strategy with one drawable award (stock K) and a zero-rate luck award: many
/// concurrent draws must grant exactly K and leave 0, never below.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_draws_grant_exactly_the_award_stock() {
    let app = TestApp::spawn().await;
    app.config_sql(
        "INSERT INTO strategy (strategy_id, strategy_desc, rule_models) VALUES (900001, 'stock drain', NULL);
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES (900001, 102, 'scarce', 150, 150, '1.0000', 'tree_luck_award', 1),
                  (900001, 101, 'luck', 0, 0, '0.0000', NULL, 2);",
    )
    .await;
    assert_eq!(
        code(&app.get("strategy/strategy_armory?strategyId=900001").await),
        "0000"
    );

    let draws = 400;
    let mut tasks = Vec::new();
    for _ in 0..draws {
        let client = app.client.clone();
        let url = app.url("strategy/random_raffle");
        tasks.push(tokio::spawn(async move {
            let v: Value = client
                .post(url)
                .json(&json!({"strategyId": 900001}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }));
    }
    let mut granted: HashMap<i64, i64> = HashMap::new();
    for t in tasks {
        let v = t.await.unwrap();
        assert_eq!(code(&v), "0000", "{v}");
        *granted
            .entry(v["data"]["awardId"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(granted.get(&102), Some(&150), "{granted:?}");
    assert_eq!(granted.get(&101), Some(&250), "{granted:?}");
    let (count, surplus) = app.award_stock(900001, 102).await;
    assert_eq!((count, surplus), (150, 0));
}
