-- 0002: the search index for every parameter type (dates, numbers,
-- quantities, uris), composite groups, and indexes for the query shapes
-- of Search. The same logical schema as sqlite/migrations/0002_search.sql;
-- docs/database.md explains every table and index.

-- From now on a delete stores no index rows, so that an index row
-- exists only for the current, not deleted version of a resource and an
-- index alone can answer a count. Remove the rows earlier deletes kept.
DELETE FROM idx_token i USING resource r WHERE r.type = i.type AND r.id = i.id AND r.deleted;
DELETE FROM idx_string i USING resource r WHERE r.type = i.type AND r.id = i.id AND r.deleted;
DELETE FROM idx_reference i USING resource r WHERE r.type = i.type AND r.id = i.id AND r.deleted;

-- grp ties together the component rows of one composite element
-- (hale.TokenValue.Group); 0 outside composites. A constant default
-- does not rewrite the table.
ALTER TABLE idx_token ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idx_string ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idx_reference ADD COLUMN grp INTEGER NOT NULL DEFAULT 0;

-- Each table has a covering "find" index led by (type, param, value),
-- from which a condition selects the ids it matches, and a "resource"
-- index led by (type, id, param), which serves Put's delete, an EXISTS
-- probe of one resource, :missing and the sort keys (min/max of the
-- resource's values).
--
-- code before id: a code alone (the common form) yields ids in order, so
-- a count of distinct resources streams without sorting.
DROP INDEX idx_token_find;
CREATE INDEX idx_token_find ON idx_token (type, param, code, id, system, grp);
DROP INDEX idx_token_resource;
CREATE INDEX idx_token_resource ON idx_token (type, id, param, code);

DROP INDEX idx_string_resource;
CREATE INDEX idx_string_resource ON idx_string (type, id, param);

DROP INDEX idx_reference_resource;
CREATE INDEX idx_reference_resource ON idx_reference (type, id, param, target_type, target_id);

-- Dates as the range their precision covers, [lo, hi) in unix
-- microseconds (hale.DateValue).
CREATE TABLE idx_date (
    type  TEXT COLLATE "C" NOT NULL,
    id    TEXT COLLATE "C" NOT NULL,
    param TEXT COLLATE "C" NOT NULL,
    grp   INTEGER NOT NULL,
    lo    BIGINT  NOT NULL,
    hi    BIGINT  NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_date_find ON idx_date (type, param, lo, hi, id, grp);
CREATE INDEX idx_date_resource ON idx_date (type, id, param, lo, hi);

CREATE TABLE idx_number (
    type  TEXT COLLATE "C" NOT NULL,
    id    TEXT COLLATE "C" NOT NULL,
    param TEXT COLLATE "C" NOT NULL,
    grp   INTEGER          NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    lo    DOUBLE PRECISION NOT NULL,
    hi    DOUBLE PRECISION NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_number_find ON idx_number (type, param, value, id, grp);
CREATE INDEX idx_number_resource ON idx_number (type, id, param, value);

-- canon_value is the value in canonical units, the middle of
-- [canon_lo, canon_hi); NULL with the others when the unit does not
-- convert (canon_code '').
CREATE TABLE idx_quantity (
    type        TEXT COLLATE "C" NOT NULL,
    id          TEXT COLLATE "C" NOT NULL,
    param       TEXT COLLATE "C" NOT NULL,
    grp         INTEGER          NOT NULL,
    system      TEXT COLLATE "C" NOT NULL,
    code        TEXT COLLATE "C" NOT NULL,
    unit        TEXT COLLATE "C" NOT NULL,
    value       DOUBLE PRECISION NOT NULL,
    lo          DOUBLE PRECISION NOT NULL,
    hi          DOUBLE PRECISION NOT NULL,
    canon_code  TEXT COLLATE "C" NOT NULL,
    canon_lo    DOUBLE PRECISION,
    canon_hi    DOUBLE PRECISION,
    canon_value DOUBLE PRECISION,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_quantity_find ON idx_quantity (type, param, code, value, id, grp);
CREATE INDEX idx_quantity_canon ON idx_quantity (type, param, canon_code, canon_value, id, grp);
CREATE INDEX idx_quantity_resource ON idx_quantity (type, id, param, value);

-- The FHIR core leaves uris over 1 KB out of the index
-- (search.MaxTokenLen), so a whole uri fits a B-tree entry.
CREATE TABLE idx_uri (
    type  TEXT COLLATE "C" NOT NULL,
    id    TEXT COLLATE "C" NOT NULL,
    param TEXT COLLATE "C" NOT NULL,
    grp   INTEGER NOT NULL,
    uri   TEXT COLLATE "C" NOT NULL,
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
);
CREATE INDEX idx_uri_find ON idx_uri (type, param, uri, id, grp);
CREATE INDEX idx_uri_resource ON idx_uri (type, id, param, uri);

-- _lastUpdated conditions and sorting.
CREATE INDEX resource_type_updated ON resource (type, last_updated);
