-- Schemas, relations and their members: columns, constraints, policies, rules, statistics.
SELECT 'schema' AS kind, '' AS parent, pg_catalog.quote_ident(ns.nspname) AS name, 0 AS pos, '' AS definition
FROM ns
UNION ALL
SELECT rel.kind, '', rel.name, 0, pg_catalog.ltrim(
       CASE rel.relkind
         WHEN 'v' THEN pg_catalog.pg_get_viewdef(rel.oid)
         WHEN 'm' THEN pg_catalog.pg_get_viewdef(rel.oid)
         WHEN 'S' THEN (SELECT 'AS ' || pg_catalog.format_type(s.seqtypid, NULL)
                          || ' START ' || s.seqstart || ' INCREMENT ' || s.seqincrement
                          || ' MINVALUE ' || s.seqmin || ' MAXVALUE ' || s.seqmax
                          || ' CACHE ' || s.seqcache || CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END
                        FROM pg_catalog.pg_sequence s WHERE s.seqrelid = rel.oid)
                       || coalesce((SELECT ' OWNED BY ' || d.refobjid::pg_catalog.regclass::text || '.'
                                           || pg_catalog.quote_ident(a.attname)
                                    FROM pg_catalog.pg_depend d
                                    JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                                    WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = rel.oid
                                      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                                      AND d.deptype IN ('a', 'i')), '')
         WHEN 'i' THEN pg_catalog.pg_get_indexdef(rel.oid)
         WHEN 'I' THEN pg_catalog.pg_get_indexdef(rel.oid)
         ELSE ''
       END
       || CASE WHEN NOT rel.indisvalid THEN ' (INVALID)' ELSE '' END
       || CASE WHEN rel.indisreplident THEN ' (REPLICA IDENTITY)' ELSE '' END
       || CASE WHEN rel.relpersistence = 'u' THEN ' UNLOGGED' ELSE '' END
       || CASE WHEN rel.relkind = 'p' THEN ' PARTITION BY ' || pg_catalog.pg_get_partkeydef(rel.oid) ELSE '' END
       -- A partition's parent and bounds; a partition index (attached to its partitioned
       -- table's index) has a parent but no bounds.
       || CASE WHEN rel.relispartition
               THEN ' PARTITION OF ' || (SELECT h.inhparent::pg_catalog.regclass::text FROM pg_catalog.pg_inherits h WHERE h.inhrelid = rel.oid)
                    || coalesce(' ' || pg_catalog.pg_get_expr(rel.relpartbound, rel.oid), '')
               ELSE coalesce(' INHERITS (' || inh.parents || ')', '') END
       || CASE WHEN rel.relkind IN ('r', 'p', 'm') AND rel.relam IS NOT NULL AND rel.relam <> 0
                    AND (SELECT am.amname FROM pg_catalog.pg_am am WHERE am.oid = rel.relam) <> 'heap'
               THEN ' USING ' || (SELECT am.amname FROM pg_catalog.pg_am am WHERE am.oid = rel.relam) ELSE '' END
       || coalesce(' WITH (' || pg_catalog.array_to_string(rel.reloptions, ', ') || ')', '')
       || CASE WHEN rel.relrowsecurity THEN ' ROW LEVEL SECURITY' ELSE '' END
       || CASE WHEN rel.relforcerowsecurity THEN ' FORCE ROW LEVEL SECURITY' ELSE '' END
       || CASE WHEN rel.relkind IN ('r', 'p', 'm') THEN
            CASE rel.relreplident WHEN 'n' THEN ' REPLICA IDENTITY NOTHING' WHEN 'f' THEN ' REPLICA IDENTITY FULL'
                                  WHEN 'i' THEN ' REPLICA IDENTITY USING INDEX' ELSE '' END
          ELSE '' END
       -- A materialized view's columns: what ALTER COLUMN set on them (see col).
       || coalesce(mvcol.settings, ''))
FROM rel LEFT JOIN inh ON inh.child = rel.oid AND NOT rel.relispartition
LEFT JOIN (SELECT col.relid, pg_catalog.string_agg(' COLUMN ' || col.name || col.settings, '' ORDER BY col.attnum) AS settings
           FROM col WHERE col.relkind = 'm' AND col.settings <> '' GROUP BY col.relid) mvcol ON mvcol.relid = rel.oid
UNION ALL
SELECT 'column', col.parent, col.name, col.attnum, col.definition || col.settings FROM col WHERE col.relkind IN ('r', 'p', 'f')
UNION ALL
SELECT 'constraint', con.parent, con.name, 0, con.definition FROM con
UNION ALL
SELECT 'policy', pol.parent, pol.name, 0, pol.definition FROM pol
UNION ALL
SELECT 'rule', rul.parent, rul.name, 0, rul.definition FROM rul
UNION ALL
SELECT 'statistics', '', st.name, 0, st.definition FROM st
