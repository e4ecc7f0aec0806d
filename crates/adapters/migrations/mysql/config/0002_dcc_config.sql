-- Dynamic configuration (upstream's DCC, kept in ZooKeeper there): switch values set
-- through `dcc/update_config`, so they survive a restart. As in the embedded store.
CREATE TABLE IF NOT EXISTS `dcc_config` (
  `config_key` varchar(64) NOT NULL COMMENT '配置键',
  `config_value` varchar(256) NOT NULL COMMENT '配置值',
  `update_time` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',
  PRIMARY KEY (`config_key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='动态配置';
