-- A job's log: planning, every task attempt with its worker, errors with ffmpeg's stderr tail,
-- assembly and timings, as the job runs; served by GET /v1/jobs/{id}/logs.
CREATE TABLE job_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    at BIGINT NOT NULL,
    worker TEXT,
    message TEXT NOT NULL
);
CREATE INDEX job_log_job ON job_log (job_id, id);
