-- A job's before/after preview: one input frame and the same frame styled (small JPEGs),
-- saved by the worker that finishes the job's first chunk and served by the dashboard from
-- any server of a cluster, without a shared disk. The first preview of a job stays.
CREATE TABLE previews (
    job_id TEXT PRIMARY KEY NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    chunk INTEGER NOT NULL,
    frame BIGINT NOT NULL,
    mime TEXT NOT NULL,
    before BLOB NOT NULL,
    after BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
-- Dashboards and /metrics count jobs by state and chart the frames of recently finished
-- chunks on every refresh: both read an index instead of the whole tables.
CREATE INDEX jobs_state ON jobs (state);
CREATE INDEX tasks_done_chunks ON tasks (finished_at) WHERE kind = 'score' AND state = 'done';
