//! Upstream's final sample configuration (its `big_market.sql` at the last upstream
//! commit): activities 100301 and 100401, strategies 100001–100006 and 10007, SKUs
//! 9011–9014 and 9901–9903, awards, rules, rule trees, rebates and the stage row.
//!
//! It is data, so it lives in one typed place; each backend's seeder inserts it.

use crate::activity::{
    RaffleActivity, RaffleActivityCount, RaffleActivitySku, RaffleActivityStage,
};
use crate::award::Award;
use crate::rebate::DailyBehaviorRebate;
use crate::strategy::tree::{RuleTreeLineRow, RuleTreeNodeRow, RuleTreeRow};
use crate::strategy::{AssembledStrategy, Strategy, StrategyAward, StrategyConfig, StrategyRule};
use jiff::civil::DateTime;
use rust_decimal::Decimal;
use std::str::FromStr;

/// The whole sample, table by table.
#[derive(Debug, Clone)]
pub struct SampleData {
    pub awards: Vec<Award>,
    pub strategies: Vec<Strategy>,
    pub strategy_awards: Vec<StrategyAward>,
    pub strategy_rules: Vec<StrategyRule>,
    pub rule_trees: Vec<RuleTreeRow>,
    pub rule_tree_nodes: Vec<RuleTreeNodeRow>,
    pub rule_tree_lines: Vec<RuleTreeLineRow>,
    pub activities: Vec<RaffleActivity>,
    pub activity_counts: Vec<RaffleActivityCount>,
    pub activity_skus: Vec<RaffleActivitySku>,
    pub rebates: Vec<DailyBehaviorRebate>,
    pub stages: Vec<RaffleActivityStage>,
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("sample decimals are valid")
}

fn at(s: &str) -> DateTime {
    crate::time::parse_datetime(s).expect("sample datetimes are valid")
}

