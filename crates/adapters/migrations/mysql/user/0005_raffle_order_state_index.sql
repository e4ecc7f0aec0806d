-- A draw looks for the user's unused (`create`) raffle order first. Upstream's index
-- (`user_id`, `activity_id`) makes that read every order the user ever had in the
-- activity, a cost that grows with each draw; with `order_state` in the index it reads
-- only the unused ones. Additive: Java nodes' statements are unaffected.
ALTER TABLE `user_raffle_order{t}` ADD INDEX `idx_user_id_activity_id_state` (`user_id`, `activity_id`, `order_state`);
