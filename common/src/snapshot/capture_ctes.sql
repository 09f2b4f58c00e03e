-- The canonical snapshot of the environment's schema, first part: the objects every part
-- names (a WITH clause). Followed by capture_relations.sql, by capture_objects.sql (more of
-- the WITH clause) and capture_others.sql, or by all three (the two selects joined by UNION
-- ALL), it is one query of rows (kind, parent, name, pos, definition), unordered;
-- `common::snapshot::capture` orders them, writes the JSON and hashes it. Run with
-- search_path = pg_catalog, pg_temp so that every name the server renders is schema-qualified.
--
-- Independent of OIDs, creation order and physical layout: objects are named by qualified
-- name (functions with their argument types), definitions come from the server's own deparse
-- functions, column order is kept (pos) but not attnum's gaps, access-control lists are
-- sorted and a NULL list is rendered as the default it stands for. Excluded: pg_catalog,
-- information_schema, TOAST and temporary schemas; extension members; the tools' own tables;
-- collected statistics (ANALYZE), sizes, sequence values, CLUSTER marks, matview population.
WITH
ns AS (
    SELECT n.oid, n.nspname, n.nspowner, n.nspacl
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname !~ '^pg_(toast_)?temp_'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_namespace'::pg_catalog.regclass
                        AND d.objid = n.oid AND d.deptype = 'e')
),
-- The tools' own two tables, each looked up once (a function in a scan's filter would run for
-- every row).
tool_table AS MATERIALIZED (
    SELECT t.oid::pg_catalog.oid AS oid
    FROM (VALUES (pg_catalog.to_regclass('public.dreichor_schema_migrations')),
                 (pg_catalog.to_regclass('public.dreichor_schema_snapshot'))) AS t (oid)
    WHERE t.oid IS NOT NULL
),
-- Those tables, their indexes and the sequences they own.
tools AS (
    SELECT tt.oid FROM tool_table tt
    UNION ALL
    SELECT i.indexrelid FROM pg_catalog.pg_index i
    WHERE i.indrelid IN (SELECT tt.oid FROM tool_table tt)
    UNION ALL
    SELECT d.objid FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND d.refobjid IN (SELECT tt.oid FROM tool_table tt)
      AND d.deptype IN ('a', 'i')
),
rel AS (
    SELECT c.oid, c.relkind, c.relowner, c.relacl, c.oid::pg_catalog.regclass::text AS name,
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
                WHEN 'S' THEN 'sequence' WHEN 'i' THEN 'index' WHEN 'I' THEN 'index' END AS kind,
           c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
           c.relreplident, c.relispartition, c.relpartbound, c.relam,
           ix.indisvalid, ix.indisreplident
    FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_index ix ON ix.indexrelid = c.oid
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'i', 'I')
      AND c.oid NOT IN (SELECT oid FROM tools)
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
                        AND d.objid = c.oid AND d.deptype = 'e')
),
typ AS (
    SELECT t.oid, t.typtype, t.typowner, t.typacl, t.typrelid,
           pg_catalog.format_type(t.oid, NULL) AS name,
           CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite type'
                WHEN 'r' THEN 'range type' ELSE 'type' END AS kind
    FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd', 'r', 'b')
           OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c'))
      -- Array types come with their element type, and are named after it.
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type el WHERE el.typarray = t.oid)
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass
                        AND d.objid = t.oid AND d.deptype = 'e')
),
-- Columns of tables and foreign tables, and of views and materialized views (a view's columns
-- are its definition: only their comments and privileges are read from here, and a
-- materialized view's settings, which its definition shows).
col AS (
    SELECT rel.oid AS relid, rel.relkind, rel.name AS parent, a.attnum, a.attname, a.attacl,
           pg_catalog.quote_ident(a.attname) AS name,
           CASE WHEN rel.relkind IN ('r', 'p', 'f') THEN
           pg_catalog.format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attcollation <> t.typcollation
                   THEN ' COLLATE ' || (SELECT pg_catalog.quote_ident(co.collname) FROM pg_catalog.pg_collation co WHERE co.oid = a.attcollation)
                   ELSE '' END
           || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
           || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
                   WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid)
                   ELSE '' END
           || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                                 WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
           END AS definition,
           -- What ALTER COLUMN sets besides the type: statistics target, storage (when not the
           -- type's), compression, and the attribute options a role can set (n_distinct,
           -- n_distinct_inherited: ALTER COLUMN ... SET (...)). Only those: a server may keep
           -- options of its own in attoptions (seen: a per-column version, pg_attver=N, that
           -- every ALTER TABLE renews), which no migration wrote. A materialized view's columns
           -- take them too (ALTER MATERIALIZED VIEW ... ALTER COLUMN); a view's cannot.
           CASE WHEN coalesce(a.attstattarget, -1) >= 0 THEN ' STATISTICS ' || a.attstattarget ELSE '' END
           || CASE WHEN a.attstorage <> t.typstorage
                   THEN ' STORAGE ' || CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL'
                                                         WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END
                   ELSE '' END
           || CASE a.attcompression WHEN 'p' THEN ' COMPRESSION pglz' WHEN 'l' THEN ' COMPRESSION lz4' ELSE '' END
           || CASE WHEN a.attoptions::text LIKE '%n\_distinct%'
                   THEN ' WITH (' || pg_catalog.array_to_string(ARRAY(
                            SELECT o FROM pg_catalog.unnest(a.attoptions) AS o
                            WHERE o LIKE 'n\_distinct=%' OR o LIKE 'n\_distinct\_inherited=%'), ', ') || ')'
                   ELSE '' END
           AS settings
    FROM rel
    JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    WHERE rel.relkind IN ('r', 'p', 'f', 'v', 'm')
),
-- Extended statistics objects (CREATE STATISTICS) on the tables above.
st AS (
    SELECT s.oid, s.stxowner,
           pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(s.stxname) AS name,
           pg_catalog.pg_get_statisticsobjdef(s.oid)
           || CASE WHEN coalesce(s.stxstattarget, -1) >= 0 THEN ' STATISTICS ' || s.stxstattarget ELSE '' END
           AS definition
    FROM pg_catalog.pg_statistic_ext s JOIN ns n ON n.oid = s.stxnamespace
    WHERE s.stxrelid IN (SELECT rel.oid FROM rel)
),
con AS (
    SELECT co.oid, pg_catalog.quote_ident(co.conname) AS name,
           coalesce(rel.name, typ.name) AS parent,
           pg_catalog.pg_get_constraintdef(co.oid) AS definition
    FROM pg_catalog.pg_constraint co
    LEFT JOIN rel ON rel.oid = co.conrelid AND co.conrelid <> 0
    LEFT JOIN typ ON typ.oid = co.contypid AND co.contypid <> 0
    WHERE rel.oid IS NOT NULL OR typ.oid IS NOT NULL
),
trg AS (
    SELECT tg.oid, rel.name AS parent, pg_catalog.quote_ident(tg.tgname) AS name,
           pg_catalog.pg_get_triggerdef(tg.oid)
           || CASE tg.tgenabled WHEN 'O' THEN '' WHEN 'D' THEN ' (DISABLED)'
                                WHEN 'R' THEN ' (ENABLED REPLICA)' WHEN 'A' THEN ' (ENABLED ALWAYS)' END
           AS definition
    FROM pg_catalog.pg_trigger tg JOIN rel ON rel.oid = tg.tgrelid
    WHERE NOT tg.tgisinternal
),
pol AS (
    SELECT po.oid, rel.name AS parent, pg_catalog.quote_ident(po.polname) AS name,
           CASE WHEN po.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END
           || ' FOR ' || CASE po.polcmd WHEN '*' THEN 'ALL' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                        WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END
           -- The roles in name order: the catalog keeps them as written, and pg_dump writes
           -- them in another order (a restore reorders them, with nothing changed).
           || ' TO ' || (SELECT pg_catalog.string_agg(r.name, ', ' ORDER BY r.name COLLATE "C")
                         FROM (SELECT CASE WHEN x = 0 THEN 'PUBLIC'
                                           ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(x)) END AS name
                               FROM pg_catalog.unnest(po.polroles) AS x) r)
           || coalesce(' USING (' || pg_catalog.pg_get_expr(po.polqual, po.polrelid) || ')', '')
           || coalesce(' WITH CHECK (' || pg_catalog.pg_get_expr(po.polwithcheck, po.polrelid) || ')', '')
           AS definition
    FROM pg_catalog.pg_policy po JOIN rel ON rel.oid = po.polrelid
),
rul AS (
    SELECT ru.oid, rel.name AS parent, pg_catalog.quote_ident(ru.rulename) AS name,
           pg_catalog.pg_get_ruledef(ru.oid)
           || CASE ru.ev_enabled WHEN 'D' THEN ' (DISABLED)' WHEN 'R' THEN ' (ENABLED REPLICA)'
                                 WHEN 'A' THEN ' (ENABLED ALWAYS)' ELSE '' END AS definition
    FROM pg_catalog.pg_rewrite ru JOIN rel ON rel.oid = ru.ev_class
    WHERE ru.rulename <> '_RETURN'
),
-- The parents of each table that inherits (a partition's parent is rendered as PARTITION OF):
-- one ordered aggregate per child, rather than one per relation (each is a sort).
inh AS (
    SELECT h.inhrelid AS child,
           pg_catalog.string_agg(h.inhparent::pg_catalog.regclass::text, ', ' ORDER BY h.inhseqno) AS parents
    FROM pg_catalog.pg_inherits h
    GROUP BY h.inhrelid
)
