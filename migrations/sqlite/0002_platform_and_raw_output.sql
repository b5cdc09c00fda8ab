-- Issue #4: what each host runs, and the raw text of the last poll that could not all be read.

-- JSON of probe::Platform, written on first contact and after every reconnect.
alter table servers add column platform text;

-- One row per server, replaced whenever a poll has a section that could not be used; kept
-- for the admin (`fleetpoll server last-output`). Capped at 256 KiB per stream by the poller.
create table last_failed_output (
    server_id text primary key not null references servers(id) on delete cascade,
    ts integer not null,
    problems text not null,
    exit_status integer,
    stdout text not null,
    stderr text not null
);
