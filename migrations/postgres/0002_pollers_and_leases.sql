-- Several pollers on one database (issue #14): SQLite's migration 0010.
create table pollers (
    id text primary key not null,
    hostname text not null,
    role text not null,
    version text not null,
    started_at bigint not null,
    heartbeat_at bigint not null,
    stopped_at bigint,
    polls_per_minute double precision
);

create table leases (
    server_id text primary key not null references servers(id) on delete cascade,
    poller_id text not null,
    expires_at bigint not null
);
create index leases_poller on leases(poller_id);
