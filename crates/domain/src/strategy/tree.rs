//! The rule decision tree of an award (`rule_tree`, `rule_tree_node`, `rule_tree_node_line`).
//!
//! A tree is validated when it is loaded (root and line targets exist, node values parse),
//! so a draw never meets a malformed node. Walking it is pure except for `rule_stock`,
//! which asks the [`StockStore`](super::StockStore).

use super::{StockStore, model};
use crate::error::{Error, Result};

/// A row of `rule_tree`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTreeRow {
    pub tree_id: String,
    pub tree_name: String,
    pub tree_desc: Option<String>,
    pub tree_node_rule_key: String,
}

/// A row of `rule_tree_node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTreeNodeRow {
    pub tree_id: String,
    pub rule_key: String,
    pub rule_desc: String,
    pub rule_value: Option<String>,
}

/// A row of `rule_tree_node_line`, in table order (the first matching line wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTreeLineRow {
    pub tree_id: String,
    pub rule_node_from: String,
    pub rule_node_to: String,
    pub rule_limit_type: String,
    pub rule_limit_value: String,
}

/// Outcome of a node: `ALLOW` (code `0000`, go on) or `TAKE_OVER` (code `0001`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    Allow,
    TakeOver,
}

impl Check {
    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "ALLOW" => Some(Check::Allow),
            "TAKE_OVER" => Some(Check::TakeOver),
            _ => None,
        }
    }
}

/// How a line compares the node's check with its limit value. Codes order
/// `ALLOW (0000) < TAKE_OVER (0001)`; `ENUM` takes a comma list of values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineMatch {
    Equal(Check),
    Gt(Check),
    Lt(Check),
    Ge(Check),
    Le(Check),
    Enum(Vec<Check>),
}

impl LineMatch {
    fn matches(&self, check: Check) -> bool {
        match self {
            LineMatch::Equal(v) => check == *v,
            LineMatch::Gt(v) => check > *v,
            LineMatch::Lt(v) => check < *v,
            LineMatch::Ge(v) => check >= *v,
            LineMatch::Le(v) => check <= *v,
            LineMatch::Enum(vs) => vs.contains(&check),
        }
    }
}

/// What a node does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeLogic {
    /// Unlocks the award once the user has drawn at least `n` times today.
    Lock { n: i64 },
    /// Takes one unit of the drawn award's stock; `value` is passed on as award config.
    Stock { value: Option<String> },
    /// Replaces the award with a fallback `award_id` and its config.
    LuckAward { award_id: i32, config: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    to: usize,
    matcher: LineMatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    key: String,
    logic: NodeLogic,
    lines: Vec<Line>,
}

/// A validated tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTree {
    pub tree_id: String,
    pub tree_name: String,
    nodes: Vec<Node>,
    root: usize,
}

impl RuleTree {
    /// The awards the tree's `rule_luck_award` nodes can give instead of the drawn one.
    pub fn luck_award_ids(&self) -> impl Iterator<Item = i32> + '_ {
        self.nodes.iter().filter_map(|n| match n.logic {
            NodeLogic::LuckAward { award_id, .. } => Some(award_id),
            _ => None,
        })
    }
}

/// What the tree decided: the award (drawn or replaced) and its config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeAward {
    pub award_id: i32,
    pub award_config: Option<String>,
}

