-- 0008: sort keys only for string parameters among the text kinds.
-- Tokens, uris and references (status, code, patient, _tag) are rarely
-- sorted on, yet their keys were a third of the index rows every write
-- made; a sort by one is now computed from its index rows
-- (internal/sqlsearch, sortKey). Dates, numbers and quantities keep
-- theirs. Remove the text keys no string row backs.
DELETE FROM idx_sort_text WHERE NOT EXISTS (
    SELECT 1 FROM idx_string s
    WHERE s.type = idx_sort_text.type AND s.id = idx_sort_text.id AND s.param = idx_sort_text.param
);
