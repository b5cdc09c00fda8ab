-- Issue #12: history that stays small. One poll of a host with 8 containers and 3 mounts
-- cost about 3.2 KB as rows (container rows and their three indexes were three quarters of
-- it). Now every value is a fixed-point integer (src/history), each series is named once,
-- the open hour is kept as one small row per series and poll, and each closed hour becomes
-- one compressed chunk per series, rolled up into hourly and daily summaries.

-- One series per server (kind 0), per mount (kind 1, name = path) and per container
-- (kind 2, name = container name): names and server ids are stored here once, and every
-- sample refers to the series by a small integer.
create table series (
    id integer primary key,
    server_id text not null references servers(id) on delete cascade,
    kind integer not null check (kind in (0, 1, 2)),
    name text not null,
    detail text,                                  -- a mount's filesystem; a container's image
    unique (server_id, kind, name)
);

-- The ids a container name has had (a re-created container keeps its name, not its id), so
-- a container's history can be asked for by either; written once per id.
create table container_ids (
    series integer not null references series(id) on delete cascade,
    container_id text not null,
    primary key (series, container_id)
) without rowid;

-- Samples not yet compacted: one row per series and poll, `vals` being history::codec's row
-- encoding of the kind's fields. Clustered by series and time, the only order read.
create table raw_points (
    series integer not null references series(id) on delete cascade,
    ts integer not null,
    vals blob not null,
    primary key (series, ts)
) without rowid;

-- Closed periods: tier 0 holds one hour of raw samples, tier 1 one day of hourly rollup rows,
-- tier 2 one daily rollup row; `data` is history::codec's chunk encoding. `start` is the
-- period's start (ms, UTC), `rows` the rows in it (for statistics without decoding).
-- Rowid table: chunks are a few hundred bytes to a few KB, too wide to cluster well.
create table chunks (
    id integer primary key,
    series integer not null references series(id) on delete cascade,
    tier integer not null check (tier in (0, 1, 2)),
    start integer not null,
    rows integer not null,
    data blob not null
);
create unique index chunks_series_tier_start on chunks(series, tier, start);

-- The latest sample of each server, whole, replaced at every poll: the overview, the
-- containers table and /metrics read it without touching history. Stopped containers live
-- here and nowhere else: their history has nothing to add until they run again.
create table latest_samples (
    server_id text primary key not null references servers(id) on delete cascade,
    ts integer not null,
    cpu_busy_percent real,
    memory_percent real,
    disk_percent real,                            -- the fullest mount
    load1 real,
    containers_running integer not null default 0,
    containers_stopped integer not null default 0,
    containers_error integer not null default 0,
    server text not null,                         -- JSON of the server-wide figures
    disks text not null,                          -- JSON array of the mounts
    containers text not null                      -- JSON array of the containers
);

-- Per tier, how far rollups (tiers 1 and 2) and compaction (tier 0) have run: readers take
-- stored rows before `done_until` and compute the rest from the finer tier on the fly.
create table history_state (
    tier integer primary key not null,
    done_until integer not null default 0
);
insert into history_state (tier, done_until) values (0, 0), (1, 0), (2, 0);

-- The rows of the previous schema are converted by the program at its first start on this
-- schema (store::history::convert_legacy, in bounded transactions, resumable), then dropped.
-- The indexes that served only retention go now.
drop index server_metrics_ts;
drop index disk_usage_ts;
drop index container_metrics_ts;
drop index container_metrics_server_name_ts;
alter table server_metrics rename to legacy_server_metrics;
alter table disk_usage rename to legacy_disk_usage;
alter table container_metrics rename to legacy_container_metrics;
