-- When a lease was given back: SQLite's migration 0012.
alter table leases add column freed_at bigint;
