//! The campaign document and its export from rows.
//!
//! Field names are upstream's column names in camelCase, so a reader who knows the tables
//! reads the document at once. Two things are shaped more clearly than upstream's strings:
//! `rule_weight` values are lists of groups and `rule_blacklist` values an award with a
//! list of users, whenever the stored string is exactly what that shape writes back (any
//! other value is kept as the raw `ruleValue`, so export then apply never changes a row).
//! Stock in the document is the total (`awardCount`, `stockCount`); what is left is state
//! and stays out of it.

use super::apply::ConfigRows;
use crate::activity::RaffleActivity;
use crate::rebate::rebate_type;
use crate::time::format_datetime;
use serde::{Deserialize, Deserializer, Serialize};

/// One campaign: an activity with its strategy, or a strategy alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CampaignDocument {
    /// `raffle_activity` (absent for a strategy without an activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<ActivityDoc>,
    /// `raffle_activity_count` rows the SKUs use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<CountDoc>,
    /// `raffle_activity_sku` rows of the activity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<SkuDoc>,
    /// `daily_behavior_rebate` rows that grant one of the SKUs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rebates: Vec<RebateDoc>,
    pub strategy: StrategyDoc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityDoc {
    pub activity_id: i64,
    pub activity_name: String,
    pub activity_desc: String,
    /// `yyyy-MM-dd HH:mm:ss`, local to the configured zone.
    pub begin_date_time: String,
    pub end_date_time: String,
    /// `create`, `open` or `close`.
    pub state: String,
    /// `raffle_activity_stage` rows showing the activity on a channel/source.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StageDoc {
    pub channel: String,
    pub source: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CountDoc {
    pub activity_count_id: i64,
    pub total_count: i64,
    pub day_count: i64,
    pub month_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SkuDoc {
    pub sku: i64,
    pub activity_count_id: i64,
    /// Price in credits, `decimal(10,2)`; a JSON number or string.
    pub product_amount: DecimalText,
    /// Total stock; changing it by Δ changes what is left by Δ.
    pub stock_count: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RebateDoc {
    pub behavior_type: String,
    pub rebate_desc: String,
    /// Always `sku` here: rebates of credits belong to no activity.
    pub rebate_type: String,
    /// The SKU granted.
    pub rebate_config: String,
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StrategyDoc {
    pub strategy_id: i64,
    pub strategy_desc: String,
    /// The pre-draw chain in order (`strategy.rule_models`); `null` when the column is.
    #[serde(default)]
    pub rule_models: Option<Vec<String>>,
    pub awards: Vec<AwardDoc>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleDoc>,
    /// The rule trees the awards use (`ruleModels` of an award names one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_trees: Vec<TreeDoc>,
}

/// A `strategy_award` row with its `award` row (`awardKey`, `awardConfig`, `awardDesc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwardDoc {
    pub award_id: i64,
    pub award_title: String,
    #[serde(default)]
    pub award_subtitle: Option<String>,
    /// Total stock; changing it by Δ changes what is left by Δ.
    pub award_count: i64,
    /// `decimal(6,4)`; a JSON number or string.
    pub award_rate: DecimalText,
    pub sort: i64,
    /// The award's rule tree id (upstream reuses the column name `rule_models`).
    #[serde(default)]
    pub rule_models: Option<String>,
    pub award_key: String,
    pub award_config: String,
    pub award_desc: String,
}

/// A `strategy_rule` row. Exactly one of `weightGroups`, `blacklist`, `ruleValue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleDoc {
    pub rule_model: String,
    pub rule_desc: String,
    /// `rule_type`; 1 (strategy rule) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub award_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_groups: Option<Vec<WeightGroupDoc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blacklist: Option<BlacklistDoc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightGroupDoc {
    /// Draws used in the activity at which the group applies.
    pub threshold: i64,
    pub award_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlacklistDoc {
    pub award_id: i64,
    pub users: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TreeDoc {
    pub tree_id: String,
    pub tree_name: String,
    #[serde(default)]
    pub tree_desc: Option<String>,
    pub tree_node_rule_key: String,
    pub nodes: Vec<NodeDoc>,
    /// In order: the first line that matches a node's outcome is taken.
    #[serde(default)]
    pub lines: Vec<LineDoc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeDoc {
    pub rule_key: String,
    pub rule_desc: String,
    #[serde(default)]
    pub rule_value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LineDoc {
    pub rule_node_from: String,
    pub rule_node_to: String,
    pub rule_limit_type: String,
    pub rule_limit_value: String,
}

/// A decimal as written: a JSON number or string, checked by validation (so a bad value
/// is reported with its path among the other errors, not as a parse failure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DecimalText(pub String);

impl<'de> Deserialize<'de> for DecimalText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumOrStr {
            Num(serde_json::Number),
            Str(String),
        }
        Ok(DecimalText(match NumOrStr::deserialize(d)? {
            NumOrStr::Num(n) => n.to_string(),
            NumOrStr::Str(s) => s,
        }))
    }
}

impl DecimalText {
    pub fn parse(&self) -> Option<rust_decimal::Decimal> {
        let s = self.0.trim();
        // `Decimal::from_str` also accepts `1e3`; keep to plain decimals.
        if s.is_empty() || s.contains(['e', 'E']) {
            return None;
        }
        s.parse().ok()
    }
}

/// Which campaign: by activity, or by strategy (a strategy that has an activity is that
/// activity's campaign).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CampaignKey {
    Activity(i64),
    Strategy(i64),
}

impl CampaignKey {
    /// The key a campaign is stored under: its activity when it has one.
    pub fn resolve(self, rows: &ConfigRows) -> Option<CampaignKey> {
        match self {
            CampaignKey::Activity(id) => rows
                .activities
                .iter()
                .any(|a| a.activity_id == id)
                .then_some(self),
            CampaignKey::Strategy(id) => {
                if let Some(a) = rows.activities.iter().find(|a| a.strategy_id == id) {
                    Some(CampaignKey::Activity(a.activity_id))
                } else {
                    rows.strategies
                        .iter()
                        .any(|s| s.strategy_id == id)
                        .then_some(self)
                }
            }
        }
    }

    /// `("activity" | "strategy", id)`, as the version table stores it.
    pub fn parts(self) -> (&'static str, i64) {
        match self {
            CampaignKey::Activity(id) => ("activity", id),
            CampaignKey::Strategy(id) => ("strategy", id),
        }
    }
}

impl CampaignDocument {
    /// The key this document is stored under.
    pub fn key(&self) -> CampaignKey {
        match &self.activity {
            Some(a) => CampaignKey::Activity(a.activity_id),
            None => CampaignKey::Strategy(self.strategy.strategy_id),
        }
    }
}

/// Parses a document, naming the place of a malformed field (`strategy.awards[2].sort`).
pub fn parse_document(json: &[u8]) -> Result<CampaignDocument, super::Finding> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        super::Finding {
            path: if path == "." { String::new() } else { path },
            message,
        }
    })
}

