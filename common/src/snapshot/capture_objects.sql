-- The capture's objects that only capture_others.sql names (a WITH clause continued after
-- capture_ctes.sql): functions, and every object that can have an owner, privileges or a
-- comment. Kept apart so that the half without them does not parse and plan them.
,
fn AS (
    SELECT p.oid, p.proowner, p.proacl, p.prokind, p.oid::pg_catalog.regprocedure::text AS name,
           CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END AS kind
    FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace
    WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                      WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                        AND d.objid = p.oid AND d.deptype = 'e')
),
-- Every object that can have an owner, privileges or a comment: (class, oid, subid, label).
obj AS (
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass AS classid, ns.oid AS objid, 0 AS subid,
           'schema ' || pg_catalog.quote_ident(ns.nspname) AS label,
           ns.nspowner AS owner, coalesce(ns.nspacl, pg_catalog.acldefault('n', ns.nspowner)) AS acl
    FROM ns
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, rel.oid, 0, rel.kind || ' ' || rel.name,
           CASE WHEN rel.relkind IN ('i', 'I') THEN NULL ELSE rel.relowner END,
           CASE WHEN rel.relkind IN ('i', 'I') THEN NULL
                ELSE coalesce(rel.relacl, pg_catalog.acldefault(CASE WHEN rel.relkind = 'S' THEN 's'::"char" ELSE 'r'::"char" END, rel.relowner)) END
    FROM rel
    UNION ALL
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, col.relid, col.attnum, 'column ' || col.parent || '.' || col.name,
           NULL, CASE WHEN col.attacl = '{}' THEN NULL ELSE col.attacl END
    FROM col
    UNION ALL
    -- A composite type's attributes, for their comments (COMMENT ON COLUMN type.attribute).
    SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, a.attrelid, a.attnum,
           'column ' || typ.name || '.' || pg_catalog.quote_ident(a.attname), NULL, NULL
    FROM typ JOIN pg_catalog.pg_attribute a ON a.attrelid = typ.typrelid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE typ.typtype = 'c'
    UNION ALL
    SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, fn.oid, 0, fn.kind || ' ' || fn.name,
           fn.proowner, coalesce(fn.proacl, pg_catalog.acldefault('f', fn.proowner))
    FROM fn
    UNION ALL
    SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, typ.oid, 0, typ.kind || ' ' || typ.name,
           typ.typowner, coalesce(typ.typacl, pg_catalog.acldefault('T', typ.typowner))
    FROM typ
    UNION ALL
    SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, con.oid, 0, 'constraint ' || con.parent || '.' || con.name, NULL, NULL FROM con
    UNION ALL
    SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, trg.oid, 0, 'trigger ' || trg.parent || '.' || trg.name, NULL, NULL FROM trg
    UNION ALL
    SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, pol.oid, 0, 'policy ' || pol.parent || '.' || pol.name, NULL, NULL FROM pol
    UNION ALL
    SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, rul.oid, 0, 'rule ' || rul.parent || '.' || rul.name, NULL, NULL FROM rul
    UNION ALL
    SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, st.oid, 0, 'statistics ' || st.name, st.stxowner, NULL FROM st
    UNION ALL
    SELECT 'pg_catalog.pg_extension'::pg_catalog.regclass, e.oid, 0, 'extension ' || pg_catalog.quote_ident(e.extname), NULL, NULL
    FROM pg_catalog.pg_extension e
)
