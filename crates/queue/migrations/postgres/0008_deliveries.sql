-- Completion callbacks waiting to be sent (see src/deliveries.rs): written with the job when it
-- is submitted with a callback URL, claimed by one server's delivery loop once the job is
-- terminal (a lease, so two servers never send the same one), retried with back-off, and kept
-- with their outcome. In the queue, so that a server restart loses none.
CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    -- The Standard Webhooks `webhook-id`, the same on every attempt.
    webhook_id TEXT NOT NULL UNIQUE,
    -- pending, delivered or failed.
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_token TEXT,
    lease_expires_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX deliveries_job ON deliveries (job_id);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
