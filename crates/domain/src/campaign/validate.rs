//! Validation of a campaign document: every problem at once, each with the JSON path of
//! the field at fault, before anything is written.
//!
//! The checks are those a wrong row would otherwise reveal at draw time (rates, stock,
//! keys, weight groups, luck awards, trees), the columns' ranges and lengths, and the
//! rules of changing a running campaign (stock not below what was granted, awards with
//! records not removed, shared awards and trees not changed under other strategies). It
//! ends by assembling the strategy with the armory itself, so nothing the draw would
//! refuse passes.

use super::apply::{ConfigRows, to_strategy_config};
use super::document::{CampaignDocument, RuleDoc, TreeDoc, rule_value};
use crate::award::key;
use crate::strategy::{AssembledStrategy, model};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One problem: where (`strategy.awards[3].awardRate`) and what.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Finding {
    pub path: String,
    pub message: String,
}

/// The answer of `validate`. `warnings` are problems the stored configuration already has
/// (upstream's sample has a few): keeping them is allowed, adding new ones is not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub valid: bool,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// Keys a distributor delivers.
const DELIVERABLE: &[&str] = &[key::USER_CREDIT_RANDOM, key::OPENAI_USE_COUNT];
/// Upstream's keys without a distributor: accepted (the record waits with a reason).
const UNDELIVERABLE: &[&str] = &["openai_model", "user_credit_blacklist"];
const ACTIVITY_STATES: &[&str] = &["create", "open", "close"];
const LIMIT_TYPES: &[&str] = &["EQUAL", "GT", "LT", "GE", "LE", "ENUM"];
const I32_MAX: i64 = i32::MAX as i64;

struct Checker {
    errors: Vec<Finding>,
}