impl RuleTree {
    /// Builds and validates one tree from its rows (rows of other trees are ignored).
    pub fn from_rows(
        tree: &RuleTreeRow,
        nodes: &[RuleTreeNodeRow],
        lines: &[RuleTreeLineRow],
    ) -> Result<Self> {
        let id = &tree.tree_id;
        let bad = |why: String| Error::config(format!("rule tree {id}: {why}"));
        let mut built: Vec<Node> = Vec::new();
        for row in nodes.iter().filter(|n| &n.tree_id == id) {
            if built.iter().any(|n| n.key == row.rule_key) {
                return Err(bad(format!("node {} appears twice", row.rule_key)));
            }
            let value = row.rule_value.as_deref().map(str::trim);
            let logic = match row.rule_key.as_str() {
                model::LOCK => {
                    let n = value.and_then(|v| v.parse::<i64>().ok()).ok_or_else(|| {
                        bad(format!("rule_lock value {value:?} is not an integer"))
                    })?;
                    NodeLogic::Lock { n }
                }
                model::STOCK => NodeLogic::Stock {
                    value: value.map(str::to_owned),
                },
                model::LUCK_AWARD => {
                    let v = value.unwrap_or("");
                    let (award, config) = v.split_once(':').unwrap_or((v, ""));
                    let award_id = award.trim().parse::<i32>().map_err(|_| {
                        bad(format!(
                            "rule_luck_award value {v:?} is not \"awardId:config\" (fallback award not configured)"
                        ))
                    })?;
                    NodeLogic::LuckAward {
                        award_id,
                        config: config.to_owned(),
                    }
                }
                other => return Err(bad(format!("unknown node rule_key {other:?}"))),
            };
            built.push(Node {
                key: row.rule_key.clone(),
                logic,
                lines: Vec::new(),
            });
        }
        let index = |key: &str| built.iter().position(|n| n.key == key);
        let mut resolved = Vec::new();
        for l in lines.iter().filter(|l| &l.tree_id == id) {
            let from = index(&l.rule_node_from)
                .ok_or_else(|| bad(format!("line from unknown node {}", l.rule_node_from)))?;
            let to = index(&l.rule_node_to)
                .ok_or_else(|| bad(format!("line to unknown node {}", l.rule_node_to)))?;
            let value = |s: &str| {
                Check::parse(s)
                    .ok_or_else(|| bad(format!("line limit value {s:?} is not ALLOW or TAKE_OVER")))
            };
            let v = l.rule_limit_value.as_str();
            let matcher = match l.rule_limit_type.trim() {
                "EQUAL" => LineMatch::Equal(value(v)?),
                "GT" => LineMatch::Gt(value(v)?),
                "LT" => LineMatch::Lt(value(v)?),
                "GE" => LineMatch::Ge(value(v)?),
                "LE" => LineMatch::Le(value(v)?),
                "ENUM" => LineMatch::Enum(v.split(',').map(value).collect::<Result<_>>()?),
                other => return Err(bad(format!("unknown line limit type {other:?}"))),
            };
            resolved.push((from, Line { to, matcher }));
        }
        let root = index(&tree.tree_node_rule_key).ok_or_else(|| {
            bad(format!(
                "root node {} does not exist",
                tree.tree_node_rule_key
            ))
        })?;
        for (from, line) in resolved {
            if let Some(node) = built.get_mut(from) {
                node.lines.push(line);
            }
        }
        Ok(Self {
            tree_id: id.clone(),
            tree_name: tree.tree_name.clone(),
            nodes: built,
            root,
        })
    }

    /// The `rule_lock` threshold of the tree, if it has one (for the award list's unlock
    /// counts).
    pub fn lock_count(&self) -> Option<i64> {
        self.nodes.iter().find_map(|n| match n.logic {
            NodeLogic::Lock { n } => Some(n),
            _ => None,
        })
    }