impl SampleData {
    /// The sample as upstream ships it. Activity 100401 ended on 2026-10-06; see
    /// [`SampleData::with_open_activities`].
    pub fn upstream() -> Self {
        let award = |id: i32, key: &str, config: &str, desc: &str| Award {
            award_id: id,
            award_key: key.into(),
            award_config: config.into(),
            award_desc: desc.into(),
        };
        let awards = vec![
            award(
                101,
                "user_credit_random",
                "1,100",
                "用户积分【优先透彻规则范围，如果没有则走配置】",
            ),
            award(102, "openai_use_count", "5", "OpenAI 增加使用次数"),
            award(103, "openai_use_count", "10", "OpenAI 增加使用次数"),
            award(104, "openai_use_count", "20", "OpenAI 增加使用次数"),
            award(105, "openai_model", "gpt-4", "OpenAI 增加模型"),
            award(106, "openai_model", "dall-e-2", "OpenAI 增加模型"),
            award(107, "openai_model", "dall-e-3", "OpenAI 增加模型"),
            award(108, "openai_use_count", "100", "OpenAI 增加使用次数"),
            award(
                109,
                "openai_model",
                "gpt-4,dall-e-2,dall-e-3",
                "OpenAI 增加模型",
            ),
            award(100, "user_credit_blacklist", "1", "黑名单积分"),
            award(110, "openai_use_count", "1", "OpenAI 增加使用次数"),
            award(111, "openai_use_count", "5", "OpenAI 增加使用次数"),
            award(112, "openai_use_count", "10", "OpenAI 增加使用次数"),
            award(113, "openai_use_count", "15", "OpenAI 增加使用次数"),
            award(114, "openai_use_count", "20", "OpenAI 增加使用次数"),
            award(115, "openai_use_count", "25", "OpenAI 增加使用次数"),
            award(116, "openai_use_count", "50", "OpenAI 增加使用次数"),
            award(117, "openai_use_count", "100", "OpenAI 增加使用次数"),
        ];

        let strategy = |id: i64, desc: &str, models: Option<&str>| Strategy {
            strategy_id: id,
            strategy_desc: desc.into(),
            rule_models: models.map(Into::into),
        };
        let strategies = vec![
            strategy(100001, "抽奖策略", Some("rule_blacklist,rule_weight")),
            strategy(100003, "抽奖策略-验证lock", None),
            strategy(100002, "抽奖策略-非完整1概率", None),
            strategy(100004, "抽奖策略-随机抽奖", None),
            strategy(100005, "抽奖策略-测试概率计算", None),
            strategy(
                100006,
                "抽奖策略-规则树",
                Some("rule_blacklist,rule_weight"),
            ),
            strategy(10007, "抽奖策略-规则树", None),
        ];

        #[allow(clippy::too_many_arguments)]
        fn sa(
            sid: i64,
            aid: i32,
            title: &str,
            subtitle: Option<&str>,
            count: i64,
            surplus: i64,
            rate: &str,
            tree: &str,
            sort: i32,
        ) -> StrategyAward {
            StrategyAward {
                strategy_id: sid,
                award_id: aid,
                award_title: title.into(),
                award_subtitle: subtitle.map(Into::into),
                award_count: count,
                award_count_surplus: surplus,
                award_rate: dec(rate),
                rule_models: Some(tree.into()),
                sort,
            }
        }
        let lt = "tree_luck_award";
        let strategy_awards = vec![
            sa(100001, 101, "随机积分", None, 80000, 79998, "0.3000", lt, 1),
            sa(100001, 102, "5次使用", None, 10000, 9999, "0.2000", lt, 2),
            sa(100001, 103, "10次使用", None, 5000, 4998, "0.2000", lt, 3),
            sa(100001, 104, "20次使用", None, 4000, 3999, "0.1000", lt, 4),
            sa(
                100001,
                105,
                "增加gpt-4对话模型",
                None,
                600,
                600,
                "0.1000",
                lt,
                5,
            ),
            sa(
                100001,
                106,
                "增加dall-e-2画图模型",
                None,
                200,
                200,
                "0.0500",
                lt,
                6,
            ),
            sa(
                100001,
                107,
                "增加dall-e-3画图模型",
                Some("抽奖1次后解锁"),
                200,
                200,
                "0.0400",
                lt,
                7,
            ),
            sa(
                100001,
                108,
                "增加100次使用",
                Some("抽奖2次后解锁"),
                199,
                199,
                "0.0099",
                lt,
                8,
            ),
            sa(
                100001,
                109,
                "解锁全部模型",
                Some("抽奖6次后解锁"),
                1,
                1,
                "0.0001",
                lt,
                9,
            ),
            sa(100002, 101, "随机积分", None, 1, 1, "0.5000", lt, 1),
            sa(100002, 102, "5次使用", None, 1, 1, "0.1000", lt, 2),
            sa(
                100002,
                106,
                "增加dall-e-2画图模型",
                None,
                1,
                1,
                "0.0100",
                lt,
                3,
            ),
            sa(
                100003,
                107,
                "增加dall-e-3画图模型",
                Some("抽奖1次后解锁"),
                200,
                200,
                "0.0400",
                lt,
                7,
            ),
            sa(
                100003,
                108,
                "增加100次使用",
                Some("抽奖2次后解锁"),
                199,
                199,
                "0.0099",
                lt,
                8,
            ),
            sa(
                100003,
                109,
                "解锁全部模型",
                Some("抽奖6次后解锁"),
                1,
                1,
                "0.0001",
                lt,
                9,
            ),
            sa(
                100004,
                109,
                "解锁全部模型",
                Some("抽奖6次后解锁"),
                1,
                1,
                "1.0000",
                lt,
                9,
            ),
            sa(100005, 101, "随机积分", None, 80000, 80000, "0.0300", lt, 1),
            sa(100005, 102, "随机积分", None, 80000, 80000, "0.0300", lt, 1),
            sa(100005, 103, "随机积分", None, 80000, 80000, "0.0300", lt, 1),
            sa(100005, 104, "随机积分", None, 80000, 80000, "0.0300", lt, 1),
            sa(100005, 105, "随机积分", None, 80000, 80000, "0.0010", lt, 1),
            sa(100006, 101, "随机积分", None, 10000, 9982, "0.7900", lt, 1),
            sa(100006, 102, "OpenAI会员卡", None, 100, 15, "0.0300", lt, 2),
            sa(100006, 103, "支付优惠券", None, 100, 38, "0.0300", lt, 3),
            sa(100006, 104, "小米台灯", None, 100, 28, "0.0300", lt, 4),
            sa(
                100006,
                105,
                "小米su7周体验",
                Some("抽奖3次后解锁"),
                100,
                37,
                "0.0300",
                "tree_lock_3",
                5,
            ),
            sa(
                100006,
                106,
                "轻奢办公椅",
                Some("抽奖2次后解锁"),
                100,
                22,
                "0.0300",
                "tree_lock_2",
                6,
            ),
            sa(
                100006,
                107,
                "小霸王游戏机",
                Some("抽奖1次后解锁"),
                100,
                21,
                "0.0300",
                "tree_lock_1",
                7,
            ),
            sa(100006, 108, "暴走玩偶", None, 100, 25, "0.0003", lt, 8),
            sa(
                10007,
                101,
                "随机积分",
                None,
                1000000,
                1000000,
                "0.1000",
                lt,
                1,
            ),
            sa(
                10007,
                110,
                "1次使用次数",
                None,
                1000000,
                1000000,
                "0.8000",
                lt,
                2,
            ),
            sa(
                10007,
                111,
                "5次使用次数",
                None,
                1000000,
                1000000,
                "0.0800",
                lt,
                3,
            ),
            sa(
                10007,
                112,
                "10次使用次数",
                None,
                1000000,
                1000000,
                "0.0100",
                lt,
                4,
            ),
            sa(
                10007,
                113,
                "50次使用次数",
                Some("抽奖3次后解锁"),
                1000000,
                1000000,
                "0.0002",
                "tree_lock_3",
                5,
            ),
            sa(
                10007,
                114,
                "20次使用次数",
                Some("抽奖2次后解锁"),
                1000000,
                1000000,
                "0.0040",
                "tree_lock_2",
                6,
            ),
            sa(
                10007,
                115,
                "25次使用次数",
                Some("抽奖1次后解锁"),
                1000000,
                1000000,
                "0.0008",
                "tree_lock_1",
                7,
            ),
            sa(
                10007,
                116,
                "15次使用次数",
                None,
                1000000,
                1000000,
                "0.0050",
                lt,
                8,
            ),
        ];

        let rule = |sid: i64, model: &str, value: &str, desc: &str| StrategyRule {
            strategy_id: sid,
            award_id: None,
            rule_type: 1,
            rule_model: model.into(),
            rule_value: value.into(),
            rule_desc: desc.into(),
        };
        let strategy_rules = vec![
            rule(
                100001,
                "rule_weight",
                "60:102,103,104,105 200:106,107 1000:105",
                "消耗6000分，必中奖范围",
            ),
            rule(
                100001,
                "rule_blacklist",
                "101:user001,user002,user003",
                "黑名单抽奖，积分兜底",
            ),
            rule(
                100006,
                "rule_weight",
                "10:102,103 70:106,107 1000:104,105",
                "消耗6000分，必中奖范围",
            ),
            rule(
                100006,
                "rule_blacklist",
                "101:user001,user002,user003",
                "黑名单抽奖，积分兜底",
            ),
        ];

        let tree = |id: &str, name: &str, root: &str| RuleTreeRow {
            tree_id: id.into(),
            tree_name: name.into(),
            tree_desc: Some(name.into()),
            tree_node_rule_key: root.into(),
        };
        let rule_trees = vec![
            tree("tree_lock_1", "规则树", "rule_lock"),
            tree("tree_luck_award", "规则树-兜底奖励", "rule_stock"),
            tree("tree_lock_2", "规则树", "rule_lock"),
            tree("tree_lock_3", "规则树", "rule_lock"),
        ];
        let node = |t: &str, key: &str, desc: &str, value: Option<&str>| RuleTreeNodeRow {
            tree_id: t.into(),
            rule_key: key.into(),
            rule_desc: desc.into(),
            rule_value: value.map(Into::into),
        };
        let (lock, luck, stock) = (
            "限定用户已完成N次抽奖后解锁",
            "兜底奖品随机积分",
            "库存扣减规则",
        );
        let rule_tree_nodes = vec![
            node("tree_lock_1", "rule_lock", lock, Some("1")),
            node("tree_lock_1", "rule_luck_award", luck, Some("101:1,100")),
            node("tree_lock_1", "rule_stock", stock, None),
            node("tree_luck_award", "rule_stock", stock, None),
            node(
                "tree_luck_award",
                "rule_luck_award",
                luck,
                Some("101:1,100"),
            ),
            node("tree_lock_2", "rule_lock", lock, Some("2")),
            node("tree_lock_2", "rule_luck_award", luck, Some("101:1,100")),
            node("tree_lock_2", "rule_stock", stock, None),
            node("tree_lock_3", "rule_lock", lock, Some("3")),
            node("tree_lock_3", "rule_luck_award", luck, Some("101:1,100")),
            node("tree_lock_3", "rule_stock", stock, None),
        ];
        let line = |t: &str, from: &str, to: &str, value: &str| RuleTreeLineRow {
            tree_id: t.into(),
            rule_node_from: from.into(),
            rule_node_to: to.into(),
            rule_limit_type: "EQUAL".into(),
            rule_limit_value: value.into(),
        };
        let rule_tree_lines = vec![
            line("tree_lock_1", "rule_lock", "rule_stock", "ALLOW"),
            line("tree_lock_1", "rule_lock", "rule_luck_award", "TAKE_OVER"),
            line("tree_lock_1", "rule_stock", "rule_luck_award", "ALLOW"),
            line("tree_luck_award", "rule_stock", "rule_luck_award", "ALLOW"),
            line("tree_lock_2", "rule_lock", "rule_stock", "ALLOW"),
            line("tree_lock_2", "rule_lock", "rule_luck_award", "TAKE_OVER"),
            line("tree_lock_2", "rule_stock", "rule_luck_award", "ALLOW"),
            // Upstream's data quirk, kept: tree_lock_3 sends ALLOW to the luck award.
            line("tree_lock_3", "rule_lock", "rule_luck_award", "ALLOW"),
            line("tree_lock_3", "rule_lock", "rule_luck_award", "TAKE_OVER"),
            line("tree_lock_3", "rule_stock", "rule_luck_award", "ALLOW"),
        ];

        let activities = vec![
            RaffleActivity {
                activity_id: 100301,
                activity_name: "测试活动".into(),
                activity_desc: "测试活动".into(),
                begin_date_time: at("2024-03-09 10:15:10"),
                end_date_time: at("2034-03-09 10:15:10"),
                strategy_id: 100006,
                state: "open".into(),
            },
            RaffleActivity {
                activity_id: 100401,
                activity_name: "OpenAi抽奖活动".into(),
                activity_desc: "签到&支付有奖返利".into(),
                begin_date_time: at("2024-10-06 12:09:34"),
                end_date_time: at("2026-10-06 12:09:34"),
                strategy_id: 10007,
                state: "open".into(),
            },
        ];
        let count = |id: i64, t: i64, d: i64, m: i64| RaffleActivityCount {
            activity_count_id: id,
            total_count: t,
            day_count: d,
            month_count: m,
        };
        let activity_counts = vec![
            count(11101, 150, 150, 150),
            count(11102, 50, 50, 50),
            count(11103, 5, 5, 5),
            count(11104, 1, 1, 1),
            count(22201, 1, 1, 1),
            count(22202, 5, 5, 5),
            count(22203, 10, 10, 10),
        ];
        let sku = |sku: i64, act: i64, cid: i64, surplus: i64, amount: &str| RaffleActivitySku {
            sku,
            activity_id: act,
            activity_count_id: cid,
            stock_count: 100000,
            stock_count_surplus: surplus,
            product_amount: dec(amount),
        };
        let activity_skus = vec![
            sku(9011, 100301, 11101, 99887, "200.00"),
            sku(9012, 100301, 11102, 99885, "100.00"),
            sku(9013, 100301, 11103, 99884, "20.00"),
            sku(9014, 100301, 11104, 99866, "5.00"),
            sku(9901, 100401, 22201, 100000, "5.00"),
            sku(9902, 100401, 22202, 100000, "10.00"),
            sku(9903, 100401, 22203, 100000, "20.00"),
        ];
        let rebate = |bt: &str, desc: &str, rt: &str, cfg: &str| DailyBehaviorRebate {
            behavior_type: bt.into(),
            rebate_desc: desc.into(),
            rebate_type: rt.into(),
            rebate_config: cfg.into(),
            state: "open".into(),
        };
        let rebates = vec![
            rebate("sign", "签到返利-积分", "integral", "10"),
            rebate("sign", "签到返利-sku额度", "sku", "9901"),
            rebate("openai_pay", "支付返利-积分", "sku", "9901"),
            rebate("openai_pay", "支付返利-sku额度", "integral", "10"),
        ];
        let stages = vec![RaffleActivityStage {
            id: 1,
            channel: "c01".into(),
            source: "s01".into(),
            activity_id: 100401,
            state: "active".into(),
        }];

        Self {
            awards,
            strategies,
            strategy_awards,
            strategy_rules,
            rule_trees,
            rule_tree_nodes,
            rule_tree_lines,
            activities,
            activity_counts,
            activity_skus,
            rebates,
            stages,
        }
    }

