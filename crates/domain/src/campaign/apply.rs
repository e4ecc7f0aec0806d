//! Writing a campaign: the row changes that make storage equal to a document ([`plan`]),
//! the unit of work that validates and writes them with a new version ([`apply_in`]), and
//! the service the edges call ([`CampaignService`]).

use super::document::{CampaignDocument, CampaignKey, CampaignSummary, rule_value};
use super::simulate::{Simulation, SimulationInput, SimulationRequest, simulate};
use super::validate::{Finding, Report, validate_against};
use crate::activity::{
    ActivityService, RaffleActivity, RaffleActivityCount, RaffleActivitySku, RaffleActivityStage,
};
use crate::award::Award;
use crate::error::{Error, Result};
use crate::rebate::{DailyBehaviorRebate, rebate_type};
use crate::strategy::tree::{RuleTreeLineRow, RuleTreeNodeRow, RuleTreeRow};
use crate::strategy::{Strategy, StrategyAward, StrategyConfig, StrategyRule, StrategyService};
use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

/// Every row of the configuration tables, as read in one transaction (the configuration
/// is small: a few hundred rows). The same shape as the sample that seeds a fresh store.
pub type ConfigRows = crate::sample::SampleData;

/// A version as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub version: i64,
    /// `yyyy-MM-dd HH:mm:ss` (UTC).
    pub create_time: String,
    pub author: String,
    pub summary: String,
}

/// A version to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    pub key: CampaignKey,
    pub version: i64,
    /// The document as applied (JSON).
    pub document: String,
    pub author: String,
    pub summary: String,
}

/// What an apply wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<i64>,
    pub strategy_id: i64,
    pub version: i64,
    pub summary: String,
}

/// A row to write; `new` rows are inserted, the others updated by their key. For stock
/// rows `delta` is the change of the total, applied to what is left as well.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<T> {
    pub row: T,
    pub new: bool,
    pub delta: i64,
}

/// A tree written whole: its rows of the three tree tables replace the stored ones.
#[derive(Debug, Clone, PartialEq)]
pub struct TreeRows {
    pub tree: RuleTreeRow,
    pub nodes: Vec<RuleTreeNodeRow>,
    pub lines: Vec<RuleTreeLineRow>,
}

/// The row changes that make the stored configuration equal to a document. Only what
/// differs is written, so an unchanged campaign writes nothing but its version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The campaign's strategy and activity (whether or not their rows change).
    pub strategy_id: i64,
    pub activity_id: Option<i64>,
    pub strategy: Option<Change<Strategy>>,
    pub awards: Vec<Change<Award>>,
    pub strategy_awards: Vec<Change<StrategyAward>>,
    pub removed_strategy_awards: Vec<i32>,
    pub rules: Vec<Change<StrategyRule>>,
    pub removed_rules: Vec<String>,
    pub trees: Vec<TreeRows>,
    pub activity: Option<Change<RaffleActivity>>,
    /// All stage rows of the activity, replacing the stored ones.
    pub stages: Option<Vec<RaffleActivityStage>>,
    pub counts: Vec<Change<RaffleActivityCount>>,
    pub skus: Vec<Change<RaffleActivitySku>>,
    pub removed_skus: Vec<i64>,
    /// `(rebate_config values whose sku rebates are deleted, rows inserted)`.
    pub rebates: Option<(Vec<String>, Vec<DailyBehaviorRebate>)>,
    /// What changed, in words.
    pub summary: Vec<String>,
}

impl Plan {
    /// Whether the plan writes nothing.
    pub fn is_empty(&self) -> bool {
        self.summary.is_empty()
    }
}

fn id32(v: i64) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::illegal(format!("{v} does not fit an int column")))
}

fn decimal(raw: &str, scale: u32, what: &str) -> Result<Decimal> {
    let mut d = super::document::DecimalText(raw.to_owned())
        .parse()
        .ok_or_else(|| Error::illegal(format!("{what} {raw:?} is not a number")))?;
    d.rescale(scale);
    Ok(d)
}

