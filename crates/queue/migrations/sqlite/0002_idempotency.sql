-- A client's Idempotency-Key: a retried submission with the same key finds the job it made,
-- whatever that job's state. Paging by submission order uses seq.
ALTER TABLE jobs ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_seq ON jobs (seq);
