-- Failed logins as rows, counted across API nodes: SQLite's migration 0011.
create table login_failures (
    key text not null,
    at bigint not null
);
create index login_failures_key_at on login_failures(key, at);
