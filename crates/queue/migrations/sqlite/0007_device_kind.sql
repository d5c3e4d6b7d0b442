-- The kind of device a job was submitted for ("cpu" or "cuda", the spec's model.device_kind):
-- a worker claims only the tasks of jobs of its own kind, since results differ in the last bits
-- between devices. A column, so that claims and KEDA's queries filter without parsing the spec.
-- Jobs queued before this migration take it from their spec (cpu when it names none).
ALTER TABLE jobs ADD COLUMN device_kind TEXT NOT NULL DEFAULT 'cpu';
UPDATE jobs SET device_kind = 'cuda'
    WHERE json_valid(spec) AND json_extract(spec, '$.model.device_kind') = 'cuda';