    /// The sample with every activity whose end has passed moved ten years out, so the
    /// demo works on the day it is loaded.
    pub fn with_open_activities(mut self, now: DateTime) -> Self {
        for a in &mut self.activities {
            if a.end_date_time < now {
                let moved = a
                    .end_date_time
                    .checked_add(jiff::Span::new().years(10))
                    .unwrap_or(a.end_date_time);
                tracing::info!(activity_id = a.activity_id, from = %a.end_date_time, to = %moved, "sample activity had ended; end moved ten years out");
                a.end_date_time = moved;
            }
        }
        self
    }

    /// The armory input of one strategy.
    pub fn strategy_config(&self, strategy_id: i64) -> StrategyConfig {
        StrategyConfig {
            strategy: self
                .strategies
                .iter()
                .find(|s| s.strategy_id == strategy_id)
                .cloned(),
            awards: self
                .strategy_awards
                .iter()
                .filter(|a| a.strategy_id == strategy_id)
                .cloned()
                .collect(),
            rules: self
                .strategy_rules
                .iter()
                .filter(|r| r.strategy_id == strategy_id)
                .cloned()
                .collect(),
            trees: self.rule_trees.clone(),
            tree_nodes: self.rule_tree_nodes.clone(),
            tree_lines: self.rule_tree_lines.clone(),
            activity_id: self
                .activities
                .iter()
                .find(|a| a.strategy_id == strategy_id)
                .map(|a| a.activity_id),
            award_table: self.awards.clone(),
        }
    }
}