/// The strategy's armory input as the document describes it (for validation and
/// simulation: the real armory assembles it). `stored_awards` is the award table as
/// stored; the document's own award rows take the place of theirs.
pub fn to_strategy_config(
    doc: &CampaignDocument,
    stored_awards: &[Award],
) -> Result<StrategyConfig> {
    let (strategy, awards, rules, trees) = strategy_rows(doc)?;
    let mut award_table: Vec<Award> = awards.iter().map(|(_, a)| a.clone()).collect();
    award_table.extend(
        stored_awards
            .iter()
            .filter(|s| !awards.iter().any(|(_, a)| a.award_id == s.award_id))
            .cloned(),
    );
    Ok(StrategyConfig {
        strategy: Some(strategy),
        award_table,
        awards: awards.into_iter().map(|(a, _)| a).collect(),
        rules,
        trees: trees.iter().map(|t| t.tree.clone()).collect(),
        tree_nodes: trees.iter().flat_map(|t| t.nodes.clone()).collect(),
        tree_lines: trees.iter().flat_map(|t| t.lines.clone()).collect(),
        activity_id: doc.activity.as_ref().map(|a| a.activity_id),
    })
}

type StrategyRows = (
    Strategy,
    Vec<(StrategyAward, Award)>,
    Vec<StrategyRule>,
    Vec<TreeRows>,
);

