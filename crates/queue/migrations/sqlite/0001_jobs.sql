-- Jobs and their tasks (plan, score chunk, assemble). Times are milliseconds since the Unix
-- epoch by the clock of the machine that wrote them (SQLite: one machine).

CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    identity TEXT NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    spec TEXT NOT NULL,
    plan TEXT,
    frames_total BIGINT,
    max_attempts INTEGER NOT NULL,
    max_expiries INTEGER NOT NULL,
    last_error TEXT,
    enqueued_at BIGINT NOT NULL,
    -- Submission order (1, 2, ...): lists jobs submitted in the same millisecond in order.
    seq INTEGER NOT NULL UNIQUE,
    started_at BIGINT,
    finished_at BIGINT
);

-- One active job per identity: two submits racing cannot both create one. Finished jobs keep
-- their identity, so the same work can be submitted again once the earlier job is over.
CREATE UNIQUE INDEX jobs_active_identity ON jobs (identity) WHERE state IN ('queued', 'running');
-- Listings, newest first.
CREATE INDEX jobs_newest ON jobs (enqueued_at, seq);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    chunk INTEGER NOT NULL,
    frame_start BIGINT NOT NULL,
    frame_end BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expiries INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    token TEXT,
    lease_expires_at BIGINT,
    not_before BIGINT NOT NULL,
    last_error TEXT,
    checkpoint TEXT,
    finished_at BIGINT,
    -- Claim order within a priority: 0 for plan and assemble, chunk + 1 for score tasks, so
    -- chunk 0 of every job comes before chunk 1 of any. An assemble task whose chunks are not
    -- all done waits at the end of the order (2147483647) and moves to 0 with its last chunk,
    -- so claims do not step over the waiting assemble tasks of every running job.
    rank INTEGER NOT NULL,
    -- The job's priority and submission time, copied (neither changes) so that the claim order
    -- is one index on this table: a claim reads the first claimable entry instead of sorting
    -- every pending task.
    priority INTEGER NOT NULL,
    enqueued_at BIGINT NOT NULL
);

CREATE INDEX tasks_claim_order ON tasks (priority DESC, rank, enqueued_at, id)
    WHERE state = 'pending';
CREATE INDEX tasks_job ON tasks (job_id);
CREATE INDEX tasks_worker ON tasks (worker);
CREATE INDEX tasks_leased ON tasks (lease_expires_at) WHERE state = 'leased';
-- Whether a job has chunks left: the assemble task waits for none.
CREATE INDEX tasks_unfinished_chunks ON tasks (job_id) WHERE kind = 'score' AND state <> 'done';
