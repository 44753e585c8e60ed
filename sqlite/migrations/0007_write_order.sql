-- 0005: write order. first_seq is the seq of a resource's first version
-- (when it was created); it never changes afterwards, not on an update,
-- a delete or a re-creation. A search without _sort pages a whole type
-- in this order (internal/sqlsearch, writePage), so that a page of a
-- thousand resources reads neighbouring resource_version rows instead of
-- a thousand random ones (ids are UUIDs); and since the key of a
-- resource never moves, a cursor in it skips nothing and repeats nothing
-- while others write. docs/database.md.
ALTER TABLE resource ADD COLUMN first_seq INTEGER NOT NULL DEFAULT 0;

-- The first version is the lowest: a version is only ever written above
-- the current one. (Not min(seq): SQLite would answer it from
-- (type, seq), scanning the type's versions once per resource.)
UPDATE resource SET first_seq = (
    SELECT v.seq FROM resource_version v WHERE v.type = resource.type AND v.id = resource.id
    ORDER BY v.version LIMIT 1
);

-- A page in write order: a range of this index, which covers what the
-- page needs (id comes with it, resource being WITHOUT ROWID).
CREATE INDEX resource_write_order ON resource (type, first_seq, seq, deleted);
