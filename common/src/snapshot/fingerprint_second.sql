-- The second half of the fingerprint's values (see fingerprint.sql).
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
