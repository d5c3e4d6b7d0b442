-- Workers announce themselves: who is there, on which host and device, what each is doing,
-- and when it was last heard from (a worker that went silent shows as such).
CREATE TABLE workers (
    name TEXT PRIMARY KEY NOT NULL,
    host TEXT NOT NULL,
    device TEXT NOT NULL,
    state TEXT NOT NULL,
    current TEXT,
    started_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX workers_last_seen ON workers (last_seen);
