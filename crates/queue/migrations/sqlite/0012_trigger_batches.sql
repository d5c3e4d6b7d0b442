-- The dataset trigger (src/batches.rs): images a watched prefix received, collected here until
-- a batch of them is cut into one dataset job. An object (key and version) is recorded once per
-- trigger (the primary key), and a batch takes only objects that no batch holds yet (a
-- conditional update), so each object goes into at most one job, whichever server collects or
-- cuts it, across restarts.
CREATE TABLE trigger_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trigger_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    objects BIGINT NOT NULL DEFAULT 0,
    -- The job made of the batch, once submitted; or why it could not be made.
    job_id TEXT,
    error TEXT,
    -- The server making its job holds it until then (a lease, so a crash leaves it to others).
    lease_token TEXT,
    lease_expires_at BIGINT
);
CREATE INDEX trigger_batches_open ON trigger_batches (trigger_name, id)
    WHERE job_id IS NULL AND error IS NULL;

CREATE TABLE trigger_objects (
    trigger_name TEXT NOT NULL,
    object_key TEXT NOT NULL,
    version TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    batch_id BIGINT REFERENCES trigger_batches (id),
    PRIMARY KEY (trigger_name, object_key, version)
);
CREATE INDEX trigger_objects_waiting ON trigger_objects (trigger_name, seen_at, object_key)
    WHERE batch_id IS NULL;
CREATE INDEX trigger_objects_batch ON trigger_objects (batch_id);
