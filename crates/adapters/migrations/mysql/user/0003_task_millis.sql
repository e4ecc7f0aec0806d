-- Task stamps to the millisecond, as in the embedded store: a sender's lease ends when
-- it says, not up to a second early, and the lease value itself is the token that lets
-- only its holder record the outcome.
ALTER TABLE `task`
  MODIFY COLUMN `update_time` datetime(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3) COMMENT '更新时间',
  MODIFY COLUMN `next_attempt_time` datetime(3) NULL COMMENT '下次发送时间';
