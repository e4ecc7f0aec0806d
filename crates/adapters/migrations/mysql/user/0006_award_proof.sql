-- The proof of a provably fair draw (docs/FAIRNESS.md), JSON, written with the award
-- record in the draw's transaction. NULL for every other draw, and for Java nodes'.
ALTER TABLE `user_award_record{t}`
  ADD COLUMN `fair_proof` text NULL COMMENT '公平抽奖证明';
