-- Issue #6: accounts, API tokens and login sessions. Secrets are stored only as hashes:
-- passwords as argon2id PHC strings, tokens and session ids as SHA-256 hex of the secret.

create table users (
    id text primary key not null,                 -- UUID
    name text not null unique,
    role text not null check (role in ('admin', 'operator', 'viewer')),
    password_hash text not null,                  -- argon2id PHC string
    created_at integer not null,
    updated_at integer not null
);

create table api_tokens (
    id text primary key not null,                 -- UUID
    name text not null unique,
    role text not null check (role in ('admin', 'operator', 'viewer')),
    token_hash text not null unique,
    created_by text not null,
    created_at integer not null,
    expires_at integer,                           -- null: never
    last_used_at integer,
    revoked_at integer
);

create table sessions (
    token_hash text primary key not null,
    user_id text not null references users(id) on delete cascade,
    created_at integer not null,
    expires_at integer not null,
    source text
);
create index sessions_expires on sessions(expires_at);
