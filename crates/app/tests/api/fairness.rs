//! Published odds (and, below, provably fair draws).

use crate::helpers::{TestApp, code, concurrently};
use big_market_domain::sample::SampleData;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// `weight / total == rate / rate_sum`, exactly.
fn same_fraction(weight: &Value, total: &Value, rate: Decimal, rate_sum: Decimal) -> bool {
    let w = Decimal::from(weight.as_u64().expect("weight"));
    let t = Decimal::from(total.as_u64().expect("totalWeight"));
    w * rate_sum == rate * t
}

/// Every sample activity publishes its strategy's rates, normalised, as exact integer
/// weights summing to `totalWeight`; groups as configured; a sold-out award is flagged.
#[tokio::test]
async fn published_odds_are_the_configured_rates_of_every_sample_activity() {
    let app = TestApp::spawn().await;
    let data = SampleData::upstream();
    let mut checked = 0;
    for activity in &data.activities {
        let strategy_id = activity.strategy_id;
        let v = app
            .get(&format!(
                "activity/query_award_odds?activityId={}",
                activity.activity_id
            ))
            .await;
        assert_eq!(code(&v), "0000", "{v}");
        let odds = &v["data"];
        assert_eq!(odds["strategyId"].as_i64(), Some(strategy_id));
        let configured: Vec<_> = data
            .strategy_awards
            .iter()
            .filter(|a| a.strategy_id == strategy_id)
            .collect();
        let rate_sum: Decimal = configured.iter().map(|a| a.award_rate).sum();
        let awards = odds["awards"].as_array().expect("awards");
        assert_eq!(awards.len(), configured.len(), "{odds}");
        let sum: u64 = awards.iter().map(|a| a["weight"].as_u64().unwrap()).sum();
        assert_eq!(Some(sum), odds["totalWeight"].as_u64(), "{odds}");
        for a in awards {
            let id = a["awardId"].as_i64().unwrap();
            let rate = configured
                .iter()
                .find(|c| i64::from(c.award_id) == id)
                .expect("published award is configured")
                .award_rate;
            assert!(
                same_fraction(&a["weight"], &odds["totalWeight"], rate, rate_sum),
                "activity {} award {id}: {a}",
                activity.activity_id
            );
        }
        for g in odds["weightGroups"].as_array().expect("groups") {
            let members = g["awards"].as_array().unwrap();
            let sum: u64 = members.iter().map(|a| a["weight"].as_u64().unwrap()).sum();
            assert_eq!(Some(sum), g["totalWeight"].as_u64());
            let rate = |id: i64| {
                configured
                    .iter()
                    .find(|c| i64::from(c.award_id) == id)
                    .unwrap()
                    .award_rate
            };
            let group_sum: Decimal = members
                .iter()
                .map(|a| rate(a["awardId"].as_i64().unwrap()))
                .sum();
            for a in members {
                let r = rate(a["awardId"].as_i64().unwrap());
                assert!(same_fraction(&a["weight"], &g["totalWeight"], r, group_sum));
            }
        }
        checked += 1;
    }
    assert!(checked >= 2);

    // 100301 (strategy 100006): groups and rule awards published; emptying 102's stock
    // makes it sold out, with the luck award named.
    let v = app.get("activity/query_award_odds?activityId=100301").await;
    assert_eq!(v["data"]["weightGroups"].as_array().unwrap().len(), 3);
    let luck = v["data"]["ruleAwards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["awardId"] == 101)
        .cloned()
        .expect("luck award published");
    assert!(luck["reasons"].to_string().contains("sold_out"), "{luck}");
    app.set_award_stock(100006, 102, 0).await;
    let v = app.get("activity/query_award_odds?activityId=100301").await;
    let a102 = v["data"]["awards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["awardId"] == 102)
        .cloned()
        .unwrap();
    assert_eq!(a102["soldOut"], true, "{a102}");
    assert_eq!(a102["soldOutAwardId"], 101, "{a102}");
}

#[tokio::test]
async fn odds_of_a_missing_or_malformed_activity_are_refused_with_a_code() {
    let app = TestApp::spawn().await;
    for (query, expected) in [
        ("activity/query_award_odds", "0002"),
        ("activity/query_award_odds?activityId=abc", "0002"),
        ("activity/query_award_odds?activityId=999999", "ERR_BIZ_002"),
    ] {
        let v = app.get(query).await;
        assert_eq!(code(&v), expected, "{query}: {v}");
        assert!(!v["info"].as_str().unwrap().is_empty());
    }
}

/// A fair test activity 900130 (strategy 900130): awards 101 (rate 0.5), 102 (0.3,
/// stock 2, tree_luck_award), 103 (0.2); a weight group at the 3rd draw (101, 103);
/// SKU 990130 grants 50 draws a day.
async fn fair_activity(app: &TestApp) {
    app.config_sql(
        "INSERT INTO strategy (strategy_id, strategy_desc, rule_models) VALUES (900130, 'fair', 'rule_weight');
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES (900130, 101, 'points', 1000000, 1000000, '0.5000', NULL, 1),
                  (900130, 102, 'scarce', 2, 2, '0.3000', 'tree_luck_award', 2),
                  (900130, 103, 'other', 1000000, 1000000, '0.2000', NULL, 3);
         INSERT INTO strategy_rule (strategy_id, award_id, rule_type, rule_model, rule_value, rule_desc)
           VALUES (900130, NULL, 1, 'rule_weight', '3:103,101', 'third draw');
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES (900130, 'fair activity', 'test', '2020-01-01 00:00:00', '2099-01-01 00:00:00', 900130, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count) VALUES (990130, 50, 50, 50);
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES (990130, 900130, 990130, 1000, 1000, '1.00');",
    )
    .await;
    let v = app.get("activity/armory?activityId=900130").await;
    assert_eq!(code(&v), "0000", "{v}");
}

/// The documented algorithm, written here from `docs/FAIRNESS.md` with the `hmac` and
/// `sha2` crates (not the service's code): the award a proof's inputs give with `seed`.
fn recompute(seed: &[u8], activity_id: i64, user_id: &str, proof: &Value) -> i64 {
    use hmac::{Hmac, Mac};
    let weights: Vec<(i64, u64)> = proof["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_i64().unwrap(), p[1].as_u64().unwrap()))
        .collect();
    let total: u64 = weights.iter().map(|w| w.1).sum();
    let limit: u128 = (1u128 << 64) - ((1u128 << 64) % u128::from(total));
    let mut k = 0u64;
    let x = loop {
        let message = format!(
            "{activity_id}:{user_id}:{}:{}:{k}",
            proof["drawNo"],
            proof["clientSeed"].as_str().unwrap()
        );
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(seed).unwrap();
        mac.update(message.as_bytes());
        let d = mac.finalize().into_bytes();
        let r = u64::from_be_bytes(d[..8].try_into().unwrap());
        if u128::from(r) < limit {
            break r % total;
        }
        k += 1;
    };
    let mut upper = 0;
    for (award, weight) in weights {
        upper += weight;
        if x < upper {
            return award;
        }
    }
    panic!("x {x} outside the table");
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Draws on a fair activity carry proofs; after `rotate` the revealed seed matches the
/// commitment and an independent re-computation gives every draw's `sampledAwardId`;
/// the seed appeared nowhere before (responses, `/metrics`); it survives a restart.
#[tokio::test]
async fn fair_draws_are_recomputed_from_the_revealed_seed() {
    let app = TestApp::spawn().await;
    fair_activity(&app).await;
    let mut seen = String::new();

    let before = app.get("activity/query_fairness?activityId=900130").await;
    assert_eq!(code(&before), "0000", "{before}");
    assert_eq!(before["data"]["enabled"], false);
    assert!(before["data"]["current"].is_null());

    let enabled = app
        .post("admin/fairness/enable", json!({"activityId": 900130}))
        .await;
    assert_eq!(code(&enabled), "0000", "{enabled}");
    let commitment = enabled["data"]["commitment"].as_str().unwrap().to_owned();
    assert_eq!(commitment.len(), 64);
    assert_eq!(enabled["data"]["epoch"], 1);
    let query = app.get("activity/query_fairness?activityId=900130").await;
    assert_eq!(query["data"]["current"]["commitment"], commitment.as_str());
    assert_eq!(query["data"]["revealed"], json!([]));
    seen.push_str(&format!("{enabled}{query}"));

    let users = ["fair_a", "fair_b", "fair_c"];
    let mut draws: Vec<(String, Value)> = Vec::new();
    for (u, user) in users.iter().enumerate() {
        let v = app
            .post(
                "activity/sku_recharge",
                json!({"userId": user, "sku": 990130, "outBusinessNo": format!("fair-{user}")}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
        for n in 1..=5 {
            let mut body = json!({"userId": user, "activityId": 900130});
            if (u + n) % 2 == 0 {
                body["clientSeed"] = json!(format!("lucky {user} #{n} ✓"));
            }
            let v = app.post("activity/draw", body.clone()).await;
            assert_eq!(code(&v), "0000", "{v}");
            let proof = v["data"]["proof"].clone();
            assert_eq!(proof["awardId"], v["data"]["awardId"], "{v}");
            assert_eq!(proof["epoch"], 1);
            assert_eq!(proof["commitment"], commitment.as_str());
            assert_eq!(proof["drawNo"], n);
            assert_eq!(
                proof["clientSeed"],
                body.get("clientSeed").cloned().unwrap_or(json!(""))
            );
            let table = if n == 3 { "weight:3" } else { "default" };
            assert_eq!(proof["table"], table, "{proof}");
            seen.push_str(&v.to_string());
            draws.push((user.to_string(), proof));
        }
    }
    // The published odds are the tables the proofs name.
    let odds = app.get("activity/query_award_odds?activityId=900130").await;
    let default: Vec<Value> = odds["data"]["awards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!([a["awardId"], a["weight"]]))
        .collect();
    let group: Vec<Value> = odds["data"]["weightGroups"][0]["awards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| json!([a["awardId"], a["weight"]]))
        .collect();
    for (_, proof) in &draws {
        let expected = if proof["table"] == "default" {
            &default
        } else {
            &group
        };
        assert_eq!(proof["weights"].as_array().unwrap(), expected, "{proof}");
    }
    // Stock 2 of award 102: a third sample of it is replaced by the luck award.
    let sampled_102 = draws
        .iter()
        .filter(|(_, p)| p["sampledAwardId"] == 102)
        .count();
    let granted_102 = draws.iter().filter(|(_, p)| p["awardId"] == 102).count();
    assert_eq!(granted_102, sampled_102.min(2));
    for (_, p) in &draws {
        if p["sampledAwardId"] != p["awardId"] {
            assert_eq!(p["reason"], "sold_out", "{p}");
        } else {
            assert_eq!(p["reason"], "drawn", "{p}");
        }
    }

    // Before the reveal: the proof, but no seed.
    let (user, proof) = &draws[0];
    let pending = app
        .post(
            "activity/verify_draw",
            json!({"userId": user, "activityId": 900130, "orderId": proof["orderId"]}),
        )
        .await;
    assert_eq!(code(&pending), "0000", "{pending}");
    assert_eq!(pending["data"]["seed"], "not yet revealed");
    assert_eq!(pending["data"]["verified"], false);
    let cli = |user: &str, order: &Value| big_market::verify::VerifyOptions {
        url: app.base.clone(),
        activity_id: 900130,
        user_id: user.to_owned(),
        order_id: order.as_str().unwrap().to_owned(),
    };
    let early = big_market::verify::run(cli(user, &proof["orderId"]))
        .await
        .unwrap();
    assert!(early.seed.is_none() && !early.verified(), "{early}");
    seen.push_str(&pending.to_string());
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    seen.push_str(&metrics);
    assert_eq!(
        app.count_rows("user_award_record", "fair_proof IS NOT NULL")
            .await,
        15
    );

    let rotated = app
        .post("admin/fairness/rotate", json!({"activityId": 900130}))
        .await;
    assert_eq!(code(&rotated), "0000", "{rotated}");
    let seed_hex = rotated["data"]["revealed"]["seed"]
        .as_str()
        .unwrap()
        .to_owned();
    let seed = unhex(&seed_hex);
    assert_eq!(seed.len(), 32);
    {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&seed);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, commitment, "the revealed seed matches the commitment");
    }
    assert!(
        !seen.contains(&seed_hex),
        "the seed was visible before its reveal"
    );
    assert!(!seen.to_uppercase().contains(&seed_hex.to_uppercase()));
    assert_eq!(rotated["data"]["current"]["epoch"], 2);
    let next_commitment = rotated["data"]["current"]["commitment"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(next_commitment, commitment);

    for (user, proof) in &draws {
        assert_eq!(
            recompute(&seed, 900130, user, proof),
            proof["sampledAwardId"].as_i64().unwrap(),
            "{user}: {proof}"
        );
        let v = app
            .post(
                "activity/verify_draw",
                json!({"userId": user, "activityId": 900130, "orderId": proof["orderId"]}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
        assert_eq!(v["data"]["verified"], true, "{v}");
        assert_eq!(v["data"]["seed"], seed_hex.as_str());
        assert_eq!(v["data"]["recomputedAwardId"], proof["sampledAwardId"]);
    }
    // `big-market verify` recomputes on its side too.
    let (user, proof) = &draws[2];
    let report = big_market::verify::run(cli(user, &proof["orderId"]))
        .await
        .unwrap();
    assert!(report.verified() && report.service_verified, "{report}");
    assert_eq!(
        Some(i64::from(report.recomputed_award_id.unwrap())),
        proof["sampledAwardId"].as_i64()
    );
    let query = app.get("activity/query_fairness?activityId=900130").await;
    assert_eq!(query["data"]["revealed"][0]["seed"], seed_hex.as_str());
    assert_eq!(query["data"]["current"]["epoch"], 2);

    // The next epoch's seed is stored: a restarted node commits to the same one.
    let world = app.stop().await;
    let app = TestApp::spawn_in(world).await;
    let query = app.get("activity/query_fairness?activityId=900130").await;
    assert_eq!(query["data"]["enabled"], true, "{query}");
    assert_eq!(
        query["data"]["current"]["commitment"],
        next_commitment.as_str()
    );
    let v = app
        .post(
            "activity/draw",
            json!({"userId": "fair_a", "activityId": 900130}),
        )
        .await;
    assert_eq!(v["data"]["proof"]["epoch"], 2, "{v}");
    assert_eq!(v["data"]["proof"]["drawNo"], 6, "{v}");
}

#[tokio::test]
async fn fairness_input_is_checked() {
    let app = TestApp::spawn().await;
    fair_activity(&app).await;
    for (path, body, needle) in [
        (
            "activity/draw",
            json!({"userId": "u", "activityId": 900130, "clientSeed": "x".repeat(65)}),
            "clientSeed",
        ),
        ("admin/fairness/enable", json!({}), "activityId"),
        (
            "admin/fairness/enable",
            json!({"activityId": 999999}),
            "999999",
        ),
        (
            "admin/fairness/rotate",
            json!({"activityId": 900130}),
            "enable it first",
        ),
        (
            "activity/verify_draw",
            json!({"userId": "u", "activityId": 900130}),
            "orderId",
        ),
        (
            "activity/verify_draw",
            json!({"userId": "u", "activityId": 900130, "orderId": "123"}),
            "no award record",
        ),
    ] {
        let v = app.post(path, body.clone()).await;
        assert_eq!(code(&v), "0002", "{path} {body}: {v}");
        assert!(
            v["info"].as_str().unwrap().contains(needle),
            "{path} {body}: {v}"
        );
    }
    // A draw of an activity that is not fair answers no proof, and verify says so.
    let v = app
        .post(
            "activity/sku_recharge",
            json!({"userId": "plain", "sku": 990130, "outBusinessNo": "plain-1"}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let v = app
        .post(
            "activity/draw",
            json!({"userId": "plain", "activityId": 900130}),
        )
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    assert!(v["data"].get("proof").is_none(), "{v}");
    let order: Vec<String> = app
        .texts("user_award_record", "order_id", "WHERE user_id = 'plain'")
        .await;
    let v = app
        .post(
            "activity/verify_draw",
            json!({"userId": "plain", "activityId": 900130, "orderId": order[0]}),
        )
        .await;
    assert_eq!(code(&v), "0002", "{v}");
    assert!(
        v["info"].as_str().unwrap().contains("not a fair draw"),
        "{v}"
    );
}

/// Fair draws of many users at once (on MariaDB/MySQL with Redis they commit in groups):
/// every answer carries its proof, every record keeps it, and all verify after `rotate`.
#[tokio::test]
async fn concurrent_fair_draws_all_verify() {
    let app = TestApp::spawn().await;
    fair_activity(&app).await;
    let v = app
        .post("admin/fairness/enable", json!({"activityId": 900130}))
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let users: Vec<String> = (0..24).map(|i| format!("crowd_{i}")).collect();
    for user in &users {
        let v = app
            .post(
                "activity/sku_recharge",
                json!({"userId": user, "sku": 990130, "outBusinessNo": format!("crowd-{user}")}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
    }
    for round in 1..=2 {
        let bodies = users
            .iter()
            .map(|u| json!({"userId": u, "activityId": 900130, "clientSeed": format!("{u}/{round}")}))
            .collect();
        let results = concurrently(&app, "activity/draw", bodies).await;
        for v in &results {
            assert_eq!(code(v), "0000", "{v}");
            assert_eq!(v["data"]["proof"]["drawNo"], round, "{v}");
        }
    }
    assert_eq!(
        app.count_rows("user_award_record", "fair_proof IS NOT NULL")
            .await,
        48
    );
    let v = app
        .post("admin/fairness/rotate", json!({"activityId": 900130}))
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    for user in &users {
        for order_id in app
            .texts(
                "user_award_record",
                "order_id",
                &format!("WHERE user_id = '{user}'"),
            )
            .await
        {
            let v = app
                .post(
                    "activity/verify_draw",
                    json!({"userId": user, "activityId": 900130, "orderId": order_id}),
                )
                .await;
            assert_eq!(v["data"]["verified"], true, "{v}");
        }
    }
}

/// Prize pacing with a fixed clock: award 102 (stock 100, rate 0.9, released `even`
/// over ten days) under 64 concurrent draws at 10 %, 50 % and 100 % of the activity's
/// time. The draws are fair, so each proof says which award was sampled: the units
/// granted at each moment are exactly `min(released(t) − granted before, sampled)`,
/// never above `released(t)`, and `granted + left = stock` throughout.
#[tokio::test]
async fn paced_awards_never_exceed_their_release_under_concurrency() {
    let (app, clock) = crate::helpers::TestApp::spawn_at("2026-12-01 00:00:00").await;
    app.config_sql(
        "INSERT INTO strategy (strategy_id, strategy_desc, rule_models) VALUES (900140, 'paced', NULL);
         INSERT INTO strategy_award (strategy_id, award_id, award_title, award_count, award_count_surplus, award_rate, rule_models, sort)
           VALUES (900140, 101, 'points', 1000000, 1000000, '0.1000', NULL, 1),
                  (900140, 102, 'paced', 100, 100, '0.9000', 'tree_luck_award', 2);
         INSERT INTO strategy_rule (strategy_id, award_id, rule_type, rule_model, rule_value, rule_desc)
           VALUES (900140, 102, 2, 'rule_release', 'even', 'spread over the activity');
         INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time, end_date_time, strategy_id, state)
           VALUES (900140, 'paced activity', 'test', '2026-12-01 00:00:00', '2026-12-11 00:00:00', 900140, 'open');
         INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count) VALUES (990140, 10, 10, 10);
         INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count, stock_count_surplus, product_amount)
           VALUES (990140, 900140, 990140, 1000, 1000, '1.00');",
    )
    .await;
    let v = app.get("activity/armory?activityId=900140").await;
    assert_eq!(code(&v), "0000", "{v}");
    let v = app
        .post("admin/fairness/enable", json!({"activityId": 900140}))
        .await;
    assert_eq!(code(&v), "0000", "{v}");
    let odds = app.get("activity/query_award_odds?activityId=900140").await;
    let paced = odds["data"]["awards"][1].clone();
    assert_eq!(
        (&paced["awardId"], &paced["releasePlan"], &paced["released"]),
        (&json!(102), &json!("even"), &json!(0)),
        "{odds}"
    );
    assert_eq!(
        paced["soldOut"], true,
        "nothing released at the begin: {paced}"
    );

    let users: Vec<String> = (0..64).map(|i| format!("paced_{i}")).collect();
    for user in &users {
        let v = app
            .post(
                "activity/sku_recharge",
                json!({"userId": user, "sku": 990140, "outBusinessNo": format!("paced-{user}")}),
            )
            .await;
        assert_eq!(code(&v), "0000", "{v}");
    }
    let mut granted = 0i64;
    for (now, released) in [
        ("2026-12-02 00:00:00", 10i64),
        ("2026-12-06 00:00:00", 50),
        ("2026-12-11 00:00:00", 100),
    ] {
        clock.set(crate::helpers::zoned(now));
        let bodies = users
            .iter()
            .map(|u| json!({"userId": u, "activityId": 900140}))
            .collect();
        let results = concurrently(&app, "activity/draw", bodies).await;
        let mut sampled = 0;
        for v in &results {
            assert_eq!(code(v), "0000", "{now}: {v}");
            let proof = &v["data"]["proof"];
            if proof["sampledAwardId"] == 102 {
                sampled += 1;
                if proof["awardId"] != 102 {
                    assert_eq!(proof["reason"], "sold_out", "{proof}");
                }
            }
        }
        let now_granted = results
            .iter()
            .filter(|v| v["data"]["awardId"] == 102)
            .count() as i64;
        granted += now_granted;
        assert_eq!(
            now_granted,
            (released - (granted - now_granted)).min(sampled)
        );
        assert!(
            granted <= released,
            "{now}: {granted} granted, {released} released"
        );
        let (count, left) = app.award_stock(900140, 102).await;
        assert_eq!((count, granted + left), (100, 100), "{now}");
        assert_eq!(
            app.count_rows("user_award_record", "award_id = 102").await,
            granted
        );
        let odds = app.get("activity/query_award_odds?activityId=900140").await;
        assert_eq!(odds["data"]["awards"][1]["released"], released, "{odds}");
    }
    assert!(granted > 0);
}
