-- How many units of its award's stock a draw took (0: a luck or blacklist award, or an
-- award without a stock node), written with the award record. A counter Redis lost is
-- rebuilt as the total minus these. NULL for Java nodes' rows and older ones: counted
-- as one unit by the rebuild (never more granted than stock).
ALTER TABLE `user_award_record{t}`
  ADD COLUMN `stock_units` tinyint NULL COMMENT '扣减的奖品库存数';
