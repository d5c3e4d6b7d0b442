-- The kind of device a job was submitted for ("cpu" or "cuda", the spec's model.device_kind):
-- a worker claims only the tasks of jobs of its own kind, since results differ in the last bits
-- between devices. A column, so that claims and KEDA's queries filter without parsing the spec.
-- Jobs queued before this migration take it from their spec (cpu when it names none; specs
-- are JSON, the CASE only keeps a spec that names no device kind from being parsed at all).
ALTER TABLE jobs ADD COLUMN device_kind TEXT NOT NULL DEFAULT 'cpu';
UPDATE jobs SET device_kind = 'cuda'
    WHERE (CASE WHEN spec LIKE '%"device_kind"%' THEN spec::jsonb #>> '{model,device_kind}' END)
        = 'cuda';
