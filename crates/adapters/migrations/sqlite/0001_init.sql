-- big-market embedded store (SQLite): upstream's tables and columns (config DB and user DB
-- in one file, no shard suffixes). Decimals are TEXT so they stay exact; business times
-- (order_time, begin/end, award_time) are local to the configured zone as
-- 'yyyy-MM-dd HH:mm:ss'; create_time/update_time are UTC audit stamps.

CREATE TABLE award (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  award_id INTEGER NOT NULL,
  award_key TEXT NOT NULL,
  award_config TEXT NOT NULL,
  award_desc TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_award_id ON award (award_id);

CREATE TABLE strategy (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  strategy_id INTEGER NOT NULL,
  strategy_desc TEXT NOT NULL,
  rule_models TEXT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_strategy_id ON strategy (strategy_id);

CREATE TABLE strategy_award (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  strategy_id INTEGER NOT NULL,
  award_id INTEGER NOT NULL,
  award_title TEXT NOT NULL,
  award_subtitle TEXT NULL,
  award_count INTEGER NOT NULL DEFAULT 0,
  award_count_surplus INTEGER NOT NULL DEFAULT 0 CHECK (award_count_surplus >= 0),
  award_rate TEXT NOT NULL,
  rule_models TEXT NULL,
  sort INTEGER NOT NULL DEFAULT 0,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_strategy_id_award_id ON strategy_award (strategy_id, award_id);

CREATE TABLE strategy_rule (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  strategy_id INTEGER NOT NULL,
  award_id INTEGER NULL,
  rule_type INTEGER NOT NULL DEFAULT 0,
  rule_model TEXT NOT NULL,
  rule_value TEXT NOT NULL,
  rule_desc TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_strategy_id_rule_model ON strategy_rule (strategy_id, rule_model);
CREATE INDEX idx_strategy_rule_strategy_id_award_id ON strategy_rule (strategy_id, award_id);

CREATE TABLE rule_tree (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tree_id TEXT NOT NULL,
  tree_name TEXT NOT NULL,
  tree_desc TEXT NULL,
  tree_node_rule_key TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_tree_id ON rule_tree (tree_id);

CREATE TABLE rule_tree_node (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tree_id TEXT NOT NULL,
  rule_key TEXT NOT NULL,
  rule_desc TEXT NOT NULL,
  rule_value TEXT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE rule_tree_node_line (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tree_id TEXT NOT NULL,
  rule_node_from TEXT NOT NULL,
  rule_node_to TEXT NOT NULL,
  rule_limit_type TEXT NOT NULL,
  rule_limit_value TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE raffle_activity (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  activity_id INTEGER NOT NULL,
  activity_name TEXT NOT NULL,
  activity_desc TEXT NOT NULL,
  begin_date_time TEXT NOT NULL,
  end_date_time TEXT NOT NULL,
  strategy_id INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'create',
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_activity_id ON raffle_activity (activity_id);
CREATE UNIQUE INDEX uq_strategy_id ON raffle_activity (strategy_id);

CREATE TABLE raffle_activity_count (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  activity_count_id INTEGER NOT NULL,
  total_count INTEGER NOT NULL,
  day_count INTEGER NOT NULL,
  month_count INTEGER NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_activity_count_id ON raffle_activity_count (activity_count_id);

CREATE TABLE raffle_activity_sku (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sku INTEGER NOT NULL,
  activity_id INTEGER NOT NULL,
  activity_count_id INTEGER NOT NULL,
  stock_count INTEGER NOT NULL,
  stock_count_surplus INTEGER NOT NULL CHECK (stock_count_surplus >= 0),
  product_amount TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_sku ON raffle_activity_sku (sku);
CREATE INDEX idx_activity_id_activity_count_id ON raffle_activity_sku (activity_id, activity_count_id);

CREATE TABLE daily_behavior_rebate (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  behavior_type TEXT NOT NULL,
  rebate_desc TEXT NOT NULL,
  rebate_type TEXT NOT NULL,
  rebate_config TEXT NOT NULL,
  state TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX idx_behavior_type ON daily_behavior_rebate (behavior_type);

CREATE TABLE raffle_activity_stage (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel TEXT NOT NULL,
  source TEXT NOT NULL,
  activity_id INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'create',
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- User tables (upstream's user DBs; here one table each).

CREATE TABLE raffle_activity_account (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  activity_id INTEGER NOT NULL,
  total_count INTEGER NOT NULL,
  total_count_surplus INTEGER NOT NULL CHECK (total_count_surplus >= 0),
  day_count INTEGER NOT NULL,
  day_count_surplus INTEGER NOT NULL,
  month_count INTEGER NOT NULL,
  month_count_surplus INTEGER NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_id_activity_id ON raffle_activity_account (user_id, activity_id);

CREATE TABLE raffle_activity_account_day (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  activity_id INTEGER NOT NULL,
  day TEXT NOT NULL,
  day_count INTEGER NOT NULL,
  day_count_surplus INTEGER NOT NULL CHECK (day_count_surplus >= 0),
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_id_activity_id_day ON raffle_activity_account_day (user_id, activity_id, day);

CREATE TABLE raffle_activity_account_month (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  activity_id INTEGER NOT NULL,
  month TEXT NOT NULL,
  month_count INTEGER NOT NULL,
  month_count_surplus INTEGER NOT NULL CHECK (month_count_surplus >= 0),
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_id_activity_id_month ON raffle_activity_account_month (user_id, activity_id, month);

CREATE TABLE raffle_activity_order (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  sku INTEGER NOT NULL,
  activity_id INTEGER NOT NULL,
  activity_name TEXT NOT NULL,
  strategy_id INTEGER NOT NULL,
  order_id TEXT NOT NULL,
  order_time TEXT NOT NULL,
  total_count INTEGER NOT NULL,
  day_count INTEGER NOT NULL,
  month_count INTEGER NOT NULL,
  pay_amount TEXT NULL,
  state TEXT NOT NULL DEFAULT 'complete',
  out_business_no TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_raffle_activity_order_order_id ON raffle_activity_order (order_id);
CREATE UNIQUE INDEX uq_out_business_no ON raffle_activity_order (out_business_no);
CREATE INDEX idx_raffle_activity_order_user_id_activity_id ON raffle_activity_order (user_id, activity_id, state);

CREATE TABLE user_raffle_order (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  activity_id INTEGER NOT NULL,
  activity_name TEXT NOT NULL,
  strategy_id INTEGER NOT NULL,
  order_id TEXT NOT NULL,
  order_time TEXT NOT NULL,
  order_state TEXT NOT NULL DEFAULT 'create',
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_raffle_order_order_id ON user_raffle_order (order_id);
CREATE INDEX idx_user_raffle_order_user_id_activity_id ON user_raffle_order (user_id, activity_id);

CREATE TABLE user_award_record (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  activity_id INTEGER NOT NULL,
  strategy_id INTEGER NOT NULL,
  order_id TEXT NOT NULL,
  award_id INTEGER NOT NULL,
  award_title TEXT NOT NULL,
  award_time TEXT NOT NULL,
  award_state TEXT NOT NULL DEFAULT 'create',
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_award_record_order_id ON user_award_record (order_id);
CREATE INDEX idx_user_award_record_user_id ON user_award_record (user_id);
CREATE INDEX idx_user_award_record_activity_id ON user_award_record (activity_id);
CREATE INDEX idx_award_id ON user_award_record (strategy_id);

CREATE TABLE user_behavior_rebate_order (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  behavior_type TEXT NOT NULL,
  rebate_desc TEXT NOT NULL,
  rebate_type TEXT NOT NULL,
  rebate_config TEXT NOT NULL,
  out_business_no TEXT NOT NULL,
  biz_id TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_behavior_rebate_order_order_id ON user_behavior_rebate_order (order_id);
CREATE UNIQUE INDEX uq_biz_id ON user_behavior_rebate_order (biz_id);
CREATE INDEX idx_user_behavior_rebate_order_user_id ON user_behavior_rebate_order (user_id);

CREATE TABLE user_credit_account (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  total_amount TEXT NOT NULL,
  available_amount TEXT NOT NULL,
  account_status TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_id ON user_credit_account (user_id);

CREATE TABLE user_credit_order (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  trade_name TEXT NOT NULL,
  trade_type TEXT NOT NULL DEFAULT 'forward',
  trade_amount TEXT NOT NULL,
  out_business_no TEXT NOT NULL,
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_user_credit_order_order_id ON user_credit_order (order_id);
CREATE UNIQUE INDEX uq_user_credit_order_out_business_no ON user_credit_order (out_business_no);
CREATE INDEX idx_user_credit_order_user_id ON user_credit_order (user_id);

CREATE TABLE task (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  message_id TEXT NULL,
  message TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'create',
  create_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  update_time TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX uq_message_id ON task (message_id);
CREATE INDEX idx_state ON task (state);
CREATE INDEX idx_create_time ON task (update_time);

-- Ours: facts about the store itself (e.g. that the sample was loaded once).
CREATE TABLE big_market_meta (
  meta_key TEXT PRIMARY KEY,
  meta_value TEXT NOT NULL
);
