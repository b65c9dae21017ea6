--
-- try(sql): run sql and say "ok" or its SQLSTATE and message, so that a
-- regress suite shows each refused call on one line.  Included by the
-- suites that need it (\ir test/regress_try.sql: pg_regress feeds psql on
-- stdin, so the path is relative to the tree it runs in).
--
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE sql;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
