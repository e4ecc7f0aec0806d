-- Units of a stock taken outside what SQL records (an upstream sample or dump whose
-- surplus is below the total minus its award records or activity orders), per Redis
-- stock counter (`award:{strategyId}:{awardId}`, `sku:{sku}`). Written the first time a
-- counter is assembled, and when an operator sets a stock; a counter Redis lost is then
-- rebuilt exactly as total - taken in SQL - taken_outside.
CREATE TABLE IF NOT EXISTS `stock_baseline` (
  `stock_key` varchar(64) NOT NULL COMMENT '库存键',
  `taken_outside` bigint NOT NULL COMMENT '记录之外已扣减的库存',
  `update_time` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',
  PRIMARY KEY (`stock_key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='库存基线';
