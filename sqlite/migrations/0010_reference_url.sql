-- 0010: idx_reference_url indexes only the references that are not
-- local ("Type/id"): absolute URLs, canonicals, urn:uuid. A search by
-- URL always has a ':' in its value, which no local reference has, so
-- it can only match rows whose target_id is '' (internal/sqlsearch
-- writes that condition as a literal, which lets the planner use this
-- partial index). Local references, nearly all of them, are found by
-- (target_id, target_type) in idx_reference_find; their entries here
-- were never read, and each cost a B-tree insert on every write.
DROP INDEX idx_reference_url;
CREATE INDEX idx_reference_url ON idx_reference (type, param, url, id) WHERE target_id = '';
