-- 0011: the index and sort-key tables lose their foreign key to
-- resource. Only the engine writes their rows, in the transaction that
-- writes the resource row (Put, Reindex), and deletes them with it; the
-- key checked that again for every row with a trigger that locks the
-- resource row (SELECT … FOR KEY SHARE), which nearly doubled the cost of
-- an index row insert (docs/database.md, "Index tables"). (idx_text, new
-- in 0009, never had one.)
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname, conrelid::regclass AS tbl FROM pg_constraint
        WHERE contype = 'f' AND conrelid IN (
            'idx_token'::regclass, 'idx_string'::regclass, 'idx_reference'::regclass,
            'idx_date'::regclass, 'idx_number'::regclass, 'idx_quantity'::regclass,
            'idx_uri'::regclass, 'idx_sort_text'::regclass, 'idx_sort_int'::regclass,
            'idx_sort_real'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tbl, c.conname);
    END LOOP;
END $$;
