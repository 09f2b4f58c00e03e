-- The fingerprint: per catalog, the number of row versions that describe user objects (OID
-- 16384 and up, FirstNormalObjectId; all schemas, extensions and default privileges) and the
-- sum of a 64-bit hash of each one's xmin (the transaction that wrote it); plus the role
-- names, which renderings of owners and privileges show.
--
-- Every DDL statement writes new row versions for what it changes, stamped with its own
-- transaction id, newer than any recorded one: an added or updated row adds a new xmin to
-- the sum, a deleted row lowers the count. So equal fingerprints prove that the catalog, and
-- with it every rendering of the snapshot, is unchanged (barring a 64-bit hash collision).
-- Nothing is deparsed, converted or sorted per object, so it is cheap. Unequal fingerprints
-- prove nothing: VACUUM FULL, CLUSTER, TRUNCATE and REINDEX write new pg_class rows, a
-- restored database has other row versions; the gate then compares the rendered snapshot.
-- ANALYZE and VACUUM update pg_class in place (same xmin). Tied to one database's row
-- versions: never compared across databases.
--
-- It must read every catalog row a rendering of the capture depends on, or a change to that
-- row alone is missed whenever nothing else changed: so comments are read where the capture
-- reads them (user objects, schemas and extensions: COMMENT ON EXTENSION plpgsql), and the
-- catalogs whose names the server writes into definitions are read too: the user's
-- collations (a column's COLLATE, ALTER COLLATION ... RENAME) and operator classes (an
-- index's), languages (a function's; plpgsql's own row is older than 16384), and the user's
-- operators and text search configurations (in expressions). Built-in functions, types,
-- operators, collations and operator classes, which only a superuser can rename, are not
-- read (thousands of rows on every check): the digest sees such a rename once anything else
-- changed. Temporary schemas are left out: a session's first temporary table creates one
-- for good, and the capture never shows it.
SELECT pg_catalog.md5(pg_catalog.concat_ws('|',
  (SELECT pg_catalog.string_agg(oid || ':' || rolname, ',' ORDER BY oid) FROM pg_catalog.pg_roles),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_'),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_class WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_attribute WHERE attrelid >= 16384 AND attnum > 0),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_index WHERE indexrelid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_attrdef WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_constraint WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_proc WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_type WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_enum WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_trigger WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_policy WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_rewrite WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_sequence WHERE seqrelid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_inherits WHERE inhrelid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_statistic_ext WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_extension),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_default_acl),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_description
   WHERE objoid >= 16384 OR classoid IN ('pg_catalog.pg_namespace'::pg_catalog.regclass, 'pg_catalog.pg_extension'::pg_catalog.regclass)),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_collation WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_opclass WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_language),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_operator WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_ts_config WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_depend
   WHERE (classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND objid >= 16384 AND deptype IN ('a', 'i'))
      OR refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass)
))
