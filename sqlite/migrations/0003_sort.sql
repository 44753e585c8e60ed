-- 0003: sort keys. One row per resource and sortable parameter with the
-- key a search sorts by: lo, the smallest value (ascending), and hi, the
-- largest (descending); for dates the smallest start and the largest
-- end of the ranges. A page of a whole type sorted by a parameter is
-- then a range of idx_sort_*_asc (or _desc) rather than a sort of every
-- match. Put and Reindex keep the rows with the other index rows
-- (internal/sqlsearch.SortKeys computes them); docs/database.md.
--
-- Text keys are the first 200 characters of the value (sqlsearch.MaxSortText):
-- a PostgreSQL B-tree entry cannot hold a long string.
--
-- Derived rows ("code:text", composite components "x#0", _text,
-- _content, contained resources' rows) have no sort key: their names
-- contain ':', '#' or '~', or are _text and _content.

CREATE TABLE idx_sort_text (  -- string (norm), token (code), uri, reference (url)
    type  TEXT NOT NULL,
    id    TEXT NOT NULL,
    param TEXT NOT NULL,
    lo    TEXT NOT NULL,
    hi    TEXT NOT NULL,
    PRIMARY KEY (type, id, param),
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
) WITHOUT ROWID;
CREATE INDEX idx_sort_text_asc ON idx_sort_text (type, param, lo, id);
CREATE INDEX idx_sort_text_desc ON idx_sort_text (type, param, hi DESC, id);

CREATE TABLE idx_sort_int (  -- date: min(lo), max(hi) in unix microseconds
    type  TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    param TEXT    NOT NULL,
    lo    INTEGER NOT NULL,
    hi    INTEGER NOT NULL,
    PRIMARY KEY (type, id, param),
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
) WITHOUT ROWID;
CREATE INDEX idx_sort_int_asc ON idx_sort_int (type, param, lo, id);
CREATE INDEX idx_sort_int_desc ON idx_sort_int (type, param, hi DESC, id);

CREATE TABLE idx_sort_real (  -- number, quantity: min(value), max(value)
    type  TEXT NOT NULL,
    id    TEXT NOT NULL,
    param TEXT NOT NULL,
    lo    REAL NOT NULL,
    hi    REAL NOT NULL,
    PRIMARY KEY (type, id, param),
    FOREIGN KEY (type, id) REFERENCES resource (type, id)
) WITHOUT ROWID;
CREATE INDEX idx_sort_real_asc ON idx_sort_real (type, param, lo, id);
CREATE INDEX idx_sort_real_desc ON idx_sort_real (type, param, hi DESC, id);

-- The keys of the resources already stored, from their index rows.
INSERT INTO idx_sort_text (type, id, param, lo, hi)
    SELECT type, id, param, substr(min(norm), 1, 200), substr(max(norm), 1, 200) FROM idx_string
    WHERE instr(param, ':') = 0 AND instr(param, '#') = 0 AND instr(param, '~') = 0 AND param NOT IN ('_text', '_content')
    GROUP BY type, id, param;
INSERT INTO idx_sort_text (type, id, param, lo, hi)
    SELECT type, id, param, substr(min(code), 1, 200), substr(max(code), 1, 200) FROM idx_token
    WHERE instr(param, ':') = 0 AND instr(param, '#') = 0 AND instr(param, '~') = 0
    GROUP BY type, id, param;
INSERT INTO idx_sort_text (type, id, param, lo, hi)
    SELECT type, id, param, substr(min(uri), 1, 200), substr(max(uri), 1, 200) FROM idx_uri
    WHERE instr(param, ':') = 0 AND instr(param, '#') = 0 AND instr(param, '~') = 0
    GROUP BY type, id, param;
INSERT INTO idx_sort_text (type, id, param, lo, hi)
    SELECT type, id, param, substr(min(url), 1, 200), substr(max(url), 1, 200) FROM idx_reference
    WHERE instr(param, ':') = 0 AND instr(param, '#') = 0 AND instr(param, '~') = 0
    GROUP BY type, id, param;
INSERT INTO idx_sort_int (type, id, param, lo, hi)
    SELECT type, id, param, min(lo), max(hi) FROM idx_date
    WHERE instr(param, ':') = 0 AND instr(param, '#') = 0 AND instr(param, '~') = 0
    GROUP BY type, id, param;
INSERT INTO idx_sort_real (type, id, param, lo, hi)
    SELECT type, id, param, min(value), max(value) FROM idx_number
    WHERE instr(param, ':') = 0 AND instr(param, '#') = 0 AND instr(param, '~') = 0
    GROUP BY type, id, param;
INSERT INTO idx_sort_real (type, id, param, lo, hi)
    SELECT type, id, param, min(value), max(value) FROM idx_quantity
    WHERE instr(param, ':') = 0 AND instr(param, '#') = 0 AND instr(param, '~') = 0
    GROUP BY type, id, param;
