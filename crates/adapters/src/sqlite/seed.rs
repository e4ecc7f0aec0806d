//! Loads upstream's sample configuration into a fresh store, once.

use super::{SqliteStore, StoreError};
use big_market_domain::Result;
use big_market_domain::sample::SampleData;
use big_market_domain::time::format_datetime;
use rusqlite::{Connection, OptionalExtension, params};

const SAMPLE_LOADED: &str = "sample_loaded";

fn insert_sample(conn: &Connection, s: &SampleData) -> Result<(), StoreError> {
    for a in &s.awards {
        conn.execute(
            "INSERT INTO award (award_id, award_key, award_config, award_desc) VALUES (?1, ?2, ?3, ?4)",
            params![a.award_id, a.award_key, a.award_config, a.award_desc],
        )?;
    }
    for st in &s.strategies {
        conn.execute(
            "INSERT INTO strategy (strategy_id, strategy_desc, rule_models) VALUES (?1, ?2, ?3)",
            params![st.strategy_id, st.strategy_desc, st.rule_models],
        )?;
    }
    for a in &s.strategy_awards {
        conn.execute(
            "INSERT INTO strategy_award (strategy_id, award_id, award_title, award_subtitle, award_count,
                 award_count_surplus, award_rate, rule_models, sort)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                a.strategy_id,
                a.award_id,
                a.award_title,
                a.award_subtitle,
                a.award_count,
                a.award_count_surplus,
                a.award_rate.to_string(),
                a.rule_models,
                a.sort
            ],
        )?;
    }
    for r in &s.strategy_rules {
        conn.execute(
            "INSERT INTO strategy_rule (strategy_id, award_id, rule_type, rule_model, rule_value, rule_desc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![r.strategy_id, r.award_id, r.rule_type, r.rule_model, r.rule_value, r.rule_desc],
        )?;
    }
    for t in &s.rule_trees {
        conn.execute(
            "INSERT INTO rule_tree (tree_id, tree_name, tree_desc, tree_node_rule_key) VALUES (?1, ?2, ?3, ?4)",
            params![t.tree_id, t.tree_name, t.tree_desc, t.tree_node_rule_key],
        )?;
    }
    for n in &s.rule_tree_nodes {
        conn.execute(
            "INSERT INTO rule_tree_node (tree_id, rule_key, rule_desc, rule_value) VALUES (?1, ?2, ?3, ?4)",
            params![n.tree_id, n.rule_key, n.rule_desc, n.rule_value],
        )?;
    }
    for l in &s.rule_tree_lines {
        conn.execute(
            "INSERT INTO rule_tree_node_line (tree_id, rule_node_from, rule_node_to, rule_limit_type, rule_limit_value)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![l.tree_id, l.rule_node_from, l.rule_node_to, l.rule_limit_type, l.rule_limit_value],
        )?;
    }
    for a in &s.activities {
        conn.execute(
            "INSERT INTO raffle_activity (activity_id, activity_name, activity_desc, begin_date_time,
                 end_date_time, strategy_id, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                a.activity_id,
                a.activity_name,
                a.activity_desc,
                format_datetime(&a.begin_date_time),
                format_datetime(&a.end_date_time),
                a.strategy_id,
                a.state
            ],
        )?;
    }
    for c in &s.activity_counts {
        conn.execute(
            "INSERT INTO raffle_activity_count (activity_count_id, total_count, day_count, month_count)
             VALUES (?1, ?2, ?3, ?4)",
            params![c.activity_count_id, c.total_count, c.day_count, c.month_count],
        )?;
    }
    for k in &s.activity_skus {
        conn.execute(
            "INSERT INTO raffle_activity_sku (sku, activity_id, activity_count_id, stock_count,
                 stock_count_surplus, product_amount)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                k.sku,
                k.activity_id,
                k.activity_count_id,
                k.stock_count,
                k.stock_count_surplus,
                k.product_amount.to_string()
            ],
        )?;
    }
    for r in &s.rebates {
        conn.execute(
            "INSERT INTO daily_behavior_rebate (behavior_type, rebate_desc, rebate_type, rebate_config, state)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![r.behavior_type, r.rebate_desc, r.rebate_type, r.rebate_config, r.state],
        )?;
    }
    for st in &s.stages {
        conn.execute(
            "INSERT INTO raffle_activity_stage (id, channel, source, activity_id, state) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![st.id, st.channel, st.source, st.activity_id, st.state],
        )?;
    }
    Ok(())
}

impl SqliteStore {
    /// Loads `sample` unless it was loaded before or the store already holds strategies
    /// (an operator's own configuration is never mixed with the sample). Returns whether
    /// it loaded.
    pub async fn load_sample_if_fresh(&self, sample: SampleData) -> Result<bool> {
        Ok(self
            .write(move |conn| {
                let loaded: Option<String> = conn
                    .query_row(
                        "SELECT meta_value FROM big_market_meta WHERE meta_key = ?1",
                        [SAMPLE_LOADED],
                        |r| r.get(0),
                    )
                    .optional()?;
                let strategies: i64 =
                    conn.query_row("SELECT COUNT(*) FROM strategy", [], |r| r.get(0))?;
                if loaded.is_some() || strategies > 0 {
                    return Ok(false);
                }
                insert_sample(conn, &sample)?;
                conn.execute(
                    "INSERT INTO big_market_meta (meta_key, meta_value) VALUES (?1, CURRENT_TIMESTAMP)",
                    [SAMPLE_LOADED],
                )?;
                Ok(true)
            })
            .await?)
    }
}
