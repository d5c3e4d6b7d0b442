-- Shared prefixes of the data store a token may reach beyond its own namespace (issue 13: each
-- submitter sees only `tenants/NAME/` unless an admin grants more). One prefix per line: a name
-- in the data store (`shared/team-a`) or an absolute root (`/srv/media`, `az://c/prefix`) that
-- must also be one of the server's --allow-prefix roots. Empty: no grant.
ALTER TABLE tokens ADD COLUMN shares TEXT NOT NULL DEFAULT '';
