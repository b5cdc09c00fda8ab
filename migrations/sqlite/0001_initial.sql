-- fleetpoll schema, version 1. Applied migrations are never edited: add a new file instead.
-- Times are stored as INTEGER milliseconds since the Unix epoch, UTC, so range scans and
-- downsampling buckets are plain integer arithmetic; the API renders them as RFC 3339.

create table servers (
    id text primary key not null,                 -- UUID
    name text not null unique,
    host text not null,
    port integer not null check (port between 1 and 65535),
    user text not null,
    key_path text not null,                       -- path only; the key itself is never stored
    key_passphrase_env text,                      -- name of the variable, never the passphrase
    tags text not null default '[]',              -- JSON array of strings
    enabled integer not null default 1,
    status text not null default 'unknown',
    reason text,
    docker_note text,                             -- last docker availability message, to log changes once
    last_sample_at integer,
    last_poll_at integer,
    host_key_fingerprint text,
    pending_host_key_fingerprint text,
    created_at integer not null,
    updated_at integer not null
);

-- One row per successful poll.
create table server_metrics (
    id integer primary key,
    server_id text not null references servers(id) on delete cascade,
    ts integer not null,
    cpu_busy_percent real,
    cpu_user_percent real,
    cpu_system_percent real,
    cpu_iowait_percent real,
    cpu_steal_percent real,
    load1 real,
    load5 real,
    load15 real,
    uptime_seconds integer,
    tasks_total integer,
    mem_total_bytes integer,
    mem_used_bytes integer,
    mem_free_bytes integer,
    mem_available_bytes integer,
    swap_total_bytes integer,
    swap_used_bytes integer
);
-- History for one server over a time range; also serves "latest sample".
create index server_metrics_server_ts on server_metrics(server_id, ts);
-- Retention deletes by age across all servers.
create index server_metrics_ts on server_metrics(ts);

create table disk_usage (
    id integer primary key,
    server_id text not null references servers(id) on delete cascade,
    ts integer not null,
    filesystem text not null,
    mount text not null,
    total_bytes integer,
    used_bytes integer,
    available_bytes integer,
    use_percent real
);
create index disk_usage_server_ts on disk_usage(server_id, ts);
create index disk_usage_ts on disk_usage(ts);

create table container_metrics (
    id integer primary key,
    server_id text not null references servers(id) on delete cascade,
    ts integer not null,
    container_id text not null,
    name text not null,
    image text,
    state text not null,
    status_text text not null,
    exit_code integer,
    health text,
    category text not null,                       -- running | stopped | error
    cpu_percent real,
    mem_used_bytes integer,
    mem_limit_bytes integer,
    mem_percent real,
    net_rx_bytes integer,
    net_tx_bytes integer,
    block_read_bytes integer,
    block_write_bytes integer,
    pids integer
);
create index container_metrics_server_ts on container_metrics(server_id, ts);
-- Per-container history by name (stable across re-creation, unlike the id).
create index container_metrics_server_name_ts on container_metrics(server_id, name, ts);
create index container_metrics_ts on container_metrics(ts);

-- The audit trail. No foreign key to servers: entries outlive the servers they name.
create table activity (
    id integer primary key,
    ts integer not null,
    type text not null,
    severity text not null check (severity in ('info', 'warning', 'critical')),
    actor text not null,
    server_id text,
    server_name text,
    message text not null,
    details text not null default '{}'            -- JSON object
);
create index activity_ts on activity(ts);
create index activity_server_ts on activity(server_id, ts);
create index activity_type_ts on activity(type, ts);
