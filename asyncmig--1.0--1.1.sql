/* asyncmig--1.0--1.1.sql: from 1.0 to 1.1 */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION asyncmig UPDATE TO '1.1'" to load this file. \quit

/*
 * CREATE EXTENSION asyncmig installs 1.0 and then runs this script, so a
 * fresh install and an upgraded one are the same database objects.  Same
 * rules as asyncmig--1.0.sql: every reference schema-qualified, no
 * IF NOT EXISTS, grants revoked from PUBLIC.
 */

/* ---- security (issue 11) ---- */

/*
 * The schema must be trustworthy: PostgreSQL reuses an existing schema
 * named in the control file, and a database owner who created "asyncmig"
 * before a superuser ran CREATE EXTENSION could later rename it and put a
 * table of its own in its place, with rows owned by a superuser.  Refuse a
 * schema owned by anyone but a superuser, or in which another role may
 * create objects.  An error here rolls back the whole CREATE EXTENSION (or
 * ALTER EXTENSION UPDATE of an install that 1.0 let into such a schema).
 * The C code checks in addition that the table it uses is the extension's
 * own (see am_catalog_relid()).
 */
DO $security$
DECLARE
	nsp_owner pg_catalog.name;
	nsp_super boolean;
	creator pg_catalog.name;
BEGIN
	SELECT r.rolname, r.rolsuper INTO nsp_owner, nsp_super
	  FROM pg_catalog.pg_namespace n
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig';
	IF NOT nsp_super THEN
		RAISE EXCEPTION 'schema "asyncmig" is owned by role "%", not by a superuser', nsp_owner
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'The rows of asyncmig.migration are run with the rights of their owners; whoever owns the schema could replace the table.',
				  HINT = 'Drop or rename that schema (or make a superuser its owner) and run CREATE EXTENSION asyncmig again.';
	END IF;
	SELECT coalesce(r.rolname, 'PUBLIC') INTO creator
	  FROM pg_catalog.pg_namespace n,
		   LATERAL pg_catalog.aclexplode(n.nspacl) a
	  LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
	 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig'
	   AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
	   AND NOT coalesce(r.rolsuper, false)
	 LIMIT 1;
	IF creator IS NOT NULL THEN
		RAISE EXCEPTION 'schema "asyncmig" grants CREATE to role "%"', creator
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A role that may create objects in the schema could capture names the extension uses.',
				  HINT = 'REVOKE CREATE ON SCHEMA asyncmig FROM that role and run the command again.';
	END IF;
	-- objects another role created there while it could
	SELECT r.rolname INTO creator
	  FROM (SELECT c.relowner AS o FROM pg_catalog.pg_class c, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND c.relnamespace OPERATOR(pg_catalog.=) n.oid
			UNION ALL
			SELECT p.proowner FROM pg_catalog.pg_proc p, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND p.pronamespace OPERATOR(pg_catalog.=) n.oid
			UNION ALL
			SELECT t.typowner FROM pg_catalog.pg_type t, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND t.typnamespace OPERATOR(pg_catalog.=) n.oid
			UNION ALL
			SELECT o.oprowner FROM pg_catalog.pg_operator o, pg_catalog.pg_namespace n
			 WHERE n.nspname OPERATOR(pg_catalog.=) 'asyncmig' AND o.oprnamespace OPERATOR(pg_catalog.=) n.oid) x
	  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) x.o
	 WHERE NOT r.rolsuper
	 LIMIT 1;
	IF creator IS NOT NULL THEN
		RAISE EXCEPTION 'schema "asyncmig" holds objects owned by role "%"', creator
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'Objects of another role in the extension''s schema could capture names it uses.',
				  HINT = 'Drop them (or the schema) and run the command again.';
	END IF;
END
$security$;
