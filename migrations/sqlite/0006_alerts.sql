-- Issue #13: alert rules, the alerts they raise, notification channels, and the outbox that
-- delivers notifications. Times are Unix milliseconds, like the rest of the schema.

-- What to watch. `threshold` is numeric for measured metrics; `threshold_text` holds the
-- compared word for `container_state` and `server_status`. `clear_threshold` gives
-- hysteresis: a firing alert clears only once the value is past it.
create table alert_rules (
    id text primary key not null,                  -- UUID
    name text not null unique,
    metric text not null,
    op text not null,
    threshold real,
    threshold_text text,
    clear_threshold real,
    for_secs integer not null default 0,
    severity text not null,                        -- warning | critical
    scope text not null default '{}',              -- JSON {"tags": [...], "servers": [names]}
    mount_glob text not null default '*',
    container_glob text not null default '*',
    channels text not null default '[]',           -- JSON array of channel names
    repeat_secs integer not null default 0,
    notify_resolved integer not null default 1,
    enabled integer not null default 1,
    created_at integer not null,
    updated_at integer not null
);

-- One row per (rule, server, subject) episode; subject is the mount or container, '' for
-- server-wide metrics. An episode is pending, then firing, then resolved; a pending one that
-- never fired is deleted. Only one open (not resolved) episode per key, enforced below.
create table alerts (
    id text primary key not null,                  -- UUID
    rule_id text not null references alert_rules(id) on delete cascade,
    server_id text not null references servers(id) on delete cascade,
    subject text not null default '',
    state text not null,                           -- pending | firing | resolved
    value real,
    value_text text,
    started_at integer not null,                   -- the condition first held
    fired_at integer,
    resolved_at integer,
    last_notified_at integer,
    acked_at integer,
    acked_by text,
    ack_comment text,
    updated_at integer not null
);
create unique index alerts_open_key on alerts (rule_id, server_id, subject) where state != 'resolved';
-- The alerts page and the API list newest first, often by state.
create index alerts_state_started on alerts (state, started_at);

-- Where notifications go. `config` holds what may be shown (URL without secrets, addresses);
-- `secret_sealed` what may not (webhook secret, tokens, SMTP password), sealed under the
-- master key like stored SSH keys.
create table notification_channels (
    id text primary key not null,
    name text not null unique,
    kind text not null,
    config text not null default '{}',
    secret_sealed blob,
    enabled integer not null default 1,
    created_at integer not null,
    updated_at integer not null
);

-- A state change that should be told, written in the same transaction as the change itself:
-- nothing is lost between the change and its notification, whatever happens to the process.
-- The dispatcher groups the intents of one rule and channel into one notification.
create table notification_intents (
    id integer primary key,
    alert_id text not null references alerts(id) on delete cascade,
    channel_id text not null references notification_channels(id) on delete cascade,
    status text not null,                          -- firing | resolved
    created_at integer not null,
    notification_id text                           -- set once grouped into a notification
);
create index notification_intents_open on notification_intents (notification_id, created_at);

-- The outbox: one notification per channel and group. `id` is the delivery id the receiver
-- sees on every attempt (X-Fleetpoll-Delivery), so it can de-duplicate retries.
create table notifications (
    id text primary key not null,                  -- UUID, the delivery id
    channel_id text not null references notification_channels(id) on delete cascade,
    group_key text not null,
    status text not null,                          -- pending | delivered | failed
    body text not null,                            -- the JSON payload (webhook shape)
    created_at integer not null,
    next_attempt_at integer not null,
    attempts integer not null default 0,
    last_http_status integer,
    last_error text,
    delivered_at integer
);
create index notifications_due on notifications (status, next_attempt_at);

-- Editable defaults matching the health thresholds: warning at 75%, critical at 90%, held
-- for 5 minutes, clearing 5 points lower; a server offline; a host key changed; an unhealthy
-- container. No channels yet: they notify nobody until an admin adds one.
insert into alert_rules (id, name, metric, op, threshold, threshold_text, clear_threshold, for_secs, severity, created_at, updated_at) values
    ('00000000-0000-4000-8000-000000000001', 'cpu warning',       'cpu_percent',    '>=', 75, null, 70, 300, 'warning',  0, 0),
    ('00000000-0000-4000-8000-000000000002', 'cpu critical',      'cpu_percent',    '>=', 90, null, 85, 300, 'critical', 0, 0),
    ('00000000-0000-4000-8000-000000000003', 'memory warning',    'memory_percent', '>=', 75, null, 70, 300, 'warning',  0, 0),
    ('00000000-0000-4000-8000-000000000004', 'memory critical',   'memory_percent', '>=', 90, null, 85, 300, 'critical', 0, 0),
    ('00000000-0000-4000-8000-000000000005', 'disk warning',      'disk_percent',   '>=', 75, null, 70, 300, 'warning',  0, 0),
    ('00000000-0000-4000-8000-000000000006', 'disk critical',     'disk_percent',   '>=', 90, null, 85, 300, 'critical', 0, 0),
    ('00000000-0000-4000-8000-000000000007', 'server offline',    'server_status',  '==', null, 'offline', null, 0, 'critical', 0, 0),
    ('00000000-0000-4000-8000-000000000008', 'host key changed',  'server_status',  '==', null, 'host_key_changed', null, 0, 'critical', 0, 0),
    ('00000000-0000-4000-8000-000000000009', 'container unhealthy', 'container_state', '==', null, 'unhealthy', null, 0, 'warning', 0, 0);
