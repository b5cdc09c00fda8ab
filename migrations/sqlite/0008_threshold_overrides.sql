-- Issue #13 (seed 003): health thresholds overridden for a tag or a server, and default
-- rules that follow the health thresholds instead of numbers of their own.

-- `thresholds` is a JSON object with any of cpu_warning_percent, cpu_critical_percent,
-- memory_warning_percent, memory_critical_percent, disk_warning_percent,
-- disk_critical_percent; the keys not given keep the configured (or the tag's) value.
create table threshold_overrides (
    kind text not null,                            -- tag | server
    name text not null,                            -- the tag, or the server's name
    thresholds text not null,
    updated_at integer not null,
    primary key (kind, name)
) without rowid;

-- A rule that follows the health thresholds fires at the server's own warning or critical
-- threshold for its metric (config, then tag, then server override) and clears 5 points
-- lower; editing its threshold makes it a rule of its own.
alter table alert_rules add column follows_health text;       -- warning | critical | null
update alert_rules set follows_health = 'warning'
    where id in ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000003',
                 '00000000-0000-4000-8000-000000000005');
update alert_rules set follows_health = 'critical'
    where id in ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000004',
                 '00000000-0000-4000-8000-000000000006');
