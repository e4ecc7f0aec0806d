//! Loads upstream's sample configuration into an empty config database.

use big_market_domain::sample::SampleData;
use big_market_domain::time::format_datetime;
use sqlx::{Connection, MySqlConnection};

use super::MysqlError;

/// Loads `sample` into `database` in one transaction unless it already holds a strategy
/// (an operator's configuration is never mixed with the sample). Whether it loaded.
pub(super) async fn load_if_empty(
    conn: &mut MySqlConnection,
    database: &str,
    sample: &SampleData,
) -> Result<bool, MysqlError> {
    let mut tx = conn.begin().await?;
    let strategies: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM `{database}`.strategy FOR UPDATE"
    ))
    .fetch_one(&mut *tx)
    .await?;
    if strategies > 0 {
        return Ok(false);
    }
    sqlx::raw_sql(&format!("USE `{database}`"))
        .execute(&mut *tx)
        .await?;
    insert_sample(&mut tx, sample).await?;
    tx.commit().await?;
    Ok(true)
}

async fn insert_sample(tx: &mut MySqlConnection, s: &SampleData) -> Result<(), sqlx::Error> {
    for a in &s.awards {
        sqlx::query(
            "INSERT INTO award (award_id, award_key, award_config, award_desc) VALUES (?, ?, ?, ?)",
        )
        .bind(a.award_id)
        .bind(&a.award_key)
        .bind(&a.award_config)
        .bind(&a.award_desc)
        .execute(&mut *tx)
        .await?;
    }
    for st in &s.strategies {
        sqlx::query(
            "INSERT INTO strategy (strategy_id, strategy_desc, rule_models) VALUES (?, ?, ?)",
        )
        .bind(st.strategy_id)
        .bind(&st.strategy_desc)
        .bind(&st.rule_models)
        .execute(&mut *tx)
        .await?;
    }
    for a in &s.strategy_awards {
        sqlx::query(
            "INSERT INTO strategy_award (strategy_id, award_id, award_title, award_subtitle, award_count,
                 award_count_surplus, award_rate, rule_models, sort)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
            .bind(a.strategy_id)
            .bind(a.award_id)
            .bind(&a.award_title)
            .bind(&a.award_subtitle)
            .bind(a.award_count)
            .bind(a.award_count_surplus)
            .bind(a.award_rate)
            .bind(&a.rule_models)
            .bind(a.sort)
        .execute(&mut *tx)
        .await?;
    }
    for r in &s.strategy_rules {
        sqlx::query(
            "INSERT INTO strategy_rule (strategy_id, award_id, rule_type, rule_model, rule_value, rule_desc)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
            .bind(r.strategy_id)
            .bind(r.award_id)
            .bind(r.rule_type)
            .bind(&r.rule_model)
            .bind(&r.rule_value)
            .bind(&r.rule_desc)
        .execute(&mut *tx)
        .await?;
    }
    for t in &s.rule_trees {
        sqlx::query(
            "INSERT INTO rule_tree (tree_id, tree_name, tree_desc, tree_node_rule_key) VALUES (?, ?, ?, ?)",
        )
            .bind(&t.tree_id)
            .bind(&t.tree_name)
            .bind(&t.tree_desc)
            .bind(&t.tree_node_rule_key)
        .execute(&mut *tx)
        .await?;
    }
    for n in &s.rule_tree_nodes {
        sqlx::query(
            "INSERT INTO rule_tree_node (tree_id, rule_key, rule_desc, rule_value) VALUES (?, ?, ?, ?)",
        )
            .bind(&n.tree_id)
            .bind(&n.rule_key)
            .bind(&n.rule_desc)
            .bind(&n.rule_value)
        .execute(&mut *tx)
        .await?;
    }
    for l in &s.rule_tree_lines {
        sqlx::query(
            "INSERT INTO rule_tree_node_line (tree_id, rule_node_from, rule_node_to, rule_limit_type, rule_limit_value)
             VALUES (?, ?, ?, ?, ?)",
        )
            .bind(&l.tree_id)
            .bind(&l.rule_node_from)
            .bind(&l.rule_node_to)
            .bind(&l.rule_limit_type)
            .bind(&l.rule_limit_value)
        .execute(&mut *tx)
        .await?;
    }
    for a in &s.activities {
        sqlx::query(
            "INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time,
                 end_date_time, strategy_id, state)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
            .bind(a.activity_id)
            .bind(&a.activity_name)
            .bind(&a.activity_desc)
            .bind(format_datetime(&a.begin_date_time))
            .bind(format_datetime(&a.end_date_time))
            .bind(a.strategy_id)
            .bind(&a.state)
        .execute(&mut *tx)
        .await?;
    }
    for c in &s.activity_counts {
        sqlx::query(
            "INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
             VALUES (?, ?, ?, ?)",
        )
            .bind(c.activity_count_id)
            .bind(c.total_count)
            .bind(c.day_count)
            .bind(c.month_count)
        .execute(&mut *tx)
        .await?;
    }
    for k in &s.activity_skus {
        sqlx::query(
            "INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count,
                 stock_count_surplus, product_amount)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(k.sku)
        .bind(k.activity_id)
        .bind(k.activity_count_id)
        .bind(k.stock_count)
        .bind(k.stock_count_surplus)
        .bind(k.product_amount)
        .execute(&mut *tx)
        .await?;
    }
    for r in &s.rebates {
        sqlx::query(
            "INSERT INTO daily_behavior_rebate (behavior_type, rebate_desc, rebate_type, rebate_config, state)
             VALUES (?, ?, ?, ?, ?)",
        )
            .bind(&r.behavior_type)
            .bind(&r.rebate_desc)
            .bind(&r.rebate_type)
            .bind(&r.rebate_config)
            .bind(&r.state)
        .execute(&mut *tx)
        .await?;
    }
    for st in &s.stages {
        sqlx::query(
            "INSERT INTO raffle_activity_stage (id, channel, source, activity_id, state) VALUES (?, ?, ?, ?, ?)",
        )
            .bind(st.id)
            .bind(&st.channel)
            .bind(&st.source)
            .bind(st.activity_id)
            .bind(&st.state)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
