-- When a lease was given back (a rebalance or a clean stop). Its holder may have started a
-- poll of the host up to that moment, so the next holder's first poll waits one interval
-- from it, even when that poll's result never reached the database (issue #14). Null for a
-- lease that ran out: then the bound is its expiry less the fencing margin.
alter table leases add column freed_at integer;
