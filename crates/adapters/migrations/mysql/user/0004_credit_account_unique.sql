-- Upstream's `big_market_02` dump creates `user_credit_account` without the unique key
-- on `user_id` that `big_market_01` has; an account upsert there would add a second row
-- and split a balance. Added where missing (the migration is skipped where it exists).
-- Should a Java node already have written two rows for one user, this fails with the
-- user named: merge those rows (sum the amounts) and run `migrate` again.
ALTER TABLE `user_credit_account` ADD UNIQUE KEY `uq_user_id` (`user_id`);
