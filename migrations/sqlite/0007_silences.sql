-- Issue #13: silences. An alert matched by a silence in force still changes state and shows
-- in the UI, but notifies nobody; a silence that starts later is a maintenance window.
-- Matchers are all optional and all must match: a rule name, a server name, a tag.
create table silences (
    id text primary key not null,                  -- UUID
    rule text,                                     -- rule name
    server text,                                   -- server name
    tag text,
    starts_at integer not null,
    ends_at integer not null,                      -- at most 7 days after starts_at
    comment text not null,
    created_by text not null,
    created_at integer not null,
    -- Set when the silence is ended early or found over; its `silence_expired` entry is
    -- written once, at that moment.
    expired_at integer
);
create index silences_active on silences (expired_at, ends_at);
