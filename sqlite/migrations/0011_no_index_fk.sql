-- 0011: the index and sort-key tables lose their foreign key to
-- resource. Only the engine writes their rows, in the transaction that
-- writes the resource row (Put, Reindex), and deletes them with it; the
-- key checked that again for every row, a probe of resource's primary
-- key per index row, about a tenth of a write's CPU (docs/database.md,
-- "Index tables"). SQLite cannot drop a constraint, so each table is
-- rebuilt with the same columns, rows and indexes. (idx_text, new in
-- 0009, never had one.)

CREATE TABLE idx_token_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    system TEXT NOT NULL,
    code TEXT NOT NULL,
    grp INTEGER NOT NULL DEFAULT 0
);
INSERT INTO idx_token_new (type, id, param, system, code, grp) SELECT type, id, param, system, code, grp FROM idx_token;
DROP TABLE idx_token;
ALTER TABLE idx_token_new RENAME TO idx_token;
CREATE INDEX idx_token_find ON idx_token (type, param, code, id, system, grp);
CREATE INDEX idx_token_resource ON idx_token (type, id, param, code);

CREATE TABLE idx_string_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    norm TEXT NOT NULL,
    exact TEXT NOT NULL,
    grp INTEGER NOT NULL DEFAULT 0
);
INSERT INTO idx_string_new (type, id, param, norm, exact, grp) SELECT type, id, param, norm, exact, grp FROM idx_string;
DROP TABLE idx_string;
ALTER TABLE idx_string_new RENAME TO idx_string;
CREATE INDEX idx_string_find ON idx_string (type, param, norm, exact, id);
CREATE INDEX idx_string_resource ON idx_string (type, id, param);

CREATE TABLE idx_reference_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_id TEXT NOT NULL,
    url TEXT NOT NULL,
    grp INTEGER NOT NULL DEFAULT 0
);
INSERT INTO idx_reference_new (type, id, param, target_type, target_id, url, grp) SELECT type, id, param, target_type, target_id, url, grp FROM idx_reference;
DROP TABLE idx_reference;
ALTER TABLE idx_reference_new RENAME TO idx_reference;
CREATE INDEX idx_reference_find ON idx_reference (type, param, target_id, target_type, id);
CREATE INDEX idx_reference_resource ON idx_reference (type, id, param, target_type, target_id);
CREATE INDEX idx_reference_url ON idx_reference (type, param, url, id) WHERE target_id = '';

CREATE TABLE idx_date_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    grp INTEGER NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL
);
INSERT INTO idx_date_new (type, id, param, grp, lo, hi) SELECT type, id, param, grp, lo, hi FROM idx_date;
DROP TABLE idx_date;
ALTER TABLE idx_date_new RENAME TO idx_date;
CREATE INDEX idx_date_find ON idx_date (type, param, lo, hi, id, grp);
CREATE INDEX idx_date_resource ON idx_date (type, id, param, lo, hi);

CREATE TABLE idx_number_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    grp INTEGER NOT NULL,
    value REAL NOT NULL,
    lo REAL NOT NULL,
    hi REAL NOT NULL
);
INSERT INTO idx_number_new (type, id, param, grp, value, lo, hi) SELECT type, id, param, grp, value, lo, hi FROM idx_number;
DROP TABLE idx_number;
ALTER TABLE idx_number_new RENAME TO idx_number;
CREATE INDEX idx_number_find ON idx_number (type, param, value, id, grp);
CREATE INDEX idx_number_resource ON idx_number (type, id, param, value);

CREATE TABLE idx_quantity_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    grp INTEGER NOT NULL,
    system TEXT NOT NULL,
    code TEXT NOT NULL,
    unit TEXT NOT NULL,
    value REAL NOT NULL,
    lo REAL NOT NULL,
    hi REAL NOT NULL,
    canon_code TEXT NOT NULL,
    canon_lo REAL,
    canon_hi REAL,
    canon_value REAL
);
INSERT INTO idx_quantity_new (type, id, param, grp, system, code, unit, value, lo, hi, canon_code, canon_lo, canon_hi, canon_value) SELECT type, id, param, grp, system, code, unit, value, lo, hi, canon_code, canon_lo, canon_hi, canon_value FROM idx_quantity;
DROP TABLE idx_quantity;
ALTER TABLE idx_quantity_new RENAME TO idx_quantity;
CREATE INDEX idx_quantity_canon ON idx_quantity (type, param, canon_code, canon_value, id, grp);
CREATE INDEX idx_quantity_find ON idx_quantity (type, param, code, value, id, grp);
CREATE INDEX idx_quantity_resource ON idx_quantity (type, id, param, value);

CREATE TABLE idx_uri_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    grp INTEGER NOT NULL,
    uri TEXT NOT NULL
);
INSERT INTO idx_uri_new (type, id, param, grp, uri) SELECT type, id, param, grp, uri FROM idx_uri;
DROP TABLE idx_uri;
ALTER TABLE idx_uri_new RENAME TO idx_uri;
CREATE INDEX idx_uri_find ON idx_uri (type, param, uri, id, grp);
CREATE INDEX idx_uri_resource ON idx_uri (type, id, param, uri);

CREATE TABLE idx_sort_text_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    lo TEXT NOT NULL,
    hi TEXT NOT NULL,
    PRIMARY KEY (type, id, param)
) WITHOUT ROWID;
INSERT INTO idx_sort_text_new (type, id, param, lo, hi) SELECT type, id, param, lo, hi FROM idx_sort_text;
DROP TABLE idx_sort_text;
ALTER TABLE idx_sort_text_new RENAME TO idx_sort_text;
CREATE INDEX idx_sort_text_asc ON idx_sort_text (type, param, lo, id);
CREATE INDEX idx_sort_text_desc ON idx_sort_text (type, param, hi DESC, id);

CREATE TABLE idx_sort_int_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    PRIMARY KEY (type, id, param)
) WITHOUT ROWID;
INSERT INTO idx_sort_int_new (type, id, param, lo, hi) SELECT type, id, param, lo, hi FROM idx_sort_int;
DROP TABLE idx_sort_int;
ALTER TABLE idx_sort_int_new RENAME TO idx_sort_int;
CREATE INDEX idx_sort_int_asc ON idx_sort_int (type, param, lo, id);
CREATE INDEX idx_sort_int_desc ON idx_sort_int (type, param, hi DESC, id);

CREATE TABLE idx_sort_real_new (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    param TEXT NOT NULL,
    lo REAL NOT NULL,
    hi REAL NOT NULL,
    PRIMARY KEY (type, id, param)
) WITHOUT ROWID;
INSERT INTO idx_sort_real_new (type, id, param, lo, hi) SELECT type, id, param, lo, hi FROM idx_sort_real;
DROP TABLE idx_sort_real;
ALTER TABLE idx_sort_real_new RENAME TO idx_sort_real;
CREATE INDEX idx_sort_real_asc ON idx_sort_real (type, param, lo, id);
CREATE INDEX idx_sort_real_desc ON idx_sort_real (type, param, hi DESC, id);
