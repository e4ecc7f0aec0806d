-- Provably fair draws (docs/FAIRNESS.md), as in the embedded store: activities an
-- operator turned them on for, and one seed per activity and epoch (written before the
-- epoch's first draw, revealed once `end_time` has passed; secret until then). In the
-- config database, so every node uses the same epoch and seed.
CREATE TABLE IF NOT EXISTS `raffle_activity_fairness` (
  `activity_id` bigint(12) NOT NULL COMMENT '活动ID',
  `create_time` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
  PRIMARY KEY (`activity_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='可验证公平抽奖活动';

CREATE TABLE IF NOT EXISTS `raffle_fairness_seed` (
  `activity_id` bigint(12) NOT NULL COMMENT '活动ID',
  `epoch` int(11) NOT NULL COMMENT '周期',
  `seed` char(64) NOT NULL COMMENT '种子（揭示前保密）',
  `begin_time` datetime NOT NULL COMMENT '开始时间',
  `end_time` datetime NOT NULL COMMENT '结束时间',
  `create_time` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
  PRIMARY KEY (`activity_id`, `epoch`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='公平抽奖种子';
