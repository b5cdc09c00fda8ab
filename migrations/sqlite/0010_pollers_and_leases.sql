-- Several pollers on one database (issue #14). SQLite has one poller, so these tables stay
-- empty there; they exist on both stores so that the schema and the queries are one.
create table pollers (
    id text primary key not null,                 -- UUID, new at every start
    hostname text not null,
    role text not null,                           -- all | poller | api
    version text not null,
    started_at integer not null,
    heartbeat_at integer not null,
    stopped_at integer,                           -- a clean stop (its leases were given back)
    polls_per_minute real
);

-- A host is polled by the poller that holds its lease, until expires_at unless renewed.
create table leases (
    server_id text primary key not null references servers(id) on delete cascade,
    poller_id text not null,
    expires_at integer not null
);
create index leases_poller on leases(poller_id);
