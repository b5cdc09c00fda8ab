-- Failed logins as rows (issue #14), so that API nodes sharing one database count them
-- together. Each failure is one row per key it counts against (`user:NAME`, `source:ADDR`);
-- rows older than the login window are pruned.
create table login_failures (
    key text not null,
    at integer not null
);
create index login_failures_key_at on login_failures(key, at);