    /// Walks the tree for a drawn award. `today_used` feeds `rule_lock`; stock is taken at
    /// most once per `rule_stock` node visited.
    pub async fn process<S: StockStore + ?Sized>(
        &self,
        strategy_id: i64,
        award_id: i32,
        today_used: i64,
        stock: &mut S,
    ) -> Result<TreeAward> {
        let mut current = self.root;
        let mut decided: Option<TreeAward> = None;
        // A tree with a cycle is data, not a reason to spin: each node runs at most once.
        for _ in 0..=self.nodes.len() {
            // Lines were resolved to existing nodes at load, so this always finds one.
            let Some(node) = self.nodes.get(current) else {
                break;
            };
            let check = match &node.logic {
                NodeLogic::Lock { n } => {
                    if today_used >= *n {
                        Check::Allow
                    } else {
                        Check::TakeOver
                    }
                }
                NodeLogic::Stock { value } => {
                    if stock.take_award_stock(strategy_id, award_id).await? {
                        decided = Some(TreeAward {
                            award_id,
                            award_config: value.clone(),
                        });
                        Check::TakeOver
                    } else {
                        Check::Allow
                    }
                }
                NodeLogic::LuckAward { award_id, config } => {
                    decided = Some(TreeAward {
                        award_id: *award_id,
                        award_config: Some(config.clone()),
                    });
                    Check::TakeOver
                }
            };
            match node.lines.iter().find(|l| l.matcher.matches(check)) {
                Some(line) => current = line.to,
                None => {
                    return Ok(decided.unwrap_or(TreeAward {
                        award_id,
                        award_config: None,
                    }));
                }
            }
        }
        Err(Error::config(format!(
            "rule tree {} has a cycle or a dangling line: no leaf reached",
            self.tree_id
        )))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn n(tree: &str, key: &str, value: Option<&str>) -> RuleTreeNodeRow {
        RuleTreeNodeRow {
            tree_id: tree.into(),
            rule_key: key.into(),
            rule_desc: String::new(),
            rule_value: value.map(Into::into),
        }
    }
    fn l(tree: &str, from: &str, to: &str, v: &str) -> RuleTreeLineRow {
        RuleTreeLineRow {
            tree_id: tree.into(),
            rule_node_from: from.into(),
            rule_node_to: to.into(),
            rule_limit_type: "EQUAL".into(),
            rule_limit_value: v.into(),
        }
    }

    /// The upstream sample trees, row for row (including the `tree_lock_3` quirk).
    pub(crate) fn sample_trees() -> Vec<RuleTree> {
        let mut nodes = Vec::new();
        let mut lines = Vec::new();
        let mut trees = Vec::new();
        for (id, lock) in [
            ("tree_lock_1", "1"),
            ("tree_lock_2", "2"),
            ("tree_lock_3", "3"),
        ] {
            trees.push(RuleTreeRow {
                tree_id: id.into(),
                tree_name: "规则树".into(),
                tree_desc: None,
                tree_node_rule_key: "rule_lock".into(),
            });
            nodes.push(n(id, "rule_lock", Some(lock)));
            nodes.push(n(id, "rule_luck_award", Some("101:1,100")));
            nodes.push(n(id, "rule_stock", None));
            if id == "tree_lock_3" {
                lines.push(l(id, "rule_lock", "rule_luck_award", "ALLOW"));
            } else {
                lines.push(l(id, "rule_lock", "rule_stock", "ALLOW"));
            }
            lines.push(l(id, "rule_lock", "rule_luck_award", "TAKE_OVER"));
            lines.push(l(id, "rule_stock", "rule_luck_award", "ALLOW"));
        }
        trees.push(RuleTreeRow {
            tree_id: "tree_luck_award".into(),
            tree_name: "规则树-兜底奖励".into(),
            tree_desc: None,
            tree_node_rule_key: "rule_stock".into(),
        });
        nodes.push(n("tree_luck_award", "rule_stock", None));
        nodes.push(n("tree_luck_award", "rule_luck_award", Some("101:1,100")));
        lines.push(l(
            "tree_luck_award",
            "rule_stock",
            "rule_luck_award",
            "ALLOW",
        ));
        trees
            .iter()
            .map(|t| RuleTree::from_rows(t, &nodes, &lines).unwrap())
            .collect()
    }

    /// Answers every stock request the same way and counts the requests.
    struct FixedStock {
        answer: bool,
        calls: usize,
    }
    impl StockStore for FixedStock {
        async fn take_award_stock(&mut self, _: i64, _: i32) -> Result<bool> {
            self.calls += 1;
            Ok(self.answer)
        }
    }
    fn run(t: &RuleTree, award: i32, today: i64, answer: bool) -> (Result<TreeAward>, usize) {
        let mut s = FixedStock { answer, calls: 0 };
        let r = pollster::block_on(t.process(1, award, today, &mut s));
        (r, s.calls)
    }

    fn tree(id: &str) -> RuleTree {
        sample_trees()
            .into_iter()
            .find(|t| t.tree_id == id)
            .unwrap()
    }

    #[test]
    fn luck_award_tree_keeps_award_while_stock_lasts() {
        let t = tree("tree_luck_award");
        let got = run(&t, 102, 0, true).0.unwrap();
        assert_eq!(
            got,
            TreeAward {
                award_id: 102,
                award_config: None
            }
        );
        let got = run(&t, 102, 0, false).0.unwrap();
        assert_eq!(
            got,
            TreeAward {
                award_id: 101,
                award_config: Some("1,100".into())
            }
        );
    }

    #[test]
    fn lock_tree_needs_todays_draws() {
        let t = tree("tree_lock_2");
        let (got, calls) = run(&t, 106, 1, true);
        assert_eq!(got.unwrap().award_id, 101, "locked: luck award");
        assert_eq!(calls, 0, "a locked award never touches stock");
        let got = run(&t, 106, 2, true).0.unwrap();
        assert_eq!(
            got,
            TreeAward {
                award_id: 106,
                award_config: None
            }
        );
        let got = run(&t, 106, 5, false).0.unwrap();
        assert_eq!(got.award_id, 101, "no stock: luck award");
    }

    #[test]
    fn tree_lock_3_quirk_always_gives_luck_award() {
        let t = tree("tree_lock_3");
        for today in [0, 3, 100] {
            let got = run(&t, 105, today, true).0.unwrap();
            assert_eq!(
                got,
                TreeAward {
                    award_id: 101,
                    award_config: Some("1,100".into())
                }
            );
        }
        assert_eq!(t.lock_count(), Some(3));
    }

    #[test]
    fn malformed_trees_are_config_errors() {
        let row = RuleTreeRow {
            tree_id: "t".into(),
            tree_name: "t".into(),
            tree_desc: None,
            tree_node_rule_key: "rule_lock".into(),
        };
        let cases: Vec<(Vec<RuleTreeNodeRow>, Vec<RuleTreeLineRow>)> = vec![
            (vec![n("t", "rule_lock", Some("x"))], vec![]),
            (
                vec![
                    n("t", "rule_lock", Some("1")),
                    n("t", "rule_luck_award", Some("")),
                ],
                vec![],
            ),
            (vec![n("t", "rule_stock", None)], vec![]),
            (
                vec![n("t", "rule_lock", Some("1"))],
                vec![l("t", "rule_lock", "nope", "ALLOW")],
            ),
            (
                vec![n("t", "rule_lock", Some("1"))],
                vec![l("t", "rule_lock", "rule_lock", "MAYBE")],
            ),
            (vec![n("t", "rule_magic", None)], vec![]),
        ];
        for (nodes, lines) in cases {
            let e = RuleTree::from_rows(&row, &nodes, &lines).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{e}");
        }
    }

    #[test]
    fn cycle_is_reported_not_looped() {
        let row = RuleTreeRow {
            tree_id: "c".into(),
            tree_name: "c".into(),
            tree_desc: None,
            tree_node_rule_key: "rule_lock".into(),
        };
        let nodes = vec![n("c", "rule_lock", Some("0")), n("c", "rule_stock", None)];
        let lines = vec![
            l("c", "rule_lock", "rule_stock", "ALLOW"),
            l("c", "rule_stock", "rule_lock", "ALLOW"),
        ];
        let t = RuleTree::from_rows(&row, &nodes, &lines).unwrap();
        let e = run(&t, 1, 0, false).0.unwrap_err();
        assert!(matches!(e, Error::Config(ref m) if m.contains("cycle")));
    }

    #[test]
    fn comparison_lines() {
        assert!(LineMatch::Gt(Check::Allow).matches(Check::TakeOver));
        assert!(!LineMatch::Lt(Check::Allow).matches(Check::TakeOver));
        assert!(LineMatch::Le(Check::TakeOver).matches(Check::Allow));
        assert!(LineMatch::Ge(Check::Allow).matches(Check::Allow));
        assert!(LineMatch::Enum(vec![Check::Allow]).matches(Check::Allow));
        assert!(!LineMatch::Enum(vec![]).matches(Check::Allow));
    }
}
