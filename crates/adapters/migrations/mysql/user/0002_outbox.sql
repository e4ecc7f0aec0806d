-- Outbox bookkeeping (additive, as in the embedded store): how often a task was tried,
-- when it may be tried again (or until when its sender holds it), why it failed; room
-- for longer messages; and why an award record is not delivered (kept `create`).
ALTER TABLE `task`
  ADD COLUMN `attempts` int(8) NOT NULL DEFAULT 0 COMMENT '发送次数',
  ADD COLUMN `next_attempt_time` datetime NULL COMMENT '下次发送时间',
  ADD COLUMN `last_error` varchar(512) NULL COMMENT '最近错误',
  MODIFY COLUMN `message` varchar(2048) NOT NULL COMMENT '消息主体',
  ADD KEY `idx_state_next_attempt` (`state`, `next_attempt_time`);

ALTER TABLE `user_award_record{t}`
  ADD COLUMN `delivery_note` varchar(256) NULL COMMENT '未发放原因';