/// A sample strategy, assembled (for tests).
pub fn assembled(strategy_id: i64) -> AssembledStrategy {
    AssembledStrategy::assemble(SampleData::upstream().strategy_config(strategy_id))
        .expect("sample strategies assemble")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_strategy_assembles() {
        let s = SampleData::upstream();
        for st in &s.strategies {
            let a = AssembledStrategy::assemble(s.strategy_config(st.strategy_id)).unwrap();
            assert!(!a.default_table.is_empty());
        }
        let a = assembled(100006);
        assert_eq!(a.activity_id, Some(100301));
        assert_eq!(a.weight_groups().unwrap().len(), 3);
        assert_eq!(a.tree_of(105).unwrap().tree_id, "tree_lock_3");
    }

    #[test]
    fn ended_activities_move_ten_years_out() {
        let now = at("2026-11-25 12:00:00");
        let s = SampleData::upstream().with_open_activities(now);
        let a = s
            .activities
            .iter()
            .find(|a| a.activity_id == 100401)
            .unwrap();
        assert_eq!(a.end_date_time, at("2036-10-06 12:09:34"));
        let b = s
            .activities
            .iter()
            .find(|a| a.activity_id == 100301)
            .unwrap();
        assert_eq!(
            b.end_date_time,
            at("2034-03-09 10:15:10"),
            "running activities keep their end"
        );
    }

    #[test]
    fn missing_weight_row_is_err_biz_001() {
        let s = SampleData::upstream();
        let mut cfg = s.strategy_config(100001);
        cfg.rules.retain(|r| r.rule_model != "rule_weight");
        let e = AssembledStrategy::assemble(cfg).unwrap_err();
        assert_eq!(e.code().code(), "ERR_BIZ_001");
    }

    #[test]
    fn malformed_rule_value_is_config_error() {
        let s = SampleData::upstream();
        let mut cfg = s.strategy_config(100006);
        for r in &mut cfg.rules {
            if r.rule_model == "rule_weight" {
                r.rule_value = "10:102,abc".into();
            }
        }
        let e = AssembledStrategy::assemble(cfg).unwrap_err();
        assert!(
            matches!(e, crate::Error::Config(ref m) if m.contains("rule_weight")),
            "{e}"
        );
    }
}
