-- The dashboard counts each listed dataset job's failed items every second; a partial index
-- over the failures alone keeps that count as small as the failures (a job of a million items
-- with ten bad ones reads ten entries), instead of a scan of every pinned item.
CREATE INDEX dataset_items_failed ON dataset_items (job_id) WHERE failure IS NOT NULL;
