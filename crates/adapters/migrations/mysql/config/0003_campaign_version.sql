-- Ours: every campaign document applied through `campaign/apply` (or the CLI), so an
-- operator can see who changed what and apply an old version again. As in the embedded
-- store; `create_time` is UTC.
CREATE TABLE IF NOT EXISTS `campaign_version` (
  `id` bigint(11) unsigned NOT NULL AUTO_INCREMENT COMMENT '自增ID',
  `campaign_type` varchar(8) NOT NULL COMMENT 'activity 或 strategy',
  `campaign_id` bigint(12) NOT NULL COMMENT '活动ID或策略ID',
  `version` int(11) NOT NULL COMMENT '版本号',
  `document` mediumtext NOT NULL COMMENT '活动文档 JSON',
  `author` varchar(64) NOT NULL COMMENT '操作人',
  `summary` text NOT NULL COMMENT '变更摘要',
  `create_time` datetime NOT NULL COMMENT '创建时间 (UTC)',
  PRIMARY KEY (`id`),
  UNIQUE KEY `uq_campaign_version` (`campaign_type`,`campaign_id`,`version`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='活动文档版本';
