-- 0009: the _text and _content rows move from idx_string to a table of
-- their own (internal/sqlsearch, TextTable). They are searched only by
-- :contains, a scan of a type's rows; in idx_string_find, ordered by the
-- text itself, each was a ~300-byte entry on a random page, and with
-- idx_string's own copy the largest part of every write. Here a row is
-- keyed by the resource, written beside the previous one.
CREATE TABLE idx_text (
    type  TEXT    NOT NULL,
    id    TEXT    NOT NULL,
    param TEXT    NOT NULL,   -- _text, _content, or a contained resource's "#Type._content"
    grp   INTEGER NOT NULL,
    norm  TEXT    NOT NULL,   -- folded (search.Fold), at most 2 KiB
    PRIMARY KEY (type, id, param, grp)
) WITHOUT ROWID;

INSERT INTO idx_text (type, id, param, grp, norm)
SELECT type, id, param, grp, norm FROM idx_string
WHERE param IN ('_text', '_content') OR (param LIKE '#%' AND (substr(param, -6) = '._text' OR substr(param, -9) = '._content'))
ORDER BY type, id, param, grp;

DELETE FROM idx_string
WHERE param IN ('_text', '_content') OR (param LIKE '#%' AND (substr(param, -6) = '._text' OR substr(param, -9) = '._content'));
