-- A dataset job's items (issue 17), pinned by its plan task in listing order: the key (relative
-- to the folder or prefix, or a manifest's line), the size and the version seen when listed
-- (an ETag, or `mtime:MS` for a local file). Score tasks read their range of indices and report
-- a changed object instead of scoring what it became. `failure` is the error kind of an item
-- its chunk could not score (NULL: scored, or not yet), for the job's counts.
CREATE TABLE dataset_items (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx BIGINT NOT NULL,
    item_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    version TEXT,
    failure TEXT,
    PRIMARY KEY (job_id, idx)
);