/// One line of the campaign list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<i64>,
    pub strategy_id: i64,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    /// Newest version applied through a document; `null` when never applied.
    pub current_version: Option<i64>,
}

/// Every activity, then every strategy without an activity.
pub fn list(
    rows: &ConfigRows,
    version_of: impl Fn(CampaignKey) -> Option<i64>,
) -> Vec<CampaignSummary> {
    let mut out: Vec<CampaignSummary> = rows
        .activities
        .iter()
        .map(|a: &RaffleActivity| CampaignSummary {
            activity_id: Some(a.activity_id),
            strategy_id: a.strategy_id,
            name: a.activity_name.clone(),
            state: Some(a.state.clone()),
            begin_date_time: Some(format_datetime(&a.begin_date_time)),
            end_date_time: Some(format_datetime(&a.end_date_time)),
            current_version: version_of(CampaignKey::Activity(a.activity_id)),
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for s in &rows.strategies {
        if rows
            .activities
            .iter()
            .any(|a| a.strategy_id == s.strategy_id)
            || !seen.insert(s.strategy_id)
        {
            continue;
        }
        out.push(CampaignSummary {
            activity_id: None,
            strategy_id: s.strategy_id,
            name: s.strategy_desc.clone(),
            state: None,
            begin_date_time: None,
            end_date_time: None,
            current_version: version_of(CampaignKey::Strategy(s.strategy_id)),
        });
    }
    out
}

/// Canonical `rule_weight` value of groups (what upstream's parser reads).
pub(super) fn weight_value(groups: &[WeightGroupDoc]) -> String {
    groups
        .iter()
        .map(|g| {
            let ids: Vec<String> = g.award_ids.iter().map(i64::to_string).collect();
            format!("{}:{}", g.threshold, ids.join(","))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Canonical `rule_blacklist` value.
pub(super) fn blacklist_value(b: &BlacklistDoc) -> String {
    format!("{}:{}", b.award_id, b.users.join(","))
}

fn shape_weight(value: &str) -> Option<Vec<WeightGroupDoc>> {
    let mut groups = Vec::new();
    for token in value.split(' ') {
        let (t, ids) = token.split_once(':')?;
        let award_ids = ids
            .split(',')
            .map(|i| i.parse::<i64>().ok())
            .collect::<Option<Vec<_>>>()?;
        groups.push(WeightGroupDoc {
            threshold: t.parse().ok()?,
            award_ids,
        });
    }
    // Only when writing the groups back gives the very same string.
    (weight_value(&groups) == value && !groups.is_empty()).then_some(groups)
}

fn shape_blacklist(value: &str) -> Option<BlacklistDoc> {
    let (a, users) = value.split_once(':')?;
    let b = BlacklistDoc {
        award_id: a.parse().ok()?,
        users: users.split(',').map(str::to_owned).collect(),
    };
    (blacklist_value(&b) == value).then_some(b)
}

/// The rule's value as stored.
pub(super) fn rule_value(r: &RuleDoc) -> String {
    if let Some(g) = &r.weight_groups {
        weight_value(g)
    } else if let Some(b) = &r.blacklist {
        blacklist_value(b)
    } else {
        r.rule_value.clone().unwrap_or_default()
    }
}

/// The document of a stored campaign, or `None` when it does not exist.
pub fn export(rows: &ConfigRows, key: CampaignKey) -> Option<CampaignDocument> {
    let key = key.resolve(rows)?;
    let (activity, strategy_id) = match key {
        CampaignKey::Activity(id) => {
            let a = rows.activities.iter().find(|a| a.activity_id == id)?;
            (Some(a), a.strategy_id)
        }
        CampaignKey::Strategy(id) => (None, id),
    };
    let strategy = rows
        .strategies
        .iter()
        .find(|s| s.strategy_id == strategy_id);
    let skus: Vec<SkuDoc> = activity
        .map(|a| {
            rows.activity_skus
                .iter()
                .filter(|s| s.activity_id == a.activity_id)
                .map(|s| SkuDoc {
                    sku: s.sku,
                    activity_count_id: s.activity_count_id,
                    product_amount: DecimalText(s.product_amount.to_string()),
                    stock_count: s.stock_count,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut counts: Vec<CountDoc> = Vec::new();
    for s in &skus {
        if counts
            .iter()
            .any(|c| c.activity_count_id == s.activity_count_id)
        {
            continue;
        }
        if let Some(c) = rows
            .activity_counts
            .iter()
            .find(|c| c.activity_count_id == s.activity_count_id)
        {
            counts.push(CountDoc {
                activity_count_id: c.activity_count_id,
                total_count: c.total_count,
                day_count: c.day_count,
                month_count: c.month_count,
            });
        }
    }
    let sku_ids: Vec<String> = skus.iter().map(|s| s.sku.to_string()).collect();
    let rebates = rows
        .rebates
        .iter()
        .filter(|r| r.rebate_type == rebate_type::SKU && sku_ids.contains(&r.rebate_config))
        .map(|r| RebateDoc {
            behavior_type: r.behavior_type.clone(),
            rebate_desc: r.rebate_desc.clone(),
            rebate_type: r.rebate_type.clone(),
            rebate_config: r.rebate_config.clone(),
            state: r.state.clone(),
        })
        .collect();
    let awards: Vec<AwardDoc> = rows
        .strategy_awards
        .iter()
        .filter(|a| a.strategy_id == strategy_id)
        .map(|a| {
            let award = rows.awards.iter().find(|w| w.award_id == a.award_id);
            AwardDoc {
                award_id: a.award_id.into(),
                award_title: a.award_title.clone(),
                award_subtitle: a.award_subtitle.clone(),
                award_count: a.award_count,
                award_rate: DecimalText(a.award_rate.to_string()),
                sort: a.sort.into(),
                rule_models: a.rule_models.clone(),
                award_key: award.map(|w| w.award_key.clone()).unwrap_or_default(),
                award_config: award.map(|w| w.award_config.clone()).unwrap_or_default(),
                award_desc: award.map(|w| w.award_desc.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let rules = rows
        .strategy_rules
        .iter()
        .filter(|r| r.strategy_id == strategy_id)
        .map(|r| {
            let mut doc = RuleDoc {
                rule_model: r.rule_model.clone(),
                rule_desc: r.rule_desc.clone(),
                rule_type: (r.rule_type != 1).then_some(r.rule_type.into()),
                award_id: r.award_id.map(Into::into),
                weight_groups: None,
                blacklist: None,
                rule_value: None,
            };
            match r.rule_model.as_str() {
                crate::strategy::model::WEIGHT => doc.weight_groups = shape_weight(&r.rule_value),
                crate::strategy::model::BLACKLIST => doc.blacklist = shape_blacklist(&r.rule_value),
                _ => {}
            }
            if doc.weight_groups.is_none() && doc.blacklist.is_none() {
                doc.rule_value = Some(r.rule_value.clone());
            }
            doc
        })
        .collect();
    let used: Vec<&str> = awards
        .iter()
        .filter_map(|a| a.rule_models.as_deref())
        .collect();
    let rule_trees = rows
        .rule_trees
        .iter()
        .filter(|t| used.contains(&t.tree_id.as_str()))
        .filter_map(|t| export_tree(rows, &t.tree_id))
        .collect();
    Some(CampaignDocument {
        activity: activity.map(|a| ActivityDoc {
            activity_id: a.activity_id,
            activity_name: a.activity_name.clone(),
            activity_desc: a.activity_desc.clone(),
            begin_date_time: format_datetime(&a.begin_date_time),
            end_date_time: format_datetime(&a.end_date_time),
            state: a.state.clone(),
            stages: rows
                .stages
                .iter()
                .filter(|s| s.activity_id == a.activity_id)
                .map(|s| StageDoc {
                    channel: s.channel.clone(),
                    source: s.source.clone(),
                    state: s.state.clone(),
                })
                .collect(),
        }),
        counts,
        skus,
        rebates,
        strategy: StrategyDoc {
            strategy_id,
            strategy_desc: strategy
                .map(|s| s.strategy_desc.clone())
                .unwrap_or_default(),
            rule_models: strategy.and_then(|s| {
                s.rule_models
                    .as_ref()
                    .map(|m| m.split(',').map(str::to_owned).collect())
            }),
            awards,
            rules,
            rule_trees,
        },
    })
}

/// A stored tree with its nodes and lines, in table order.
pub(super) fn export_tree(rows: &ConfigRows, tree_id: &str) -> Option<TreeDoc> {
    let t = rows.rule_trees.iter().find(|t| t.tree_id == tree_id)?;
    Some(TreeDoc {
        tree_id: t.tree_id.clone(),
        tree_name: t.tree_name.clone(),
        tree_desc: t.tree_desc.clone(),
        tree_node_rule_key: t.tree_node_rule_key.clone(),
        nodes: rows
            .rule_tree_nodes
            .iter()
            .filter(|n| n.tree_id == t.tree_id)
            .map(|n| NodeDoc {
                rule_key: n.rule_key.clone(),
                rule_desc: n.rule_desc.clone(),
                rule_value: n.rule_value.clone(),
            })
            .collect(),
        lines: rows
            .rule_tree_lines
            .iter()
            .filter(|l| l.tree_id == t.tree_id)
            .map(|l| LineDoc {
                rule_node_from: l.rule_node_from.clone(),
                rule_node_to: l.rule_node_to.clone(),
                rule_limit_type: l.rule_limit_type.clone(),
                rule_limit_value: l.rule_limit_value.clone(),
            })
            .collect(),
    })
}