impl Checker {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(Finding {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Length in characters (MySQL's `varchar(n)` counts characters).
    fn len(&mut self, path: &str, value: &str, max: usize) {
        let n = value.chars().count();
        if n > max {
            self.err(path, format!("{n} characters; the column holds {max}"));
        }
    }

    fn text(&mut self, path: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.err(path, "must not be blank");
        }
        self.len(path, value, max);
    }

    fn range(&mut self, path: &str, value: i64, min: i64, max: i64) {
        if value < min || value > max {
            self.err(
                path,
                format!("{value} is outside the column's range {min}..={max}"),
            );
        }
    }
}

/// Decimal with at most `scale` places and below `10^(precision - scale)`.
fn decimal_column(
    c: &mut Checker,
    path: &str,
    raw: &str,
    precision: u32,
    scale: u32,
) -> Option<Decimal> {
    let Some(d) = super::document::DecimalText(raw.to_owned()).parse() else {
        c.err(path, format!("{raw:?} is not a number"));
        return None;
    };
    if d.is_sign_negative() && !d.is_zero() {
        c.err(path, format!("{d} is negative"));
    }
    if d.normalize().scale() > scale {
        c.err(path, format!("{d} has more than {scale} decimal places"));
    }
    let limit = Decimal::from(10i64.pow(precision - scale));
    if d.abs() >= limit {
        c.err(
            path,
            format!("{d} does not fit decimal({precision},{scale})"),
        );
    }
    Some(d)
}

/// Validates `doc` against the stored configuration `rows` (empty for a store with
/// nothing yet). `with_records` are award ids of this strategy that have award records.
pub fn validate(
    doc: &CampaignDocument,
    rows: &ConfigRows,
    with_records: &HashSet<i32>,
) -> Vec<Finding> {
    let mut c = Checker { errors: Vec::new() };
    let sid = doc.strategy.strategy_id;
    let activity_id = doc.activity.as_ref().map(|a| a.activity_id);

    // Activity.
    if let Some(a) = &doc.activity {
        c.range("activity.activityId", a.activity_id, 1, i64::MAX);
        c.text("activity.activityName", &a.activity_name, 64);
        c.len("activity.activityDesc", &a.activity_desc, 128);
        if !ACTIVITY_STATES.contains(&a.state.as_str()) {
            c.err(
                "activity.state",
                format!("{:?} is not one of {ACTIVITY_STATES:?}", a.state),
            );
        }
        let begin = crate::time::parse_datetime(&a.begin_date_time);
        let end = crate::time::parse_datetime(&a.end_date_time);
        if begin.is_err() {
            c.err(
                "activity.beginDateTime",
                format!("{:?} is not yyyy-MM-dd HH:mm:ss", a.begin_date_time),
            );
        }
        if end.is_err() {
            c.err(
                "activity.endDateTime",
                format!("{:?} is not yyyy-MM-dd HH:mm:ss", a.end_date_time),
            );
        }
        if let (Ok(b), Ok(e)) = (begin, end)
            && b > e
        {
            c.err(
                "activity.beginDateTime",
                format!("begins ({b}) after it ends ({e})"),
            );
        }
        for (i, s) in a.stages.iter().enumerate() {
            let p = format!("activity.stages[{i}]");
            c.text(&format!("{p}.channel"), &s.channel, 8);
            c.text(&format!("{p}.source"), &s.source, 8);
            c.text(&format!("{p}.state"), &s.state, 8);
        }
        if let Some(other) = rows
            .activities
            .iter()
            .find(|o| o.strategy_id == sid && o.activity_id != a.activity_id)
        {
            c.err(
                "strategy.strategyId",
                format!("strategy {sid} belongs to activity {}", other.activity_id),
            );
        }
    } else {
        if !doc.skus.is_empty() {
            c.err("skus", "SKUs need an activity");
        }
        if !doc.counts.is_empty() {
            c.err("counts", "count rows need an activity");
        }
        if !doc.rebates.is_empty() {
            c.err("rebates", "rebates need an activity");
        }
        if let Some(other) = rows.activities.iter().find(|o| o.strategy_id == sid) {
            c.err(
                "activity",
                format!(
                    "strategy {sid} belongs to activity {}; its document is the activity's",
                    other.activity_id
                ),
            );
        }
    }

    // Counts and SKUs.
    let mut count_ids = HashSet::new();
    for (i, n) in doc.counts.iter().enumerate() {
        let p = format!("counts[{i}]");
        c.range(
            &format!("{p}.activityCountId"),
            n.activity_count_id,
            1,
            i64::MAX,
        );
        if !count_ids.insert(n.activity_count_id) {
            c.err(
                format!("{p}.activityCountId"),
                format!("count row {} appears twice", n.activity_count_id),
            );
        }
        for (name, v) in [
            ("totalCount", n.total_count),
            ("dayCount", n.day_count),
            ("monthCount", n.month_count),
        ] {
            c.range(&format!("{p}.{name}"), v, 0, I32_MAX);
        }
    }
    let mut skus = HashSet::new();
    for (i, s) in doc.skus.iter().enumerate() {
        let p = format!("skus[{i}]");
        c.range(&format!("{p}.sku"), s.sku, 1, i64::MAX);
        if !skus.insert(s.sku) {
            c.err(format!("{p}.sku"), format!("SKU {} appears twice", s.sku));
        }
        if s.stock_count < 0 {
            c.err(
                format!("{p}.stockCount"),
                format!("stock {} is negative", s.stock_count),
            );
        } else {
            c.range(&format!("{p}.stockCount"), s.stock_count, 0, I32_MAX);
        }
        decimal_column(
            &mut c,
            &format!("{p}.productAmount"),
            &s.product_amount.0,
            10,
            2,
        );
        if !count_ids.contains(&s.activity_count_id) {
            c.err(
                format!("{p}.activityCountId"),
                format!(
                    "count row {} is not in the document's counts",
                    s.activity_count_id
                ),
            );
        }
        if let Some(stored) = rows.activity_skus.iter().find(|r| r.sku == s.sku) {
            if Some(stored.activity_id) != activity_id {
                c.err(
                    format!("{p}.sku"),
                    format!("SKU {} belongs to activity {}", s.sku, stored.activity_id),
                );
            } else {
                let granted = stored.stock_count - stored.stock_count_surplus;
                if s.stock_count < granted {
                    c.err(
                        format!("{p}.stockCount"),
                        format!(
                            "{} is below the {granted} units already sold",
                            s.stock_count
                        ),
                    );
                }
            }
        }
    }

    // Rebates.
    for (i, r) in doc.rebates.iter().enumerate() {
        let p = format!("rebates[{i}]");
        c.text(&format!("{p}.behaviorType"), &r.behavior_type, 16);
        c.len(&format!("{p}.rebateDesc"), &r.rebate_desc, 128);
        c.len(&format!("{p}.rebateConfig"), &r.rebate_config, 32);
        if !["open", "close"].contains(&r.state.as_str()) {
            c.err(
                format!("{p}.state"),
                format!("{:?} is not open or close", r.state),
            );
        }
        if r.rebate_type != crate::rebate::rebate_type::SKU {
            c.err(
                format!("{p}.rebateType"),
                "a campaign holds only rebates of type sku (credit rebates belong to no activity)",
            );
            continue;
        }
        match r.rebate_config.trim().parse::<i64>() {
            Err(_) => c.err(
                format!("{p}.rebateConfig"),
                format!("{:?} is not a SKU", r.rebate_config),
            ),
            Ok(sku) if skus.contains(&sku) => {}
            Ok(sku) => match rows.activity_skus.iter().find(|s| s.sku == sku) {
                Some(s) => c.err(
                    format!("{p}.rebateConfig"),
                    format!(
                        "grants SKU {sku} of activity {}, not of this one",
                        s.activity_id
                    ),
                ),
                None => c.err(
                    format!("{p}.rebateConfig"),
                    format!("grants SKU {sku}, which is not in the document"),
                ),
            },
        }
    }

    // Strategy.
    let st = &doc.strategy;
    c.range("strategy.strategyId", st.strategy_id, 1, I32_MAX);
    c.len("strategy.strategyDesc", &st.strategy_desc, 128);
    if let Some(models) = &st.rule_models {
        c.len("strategy.ruleModels", &models.join(","), 256);
        let mut seen = HashSet::new();
        for (i, m) in models.iter().enumerate() {
            let p = format!("strategy.ruleModels[{i}]");
            if ![model::BLACKLIST, model::WEIGHT].contains(&m.as_str()) {
                c.err(
                    &p,
                    format!("{m:?} is not a chain rule (rule_blacklist, rule_weight)"),
                );
            } else if !st.rules.iter().any(|r| &r.rule_model == m) {
                c.err(&p, format!("names {m} but the strategy has no {m} rule"));
            }
            if !seen.insert(m) {
                c.err(&p, format!("{m} appears twice"));
            }
        }
    }

    // Awards.
    let award_ids: HashSet<i64> = st.awards.iter().map(|a| a.award_id).collect();
    let tree_ids: HashSet<&str> = st.rule_trees.iter().map(|t| t.tree_id.as_str()).collect();
    let (mut ids, mut sorts) = (HashSet::new(), HashSet::new());
    let mut rate_sum = Decimal::ZERO;
    if st.awards.is_empty() {
        c.err("strategy.awards", "a strategy needs at least one award");
    }
    for (i, a) in st.awards.iter().enumerate() {
        let p = format!("strategy.awards[{i}]");
        c.range(&format!("{p}.awardId"), a.award_id, 1, I32_MAX);
        if !ids.insert(a.award_id) {
            c.err(
                format!("{p}.awardId"),
                format!("award {} appears twice", a.award_id),
            );
        }
        c.range(&format!("{p}.sort"), a.sort, 0, I32_MAX);
        if !sorts.insert(a.sort) {
            c.err(
                format!("{p}.sort"),
                format!("sort {} appears twice", a.sort),
            );
        }
        c.text(&format!("{p}.awardTitle"), &a.award_title, 128);
        if let Some(s) = &a.award_subtitle {
            c.len(&format!("{p}.awardSubtitle"), s, 128);
        }
        if a.award_count < 0 {
            c.err(
                format!("{p}.awardCount"),
                format!("stock {} is negative", a.award_count),
            );
        } else {
            c.range(&format!("{p}.awardCount"), a.award_count, 0, I32_MAX);
        }
        if let Some(rate) = decimal_column(&mut c, &format!("{p}.awardRate"), &a.award_rate.0, 6, 4)
        {
            rate_sum += rate.max(Decimal::ZERO);
        }
        c.len(&format!("{p}.awardKey"), &a.award_key, 32);
        if !DELIVERABLE.contains(&a.award_key.as_str())
            && !UNDELIVERABLE.contains(&a.award_key.as_str())
        {
            c.err(
                format!("{p}.awardKey"),
                format!(
                    "{:?} is not a key the service delivers ({}) nor a known key without delivery ({})",
                    a.award_key,
                    DELIVERABLE.join(", "),
                    UNDELIVERABLE.join(", ")
                ),
            );
        }
        c.len(&format!("{p}.awardConfig"), &a.award_config, 32);
        if a.award_key == key::USER_CREDIT_RANDOM
            && crate::award::parse_range(&a.award_config).is_err()
        {
            c.err(
                format!("{p}.awardConfig"),
                format!("{:?} is not a credit range like 1,100", a.award_config),
            );
        }
        if a.award_key == key::OPENAI_USE_COUNT
            && a.award_config
                .trim()
                .parse::<i64>()
                .map_or(true, |n| n <= 0)
        {
            c.err(
                format!("{p}.awardConfig"),
                format!("{:?} is not a positive number of uses", a.award_config),
            );
        }
        c.len(&format!("{p}.awardDesc"), &a.award_desc, 128);
        if let Some(t) = &a.rule_models {
            c.len(&format!("{p}.ruleModels"), t, 256);
            if !t.trim().is_empty() && !tree_ids.contains(t.trim()) {
                c.err(
                    format!("{p}.ruleModels"),
                    format!("rule tree {t} is not in strategy.ruleTrees"),
                );
            }
        }
        // A stored award row used by other strategies is theirs too.
        if let Ok(aid) = i32::try_from(a.award_id)
            && let Some(stored) = rows.awards.iter().find(|w| w.award_id == aid)
            && (stored.award_key != a.award_key
                || stored.award_config != a.award_config
                || stored.award_desc != a.award_desc)
        {
            let users = users_of_award(rows, aid, sid);
            if !users.is_empty() {
                c.err(
                    format!("{p}.awardKey"),
                    format!("award {aid}'s key, config or description would change for strategies {users:?} too; use a new awardId"),
                );
            }
        }
        // Stock may not go below what was granted (or is held by open draws).
        if let Ok(aid) = i32::try_from(a.award_id)
            && let Some(stored) = rows
                .strategy_awards
                .iter()
                .find(|s| s.strategy_id == sid && s.award_id == aid)
        {
            let granted = stored.award_count - stored.award_count_surplus;
            if a.award_count < granted {
                c.err(
                    format!("{p}.awardCount"),
                    format!(
                        "{} is below the {granted} units already granted",
                        a.award_count
                    ),
                );
            }
        }
    }
    if !st.awards.is_empty() && rate_sum.is_zero() {
        c.err(
            "strategy.awards",
            "every rate is zero: nothing can be drawn",
        );
    }
    let mut removed_with_records: Vec<i32> = rows
        .strategy_awards
        .iter()
        .filter(|s| s.strategy_id == sid && !award_ids.contains(&i64::from(s.award_id)))
        .map(|s| s.award_id)
        .filter(|id| with_records.contains(id))
        .collect();
    removed_with_records.sort_unstable();
    for id in removed_with_records {
        c.err(
            "strategy.awards",
            format!(
                "award {id} has award records and cannot be removed; set its rate or stock to 0"
            ),
        );
    }

    // Rules.
    let mut models = HashSet::new();
    for (j, r) in st.rules.iter().enumerate() {
        check_rule(&mut c, j, r, &award_ids, &mut models, rows, doc);
    }

    // Trees.
    let known_award = |id: i64| {
        award_ids.contains(&id) || rows.awards.iter().any(|w| i64::from(w.award_id) == id)
    };
    let mut seen_trees = HashSet::new();
    for (t, tree) in st.rule_trees.iter().enumerate() {
        let p = format!("strategy.ruleTrees[{t}]");
        c.text(&format!("{p}.treeId"), &tree.tree_id, 32);
        if !seen_trees.insert(tree.tree_id.as_str()) {
            c.err(
                format!("{p}.treeId"),
                format!("tree {} appears twice", tree.tree_id),
            );
        }
        if !st
            .awards
            .iter()
            .any(|a| a.rule_models.as_deref().map(str::trim) == Some(tree.tree_id.as_str()))
        {
            c.err(
                format!("{p}.treeId"),
                format!("tree {} is used by no award", tree.tree_id),
            );
        }
        check_tree(&mut c, &p, tree, &known_award);
        if let Some(stored) = super::document::export_tree(rows, &tree.tree_id)
            && &stored != tree
        {
            let users = users_of_tree(rows, &tree.tree_id, sid);
            if !users.is_empty() {
                c.err(
                    &p,
                    format!("tree {} would change for strategies {users:?} too; give the changed tree a new treeId", tree.tree_id),
                );
            }
        }
    }

    // Last, the armory itself: whatever the draw would refuse.
    if c.errors.is_empty()
        && let Err(e) = to_strategy_config(doc, &rows.awards).and_then(AssembledStrategy::assemble)
    {
        c.err("strategy", e.to_string());
    }
    c.errors
}

fn check_rule(
    c: &mut Checker,
    j: usize,
    r: &RuleDoc,
    award_ids: &HashSet<i64>,
    models: &mut HashSet<String>,
    rows: &ConfigRows,
    doc: &CampaignDocument,
) {
    let p = format!("strategy.rules[{j}]");
    c.text(&format!("{p}.ruleModel"), &r.rule_model, 16);
    if !models.insert(r.rule_model.clone()) {
        c.err(
            format!("{p}.ruleModel"),
            format!("{} appears twice", r.rule_model),
        );
    }
    c.len(&format!("{p}.ruleDesc"), &r.rule_desc, 128);
    if let Some(t) = r.rule_type {
        c.range(&format!("{p}.ruleType"), t, 0, 127);
    }
    if let Some(a) = r.award_id {
        c.range(&format!("{p}.awardId"), a, 1, I32_MAX);
    }
    let forms = [
        r.weight_groups.is_some(),
        r.blacklist.is_some(),
        r.rule_value.is_some(),
    ];
    if forms.iter().filter(|f| **f).count() != 1 {
        c.err(&p, "give exactly one of weightGroups, blacklist, ruleValue");
        return;
    }
    c.len(&format!("{p}.ruleValue"), &rule_value(r), 256);
    let sid = doc.strategy.strategy_id;
    if let Some(groups) = &r.weight_groups {
        if r.rule_model != model::WEIGHT {
            c.err(
                format!("{p}.weightGroups"),
                format!("weightGroups belong to rule_weight, not {}", r.rule_model),
            );
        }
        let mut thresholds = HashSet::new();
        for (k, g) in groups.iter().enumerate() {
            let gp = format!("{p}.weightGroups[{k}]");
            if g.threshold < 0 {
                c.err(
                    format!("{gp}.threshold"),
                    format!("{} is negative", g.threshold),
                );
            }
            if !thresholds.insert(g.threshold) {
                c.err(
                    format!("{gp}.threshold"),
                    format!("threshold {} appears twice", g.threshold),
                );
            }
            if g.award_ids.is_empty() {
                c.err(format!("{gp}.awardIds"), "a group needs at least one award");
            }
            for (m, id) in g.award_ids.iter().enumerate() {
                if !award_ids.contains(id) {
                    c.err(
                        format!("{gp}.awardIds[{m}]"),
                        format!("award {id} is not in the strategy"),
                    );
                }
            }
        }
    } else if let Some(b) = &r.blacklist {
        if r.rule_model != model::BLACKLIST {
            c.err(
                format!("{p}.blacklist"),
                format!("blacklist belongs to rule_blacklist, not {}", r.rule_model),
            );
        }
        if !award_ids.contains(&b.award_id)
            && !rows
                .awards
                .iter()
                .any(|w| i64::from(w.award_id) == b.award_id)
        {
            c.err(
                format!("{p}.blacklist.awardId"),
                format!(
                    "award {} is neither in the strategy nor in the award table",
                    b.award_id
                ),
            );
        }
        if b.users.is_empty() {
            c.err(
                format!("{p}.blacklist.users"),
                "a blacklist needs at least one user",
            );
        }
        for (u, user) in b.users.iter().enumerate() {
            if user.trim().is_empty() || user.contains([',', ':', ' ']) {
                c.err(
                    format!("{p}.blacklist.users[{u}]"),
                    format!("{user:?} is blank or holds ',', ':' or a space"),
                );
            }
        }
    } else if let Some(v) = &r.rule_value {
        let parsed = match r.rule_model.as_str() {
            model::WEIGHT => crate::strategy::rules::parse_weight(sid, v).map(|g| {
                for (k, g) in g.iter().enumerate() {
                    for id in &g.award_ids {
                        if !award_ids.contains(&i64::from(*id)) {
                            c.err(
                                format!("{p}.ruleValue"),
                                format!("group {k} names award {id}, which is not in the strategy"),
                            );
                        }
                    }
                }
            }),
            model::BLACKLIST => crate::strategy::rules::parse_blacklist(sid, v).map(|b| {
                if b.users.is_empty() {
                    c.err(
                        format!("{p}.ruleValue"),
                        "a blacklist needs at least one user",
                    );
                }
                if !award_ids.contains(&i64::from(b.award_id))
                    && !rows.awards.iter().any(|w| w.award_id == b.award_id)
                {
                    c.err(
                        format!("{p}.ruleValue"),
                        format!(
                            "award {} is neither in the strategy nor in the award table",
                            b.award_id
                        ),
                    );
                }
            }),
            _ => Ok(()),
        };
        if let Err(e) = parsed {
            c.err(format!("{p}.ruleValue"), e.to_string());
        }
    }
}

fn check_tree(c: &mut Checker, p: &str, tree: &TreeDoc, known_award: &dyn Fn(i64) -> bool) {
    c.text(&format!("{p}.treeName"), &tree.tree_name, 64);
    if let Some(d) = &tree.tree_desc {
        c.len(&format!("{p}.treeDesc"), d, 128);
    }
    c.len(
        &format!("{p}.treeNodeRuleKey"),
        &tree.tree_node_rule_key,
        32,
    );
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (n, node) in tree.nodes.iter().enumerate() {
        let np = format!("{p}.nodes[{n}]");
        c.len(&format!("{np}.ruleKey"), &node.rule_key, 32);
        c.len(&format!("{np}.ruleDesc"), &node.rule_desc, 64);
        if index.insert(node.rule_key.as_str(), n).is_some() {
            c.err(
                format!("{np}.ruleKey"),
                format!("node {} appears twice", node.rule_key),
            );
        }
        let value = node.rule_value.as_deref().map(str::trim);
        if let Some(v) = &node.rule_value {
            c.len(&format!("{np}.ruleValue"), v, 128);
        }
        match node.rule_key.as_str() {
            model::LOCK => {
                if value
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_none_or(|n| n <= 0)
                {
                    c.err(
                        format!("{np}.ruleValue"),
                        format!("lock threshold {value:?} is not a positive integer"),
                    );
                }
            }
            model::STOCK => {}
            model::LUCK_AWARD => {
                let v = value.unwrap_or("");
                let (award, _config) = v.split_once(':').unwrap_or((v, ""));
                match award.trim().parse::<i64>() {
                    Err(_) => c.err(
                        format!("{np}.ruleValue"),
                        format!("{v:?} is not \"awardId:config\""),
                    ),
                    Ok(id) if !known_award(id) => c.err(
                        format!("{np}.ruleValue"),
                        format!("luck award {id} does not exist in the award table"),
                    ),
                    Ok(_) => {}
                }
            }
            other => c.err(
                format!("{np}.ruleKey"),
                format!("{other:?} is not a tree node (rule_lock, rule_stock, rule_luck_award)"),
            ),
        }
    }
    let root = index.get(tree.tree_node_rule_key.as_str()).copied();
    if root.is_none() {
        c.err(
            format!("{p}.treeNodeRuleKey"),
            format!(
                "root node {} is not among the nodes",
                tree.tree_node_rule_key
            ),
        );
    }
    let mut edges: Vec<Vec<(usize, usize)>> = vec![Vec::new(); tree.nodes.len()];
    for (l, line) in tree.lines.iter().enumerate() {
        let lp = format!("{p}.lines[{l}]");
        let from = index.get(line.rule_node_from.as_str()).copied();
        let to = index.get(line.rule_node_to.as_str()).copied();
        if from.is_none() {
            c.err(
                format!("{lp}.ruleNodeFrom"),
                format!("node {} does not exist", line.rule_node_from),
            );
        }
        if to.is_none() {
            c.err(
                format!("{lp}.ruleNodeTo"),
                format!("node {} does not exist", line.rule_node_to),
            );
        }
        if !LIMIT_TYPES.contains(&line.rule_limit_type.trim()) {
            c.err(
                format!("{lp}.ruleLimitType"),
                format!("{:?} is not one of {LIMIT_TYPES:?}", line.rule_limit_type),
            );
        }
        c.len(&format!("{lp}.ruleLimitType"), &line.rule_limit_type, 8);
        c.len(&format!("{lp}.ruleLimitValue"), &line.rule_limit_value, 32);
        if !line
            .rule_limit_value
            .split(',')
            .all(|v| matches!(v.trim(), "ALLOW" | "TAKE_OVER"))
        {
            c.err(
                format!("{lp}.ruleLimitValue"),
                format!("{:?} is not ALLOW or TAKE_OVER", line.rule_limit_value),
            );
        }
        if let (Some(f), Some(t)) = (from, to)
            && let Some(e) = edges.get_mut(f)
        {
            e.push((t, l));
        }
    }
    let Some(root) = root else { return };
    // Depth-first from the root: a line back to a node on the current path is a cycle.
    let mut state = vec![0u8; tree.nodes.len()]; // 0 new, 1 on path, 2 done
    let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
    if let Some(s) = state.get_mut(root) {
        *s = 1;
    }
    while let Some((node, next)) = stack.last_mut() {
        let node = *node;
        let out = edges.get(node).map_or(&[][..], Vec::as_slice);
        if let Some(&(to, l)) = out.get(*next) {
            *next += 1;
            match state.get_mut(to) {
                Some(1) => {
                    let (from, to) = tree.lines.get(l).map_or(("", ""), |line| {
                        (line.rule_node_from.as_str(), line.rule_node_to.as_str())
                    });
                    c.err(
                        format!("{p}.lines[{l}]"),
                        format!("line {from} → {to} closes a cycle"),
                    );
                }
                Some(s @ 0) => {
                    *s = 1;
                    stack.push((to, 0));
                }
                _ => {}
            }
        } else {
            if let Some(s) = state.get_mut(node) {
                *s = 2;
            }
            stack.pop();
        }
    }
    for ((n, s), node) in state.iter().enumerate().zip(&tree.nodes) {
        if *s == 0 {
            c.err(
                format!("{p}.nodes[{n}]"),
                format!(
                    "node {} cannot be reached from the root {}",
                    node.rule_key, tree.tree_node_rule_key
                ),
            );
        }
    }
}

fn users_of_award(rows: &ConfigRows, award_id: i32, except: i64) -> Vec<i64> {
    let mut v: Vec<i64> = rows
        .strategy_awards
        .iter()
        .filter(|s| s.award_id == award_id && s.strategy_id != except)
        .map(|s| s.strategy_id)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn users_of_tree(rows: &ConfigRows, tree_id: &str, except: i64) -> Vec<i64> {
    let mut v: Vec<i64> = rows
        .strategy_awards
        .iter()
        .filter(|s| {
            s.strategy_id != except && s.rule_models.as_deref().map(str::trim) == Some(tree_id)
        })
        .map(|s| s.strategy_id)
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Validates `doc` against the stored configuration and sorts the findings: a problem
/// the stored version of the same campaign already has (same path and message) is a
/// warning, anything new an error.
pub fn validate_against(
    doc: &CampaignDocument,
    rows: &ConfigRows,
    with_records: &HashSet<i32>,
) -> Report {
    let found = validate(doc, rows, with_records);
    let stored: HashSet<Finding> = super::document::export(rows, doc.key())
        .map(|d| validate(&d, rows, &HashSet::new()).into_iter().collect())
        .unwrap_or_default();
    let (warnings, errors): (Vec<Finding>, Vec<Finding>) =
        found.into_iter().partition(|f| stored.contains(f));
    Report {
        valid: errors.is_empty(),
        errors,
        warnings,
    }
}

/// The document checks on a strategy as the armory reads it (its rows, its trees, the
/// award table). The armory logs what this finds: it keeps refusing only what cannot be
/// drawn (a stored strategy that upstream's data left imperfect still serves), while a
/// document that adds such a problem is refused at validation.
pub fn check_strategy_config(config: &crate::strategy::StrategyConfig) -> Vec<Finding> {
    let Some(strategy) = &config.strategy else {
        return Vec::new();
    };
    let rows = ConfigRows {
        awards: config.award_table.clone(),
        strategies: vec![strategy.clone()],
        strategy_awards: config.awards.clone(),
        strategy_rules: config.rules.clone(),
        rule_trees: config.trees.clone(),
        rule_tree_nodes: config.tree_nodes.clone(),
        rule_tree_lines: config.tree_lines.clone(),
        activities: Vec::new(),
        activity_counts: Vec::new(),
        activity_skus: Vec::new(),
        rebates: Vec::new(),
        stages: Vec::new(),
    };
    match super::document::export(&rows, super::CampaignKey::Strategy(strategy.strategy_id)) {
        Some(doc) => validate(&doc, &rows, &HashSet::new()),
        None => Vec::new(),
    }
}
