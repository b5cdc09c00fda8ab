-- History partitioned by time (issue #14): retention drops whole partitions instead of
-- deleting rows one by one. `chunks` is split by tier, then by period start (tier 0 by day,
-- tier 1 by week, tier 2 by 91 days); `raw_points` by day. Partitions are made ahead by
-- fleetpoll_prepare_partitions (at start and by the history upkeep); a row outside every
-- partition lands in its table's default partition, which retention empties row by row.

alter table chunks rename to chunks_old;
alter index chunks_series_tier_start rename to chunks_old_series_tier_start;
create table chunks (
    series bigint not null references series(id) on delete cascade,
    tier bigint not null check (tier in (0, 1, 2)),
    start bigint not null,
    "rows" bigint not null,
    data bytea not null,
    primary key (series, tier, start)
) partition by list (tier);
create table chunks_t0 partition of chunks for values in (0) partition by range (start);
create table chunks_t1 partition of chunks for values in (1) partition by range (start);
create table chunks_t2 partition of chunks for values in (2) partition by range (start);
create table chunks_t0_default partition of chunks_t0 default;
create table chunks_t1_default partition of chunks_t1 default;
create table chunks_t2_default partition of chunks_t2 default;
insert into chunks (series, tier, start, "rows", data)
    select series, tier, start, "rows", data from chunks_old;
drop table chunks_old;

alter table raw_points rename to raw_points_old;
create table raw_points (
    series bigint not null references series(id) on delete cascade,
    ts bigint not null,
    vals bytea not null,
    primary key (series, ts)
) partition by range (ts);
create table raw_points_default partition of raw_points default;
insert into raw_points (series, ts, vals) select series, ts, vals from raw_points_old;
drop table raw_points_old;

-- The width of one partition of `parent`, in milliseconds.
create function fleetpoll_partition_width(parent text) returns bigint
    language sql immutable
    as $$ select case parent when 'chunks_t1' then 604800000
                             when 'chunks_t2' then 7862400000
                             else 86400000 end::bigint $$;

-- Makes the partitions from `from_ms` to `to_ms` that do not exist yet, for raw_points and
-- each tier of chunks; returns how many. A period whose rows already sit in a default
-- partition is left there (making it would fail). Two processes making one at once is fine.
create function fleetpoll_prepare_partitions(from_ms bigint, to_ms bigint) returns integer
    language plpgsql
    as $$
declare
    made integer := 0;
    parent text;
    col text;
    w bigint;
    lo bigint;
    name text;
    busy boolean;
begin
    foreach parent in array array['raw_points', 'chunks_t0', 'chunks_t1', 'chunks_t2'] loop
        col := case when parent = 'raw_points' then 'ts' else 'start' end;
        w := fleetpoll_partition_width(parent);
        lo := (from_ms / w) * w;
        while lo <= to_ms loop
            name := parent || '_p' || (lo / w);
            if to_regclass(name) is null then
                execute format('select exists (select 1 from %I where %I >= $1 and %I < $2)',
                               parent || '_default', col, col)
                    into busy using lo, lo + w;
                if not busy then
                    begin
                        execute format('create table %I partition of %I for values from (%s) to (%s)',
                                       name, parent, lo, lo + w);
                        made := made + 1;
                    exception when duplicate_table then
                        null;
                    end;
                end if;
            end if;
            lo := lo + w;
        end loop;
    end loop;
    return made;
end
$$;

-- Drops the partitions of `parent` whose whole range ends at or before `before_ms`;
-- returns the rows they held.
create function fleetpoll_drop_partitions(parent text, before_ms bigint) returns bigint
    language plpgsql
    as $$
declare
    part text;
    w bigint := fleetpoll_partition_width(parent);
    n bigint;
    total bigint := 0;
begin
    for part in
        select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = parent::regclass and c.relname ~ ('^' || parent || '_p[0-9]+$')
    loop
        if (substring(part from '_p([0-9]+)$')::bigint + 1) * w <= before_ms then
            execute format('select count(*) from %I', part) into n;
            execute format('drop table %I', part);
            total := total + n;
        end if;
    end loop;
    return total;
end
$$;
