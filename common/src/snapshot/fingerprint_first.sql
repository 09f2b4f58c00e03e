-- The first half of the fingerprint's values (see fingerprint.sql): roles, schemas,
-- relations, columns, indexes, defaults, constraints, functions, types.
  (SELECT pg_catalog.string_agg(oid || ':' || rolname, ',' ORDER BY oid) FROM pg_catalog.pg_roles),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_namespace WHERE nspname !~ '^pg_(toast_)?temp_'),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_class WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_attribute WHERE attrelid >= 16384 AND attnum > 0),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_index WHERE indexrelid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_attrdef WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_constraint WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_proc WHERE oid >= 16384),
  (SELECT count(*) || ':' || pg_catalog.sum(pg_catalog.hashtextextended(xmin::text, 0)) FROM pg_catalog.pg_type WHERE oid >= 16384)