fn strategy_rows(doc: &CampaignDocument) -> Result<StrategyRows> {
    let st = &doc.strategy;
    let sid = st.strategy_id;
    let strategy = Strategy {
        strategy_id: sid,
        strategy_desc: st.strategy_desc.clone(),
        rule_models: st.rule_models.as_ref().map(|m| m.join(",")),
    };
    let awards = st
        .awards
        .iter()
        .map(|a| {
            let award_id = id32(a.award_id)?;
            Ok((
                StrategyAward {
                    strategy_id: sid,
                    award_id,
                    award_title: a.award_title.clone(),
                    award_subtitle: a.award_subtitle.clone(),
                    award_count: a.award_count,
                    award_count_surplus: a.award_count,
                    award_rate: decimal(&a.award_rate.0, 4, "awardRate")?,
                    rule_models: a.rule_models.clone(),
                    sort: id32(a.sort)?,
                },
                Award {
                    award_id,
                    award_key: a.award_key.clone(),
                    award_config: a.award_config.clone(),
                    award_desc: a.award_desc.clone(),
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let rules = st
        .rules
        .iter()
        .map(|r| {
            Ok(StrategyRule {
                strategy_id: sid,
                award_id: r.award_id.map(id32).transpose()?,
                rule_type: id32(r.rule_type.unwrap_or(1))?,
                rule_model: r.rule_model.clone(),
                rule_value: rule_value(r),
                rule_desc: r.rule_desc.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let trees = st
        .rule_trees
        .iter()
        .map(|t| TreeRows {
            tree: RuleTreeRow {
                tree_id: t.tree_id.clone(),
                tree_name: t.tree_name.clone(),
                tree_desc: t.tree_desc.clone(),
                tree_node_rule_key: t.tree_node_rule_key.clone(),
            },
            nodes: t
                .nodes
                .iter()
                .map(|n| RuleTreeNodeRow {
                    tree_id: t.tree_id.clone(),
                    rule_key: n.rule_key.clone(),
                    rule_desc: n.rule_desc.clone(),
                    rule_value: n.rule_value.clone(),
                })
                .collect(),
            lines: t
                .lines
                .iter()
                .map(|l| RuleTreeLineRow {
                    tree_id: t.tree_id.clone(),
                    rule_node_from: l.rule_node_from.clone(),
                    rule_node_to: l.rule_node_to.clone(),
                    rule_limit_type: l.rule_limit_type.clone(),
                    rule_limit_value: l.rule_limit_value.clone(),
                })
                .collect(),
        })
        .collect();
    Ok((strategy, awards, rules, trees))
}

/// The changes that turn `rows` into `doc` (which must have passed validation).
pub fn plan(rows: &ConfigRows, doc: &CampaignDocument) -> Result<Plan> {
    let mut p = Plan::default();
    let (strategy, awards, rules, trees) = strategy_rows(doc)?;
    let sid = strategy.strategy_id;
    p.strategy_id = sid;
    p.activity_id = doc.activity.as_ref().map(|a| a.activity_id);
    match rows.strategies.iter().find(|s| s.strategy_id == sid) {
        Some(s) if *s == strategy => {}
        stored => {
            p.summary.push(match stored {
                None => format!("strategy {sid} added"),
                Some(_) => format!("strategy {sid} changed"),
            });
            p.strategy = Some(Change {
                new: stored.is_none(),
                row: strategy,
                delta: 0,
            });
        }
    }
    for (sa, award) in awards.iter() {
        match rows.awards.iter().find(|w| w.award_id == award.award_id) {
            Some(w) if w == award => {}
            stored => p.awards.push(Change {
                new: stored.is_none(),
                row: award.clone(),
                delta: 0,
            }),
        }
        let stored = rows
            .strategy_awards
            .iter()
            .find(|s| s.strategy_id == sid && s.award_id == sa.award_id);
        match stored {
            None => {
                p.summary.push(format!(
                    "award {} added (stock {}, rate {})",
                    sa.award_id, sa.award_count, sa.award_rate
                ));
                p.strategy_awards.push(Change {
                    row: sa.clone(),
                    new: true,
                    delta: 0,
                });
            }
            Some(s) => {
                let mut same = s.clone();
                same.award_count_surplus = sa.award_count_surplus;
                if same == *sa {
                    continue;
                }
                let delta = sa.award_count - s.award_count;
                let mut what = Vec::new();
                if delta != 0 {
                    what.push(format!(
                        "stock {} → {} ({delta:+})",
                        s.award_count, sa.award_count
                    ));
                }
                if s.award_rate != sa.award_rate {
                    what.push(format!("rate {} → {}", s.award_rate, sa.award_rate));
                }
                if what.is_empty() {
                    what.push("changed".into());
                }
                p.summary
                    .push(format!("award {} {}", sa.award_id, what.join(", ")));
                let mut row = sa.clone();
                row.award_count_surplus = s.award_count_surplus + delta;
                p.strategy_awards.push(Change {
                    row,
                    new: false,
                    delta,
                });
            }
        }
    }
    for s in rows.strategy_awards.iter().filter(|s| s.strategy_id == sid) {
        if !awards.iter().any(|(a, _)| a.award_id == s.award_id) {
            p.summary.push(format!("award {} removed", s.award_id));
            p.removed_strategy_awards.push(s.award_id);
        }
    }
    for r in &rules {
        match rows
            .strategy_rules
            .iter()
            .find(|s| s.strategy_id == sid && s.rule_model == r.rule_model)
        {
            Some(s) if s == r => {}
            stored => {
                p.summary.push(format!(
                    "rule {} {}",
                    r.rule_model,
                    if stored.is_none() { "added" } else { "changed" }
                ));
                p.rules.push(Change {
                    row: r.clone(),
                    new: stored.is_none(),
                    delta: 0,
                });
            }
        }
    }
    for s in rows.strategy_rules.iter().filter(|s| s.strategy_id == sid) {
        if !rules.iter().any(|r| r.rule_model == s.rule_model) {
            p.summary.push(format!("rule {} removed", s.rule_model));
            p.removed_rules.push(s.rule_model.clone());
        }
    }
    for t in trees {
        let stored = super::document::export_tree(rows, &t.tree.tree_id);
        let wanted = doc
            .strategy
            .rule_trees
            .iter()
            .find(|d| d.tree_id == t.tree.tree_id);
        if stored.as_ref() != wanted {
            p.summary.push(format!(
                "rule tree {} {}",
                t.tree.tree_id,
                if stored.is_none() { "added" } else { "changed" }
            ));
            p.trees.push(t);
        }
    }

    if let Some(a) = &doc.activity {
        let row = RaffleActivity {
            activity_id: a.activity_id,
            activity_name: a.activity_name.clone(),
            activity_desc: a.activity_desc.clone(),
            begin_date_time: crate::time::parse_datetime(&a.begin_date_time)
                .map_err(|_| Error::illegal("activity.beginDateTime is not a date-time"))?,
            end_date_time: crate::time::parse_datetime(&a.end_date_time)
                .map_err(|_| Error::illegal("activity.endDateTime is not a date-time"))?,
            strategy_id: sid,
            state: a.state.clone(),
        };
        match rows
            .activities
            .iter()
            .find(|s| s.activity_id == a.activity_id)
        {
            Some(s) if *s == row => {}
            stored => {
                p.summary.push(format!(
                    "activity {} {}",
                    a.activity_id,
                    if stored.is_none() { "added" } else { "changed" }
                ));
                p.activity = Some(Change {
                    new: stored.is_none(),
                    row,
                    delta: 0,
                });
            }
        }
        let stored_stages: Vec<(&str, &str, &str)> = rows
            .stages
            .iter()
            .filter(|s| s.activity_id == a.activity_id)
            .map(|s| (s.channel.as_str(), s.source.as_str(), s.state.as_str()))
            .collect();
        let wanted: Vec<(&str, &str, &str)> = a
            .stages
            .iter()
            .map(|s| (s.channel.as_str(), s.source.as_str(), s.state.as_str()))
            .collect();
        if stored_stages != wanted {
            p.summary.push("stages changed".into());
            p.stages = Some(
                a.stages
                    .iter()
                    .map(|s| RaffleActivityStage {
                        id: 0,
                        channel: s.channel.clone(),
                        source: s.source.clone(),
                        activity_id: a.activity_id,
                        state: s.state.clone(),
                    })
                    .collect(),
            );
        }
        for c in &doc.counts {
            let row = RaffleActivityCount {
                activity_count_id: c.activity_count_id,
                total_count: c.total_count,
                day_count: c.day_count,
                month_count: c.month_count,
            };
            match rows
                .activity_counts
                .iter()
                .find(|s| s.activity_count_id == c.activity_count_id)
            {
                Some(s) if *s == row => {}
                stored => {
                    p.summary.push(format!(
                        "count row {} {}",
                        c.activity_count_id,
                        if stored.is_none() { "added" } else { "changed" }
                    ));
                    p.counts.push(Change {
                        new: stored.is_none(),
                        row,
                        delta: 0,
                    });
                }
            }
        }
        for s in &doc.skus {
            let mut row = RaffleActivitySku {
                sku: s.sku,
                activity_id: a.activity_id,
                activity_count_id: s.activity_count_id,
                stock_count: s.stock_count,
                stock_count_surplus: s.stock_count,
                product_amount: decimal(&s.product_amount.0, 2, "productAmount")?,
            };
            match rows.activity_skus.iter().find(|r| r.sku == s.sku) {
                None => {
                    p.summary
                        .push(format!("SKU {} added (stock {})", s.sku, s.stock_count));
                    p.skus.push(Change {
                        row,
                        new: true,
                        delta: 0,
                    });
                }
                Some(stored) => {
                    let delta = s.stock_count - stored.stock_count;
                    row.stock_count_surplus = stored.stock_count_surplus + delta;
                    let mut same = stored.clone();
                    same.stock_count_surplus = row.stock_count_surplus;
                    if same == row {
                        continue;
                    }
                    p.summary.push(if delta != 0 {
                        format!(
                            "SKU {} stock {} → {} ({delta:+})",
                            s.sku, stored.stock_count, s.stock_count
                        )
                    } else {
                        format!("SKU {} changed", s.sku)
                    });
                    p.skus.push(Change {
                        row,
                        new: false,
                        delta,
                    });
                }
            }
        }
        let stored_skus: Vec<i64> = rows
            .activity_skus
            .iter()
            .filter(|s| s.activity_id == a.activity_id)
            .map(|s| s.sku)
            .collect();
        for sku in &stored_skus {
            if !doc.skus.iter().any(|s| s.sku == *sku) {
                p.summary.push(format!("SKU {sku} removed"));
                p.removed_skus.push(*sku);
            }
        }
        let mut configs: Vec<String> = stored_skus.iter().map(i64::to_string).collect();
        for s in &doc.skus {
            let c = s.sku.to_string();
            if !configs.contains(&c) {
                configs.push(c);
            }
        }
        let stored_rebates: Vec<&DailyBehaviorRebate> = rows
            .rebates
            .iter()
            .filter(|r| r.rebate_type == rebate_type::SKU && configs.contains(&r.rebate_config))
            .collect();
        let wanted: Vec<DailyBehaviorRebate> = doc
            .rebates
            .iter()
            .map(|r| DailyBehaviorRebate {
                behavior_type: r.behavior_type.clone(),
                rebate_desc: r.rebate_desc.clone(),
                rebate_type: r.rebate_type.clone(),
                rebate_config: r.rebate_config.clone(),
                state: r.state.clone(),
            })
            .collect();
        if stored_rebates.len() != wanted.len()
            || stored_rebates.iter().zip(&wanted).any(|(a, b)| *a != b)
        {
            p.summary.push("rebates changed".into());
            p.rebates = Some((configs, wanted));
        }
    }
    Ok(p)
}

/// Reads and writes of the transaction that applies a campaign.
#[allow(async_fn_in_trait)]
pub trait CampaignTx {
    /// Every configuration row, read inside the transaction (and locked against another
    /// apply where the store needs it).
    async fn config_rows(&mut self) -> Result<ConfigRows>;
    /// Award ids of `strategy_id` that have award records.
    async fn awards_with_records(&mut self, strategy_id: i64) -> Result<HashSet<i32>>;
    /// Writes the plan. Stock deltas are applied to what is left with a guard: a unit
    /// taken since the rows were read makes a negative result fail the whole apply.
    async fn write(&mut self, plan: &Plan) -> Result<()>;
    /// The newest version of `key`, 0 when none.
    async fn latest_version(&mut self, key: CampaignKey) -> Result<i64>;
    async fn insert_version(&mut self, version: &NewVersion) -> Result<()>;
}

/// Validates `doc` against the rows as they are now and, when it is valid, writes it and
/// records a new version, all inside the caller's transaction. An invalid document
/// writes nothing and answers its errors.
pub async fn apply_in<T: CampaignTx + ?Sized>(
    tx: &mut T,
    doc: &CampaignDocument,
    author: &str,
    note: Option<&str>,
) -> Result<std::result::Result<Applied, Vec<Finding>>> {
    let rows = tx.config_rows().await?;
    let records = tx.awards_with_records(doc.strategy.strategy_id).await?;
    let report = validate_against(doc, &rows, &records);
    if !report.valid {
        return Ok(Err(report.errors));
    }
    let plan = plan(&rows, doc)?;
    tx.write(&plan).await?;
    let key = doc.key();
    let version = tx.latest_version(key).await? + 1;
    let mut summary = if plan.summary.is_empty() {
        "no change".to_owned()
    } else {
        plan.summary.join("; ")
    };
    if let Some(note) = note {
        summary = format!("{note}: {summary}");
    }
    let document = serde_json::to_string(doc).map_err(Error::internal)?;
    tx.insert_version(&NewVersion {
        key,
        version,
        document,
        author: author.to_owned(),
        summary: summary.clone(),
    })
    .await?;
    Ok(Ok(Applied {
        activity_id: doc.activity.as_ref().map(|a| a.activity_id),
        strategy_id: doc.strategy.strategy_id,
        version,
        summary,
    }))
}

/// Storage of campaigns.
#[async_trait]
pub trait CampaignRepository: Send + Sync {
    /// Every configuration row (a consistent read).
    async fn config_rows(&self) -> Result<ConfigRows>;
    async fn awards_with_records(&self, strategy_id: i64) -> Result<HashSet<i32>>;
    /// Runs [`apply_in`] in one transaction.
    async fn apply(
        &self,
        doc: CampaignDocument,
        author: String,
        note: Option<String>,
    ) -> Result<std::result::Result<Applied, Vec<Finding>>>;
    /// Versions of `key`, newest first.
    async fn versions(&self, key: CampaignKey) -> Result<Vec<VersionInfo>>;
    /// The document of one version, as applied.
    async fn version_document(&self, key: CampaignKey, version: i64) -> Result<Option<String>>;
    /// The newest version of every campaign that has one.
    async fn latest_versions(&self) -> Result<Vec<(CampaignKey, i64)>>;
}

/// The operator's campaign functions, shared by the HTTP endpoints and the CLI.
pub struct CampaignService {
    repo: Arc<dyn CampaignRepository>,
    strategy: Arc<StrategyService>,
    activity: Arc<ActivityService>,
}

impl CampaignService {
    pub fn new(
        repo: Arc<dyn CampaignRepository>,
        strategy: Arc<StrategyService>,
        activity: Arc<ActivityService>,
    ) -> Self {
        Self {
            repo,
            strategy,
            activity,
        }
    }

    fn not_found(key: CampaignKey) -> Error {
        let (kind, id) = key.parts();
        Error::illegal(format!("{kind} {id} does not exist"))
    }

    pub async fn export(&self, key: CampaignKey) -> Result<CampaignDocument> {
        let rows = self.repo.config_rows().await?;
        super::document::export(&rows, key).ok_or_else(|| Self::not_found(key))
    }

    pub async fn list(&self) -> Result<Vec<CampaignSummary>> {
        let rows = self.repo.config_rows().await?;
        let versions = self.repo.latest_versions().await?;
        Ok(super::document::list(&rows, |k| {
            versions.iter().find(|(v, _)| *v == k).map(|(_, n)| *n)
        }))
    }

    pub async fn validate(&self, doc: &CampaignDocument) -> Result<Report> {
        let rows = self.repo.config_rows().await?;
        let records = self
            .repo
            .awards_with_records(doc.strategy.strategy_id)
            .await?;
        Ok(validate_against(doc, &rows, &records))
    }

    /// The document a simulation runs: `doc` once validated, or the stored campaign
    /// when `doc` is `None`; an invalid document answers its errors. The edge runs
    /// [`simulate`] on it off its async workers (it is CPU-bound).
    pub async fn simulation_input(
        &self,
        doc: Option<CampaignDocument>,
        key: Option<CampaignKey>,
        request: &SimulationRequest,
    ) -> Result<std::result::Result<SimulationInput, Vec<Finding>>> {
        request.check()?;
        let rows = self.repo.config_rows().await?;
        let doc = match (doc, key) {
            (Some(d), _) => {
                let records = self
                    .repo
                    .awards_with_records(d.strategy.strategy_id)
                    .await?;
                let report = validate_against(&d, &rows, &records);
                if !report.valid {
                    return Ok(Err(report.errors));
                }
                d
            }
            (None, Some(k)) => {
                super::document::export(&rows, k).ok_or_else(|| Self::not_found(k))?
            }
            (None, None) => {
                return Err(Error::illegal(
                    "give a document, an activityId or a strategyId",
                ));
            }
        };
        Ok(Ok(SimulationInput {
            doc,
            award_table: rows.awards,
        }))
    }

    /// [`Self::simulation_input`] then [`simulate`], on the calling thread.
    pub async fn simulate(
        &self,
        doc: Option<CampaignDocument>,
        key: Option<CampaignKey>,
        request: SimulationRequest,
    ) -> Result<std::result::Result<Simulation, Vec<Finding>>> {
        match self.simulation_input(doc, key, &request).await? {
            Ok(input) => simulate(&input, &request).map(Ok),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Applies `doc` and publishes it: every node reassembles the strategy and reloads
    /// the activity (the armory's own announcement).
    pub async fn apply(
        &self,
        doc: CampaignDocument,
        author: &str,
    ) -> Result<std::result::Result<Applied, Vec<Finding>>> {
        self.apply_noted(doc, author, None).await
    }

    async fn apply_noted(
        &self,
        doc: CampaignDocument,
        author: &str,
        note: Option<String>,
    ) -> Result<std::result::Result<Applied, Vec<Finding>>> {
        let applied = self.repo.apply(doc, author.to_owned(), note).await?;
        if let Ok(a) = &applied {
            self.publish(a).await?;
        }
        Ok(applied)
    }

    async fn publish(&self, a: &Applied) -> Result<()> {
        if let Some(activity_id) = a.activity_id {
            self.activity.armory(activity_id).await?;
        }
        self.strategy.armory(a.strategy_id).await?;
        tracing::info!(strategy_id = a.strategy_id, activity_id = ?a.activity_id, version = a.version, summary = %a.summary, "campaign applied and published");
        Ok(())
    }

    async fn resolve(&self, key: CampaignKey) -> Result<CampaignKey> {
        let rows = self.repo.config_rows().await?;
        key.resolve(&rows).ok_or_else(|| Self::not_found(key))
    }

    pub async fn versions(&self, key: CampaignKey) -> Result<Vec<VersionInfo>> {
        let key = self.resolve(key).await?;
        self.repo.versions(key).await
    }

    /// Applies version `version` again, as a new version.
    pub async fn rollback(
        &self,
        key: CampaignKey,
        version: i64,
        author: &str,
    ) -> Result<std::result::Result<Applied, Vec<Finding>>> {
        let key = self.resolve(key).await?;
        let text = self
            .repo
            .version_document(key, version)
            .await?
            .ok_or_else(|| {
                let (kind, id) = key.parts();
                Error::illegal(format!("{kind} {id} has no version {version}"))
            })?;
        let doc: CampaignDocument = serde_json::from_str(&text).map_err(|e| {
            Error::internal(format!("stored version {version} does not parse: {e}"))
        })?;
        self.apply_noted(doc, author, Some(format!("rollback to version {version}")))
            .await
    }
}
