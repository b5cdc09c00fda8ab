-- Issue #5: a server is offline only after `offline_after_failures` consecutive failed polls.
alter table servers add column consecutive_failures integer not null default 0;
