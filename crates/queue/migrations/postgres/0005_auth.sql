-- Authentication for `fresco serve`: API tokens (only their SHA-256 is kept; the token itself is
-- shown once, when it is made), browser sessions opened with a token, who submitted each job,
-- and an audit trail of who submitted, canceled or retried what, and who made or revoked tokens.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    -- Unique for ever: jobs and audit entries name their token by it.
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);

-- A session cookie's SHA-256, its token, and the CSRF token that state-changing requests made
-- with the cookie must carry. Revoking the token ends its sessions.
CREATE TABLE sessions (
    hash TEXT PRIMARY KEY,
    token_id TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    -- The token's name (NULL: the database was used directly, e.g. `fresco tokens create`).
    actor TEXT,
    action TEXT NOT NULL,
    -- A job id or a token name, by action.
    target TEXT,
    detail TEXT
);
CREATE INDEX audit_actor ON audit (actor, id);
CREATE INDEX audit_target ON audit (target, id);

-- The name of the token that submitted the job (NULL: submitted without the API, or before
-- authentication existed). Submitters see and cancel their own jobs only.
ALTER TABLE jobs ADD COLUMN owner TEXT;
CREATE INDEX jobs_owner ON jobs (owner, state);
