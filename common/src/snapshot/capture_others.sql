-- Functions, types, triggers, extensions, default privileges; every object's owner,
-- privileges and comment.
SELECT fn.kind AS kind, '' AS parent, fn.name AS name, 0 AS pos,
       CASE WHEN fn.prokind = 'a'
            THEN 'AGGREGATE RETURNS ' || pg_catalog.pg_get_function_result(fn.oid)
                 || (SELECT ' SFUNC ' || ag.aggtransfn::pg_catalog.regprocedure::text
                            || ' STYPE ' || pg_catalog.format_type(ag.aggtranstype, NULL)
                            || coalesce(' FINALFUNC ' || nullif(ag.aggfinalfn, 0)::pg_catalog.regprocedure::text, '')
                            || coalesce(' INITCOND ' || ag.agginitval, '')
                     FROM pg_catalog.pg_aggregate ag WHERE ag.aggfnoid = fn.oid)
            ELSE pg_catalog.pg_get_functiondef(fn.oid) END AS definition
FROM fn
UNION ALL
SELECT typ.kind, '', typ.name, 0,
       CASE typ.typtype
         WHEN 'e' THEN (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                        FROM pg_catalog.pg_enum e WHERE e.enumtypid = typ.oid)
         WHEN 'd' THEN (SELECT pg_catalog.format_type(t.typbasetype, t.typtypmod)
                               || CASE WHEN t.typcollation <> bt.typcollation
                                       THEN ' COLLATE ' || (SELECT pg_catalog.quote_ident(co.collname) FROM pg_catalog.pg_collation co WHERE co.oid = t.typcollation)
                                       ELSE '' END
                               || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                               || coalesce(' DEFAULT ' || t.typdefault, '')
                        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_type bt ON bt.oid = t.typbasetype
                        WHERE t.oid = typ.oid)
         WHEN 'c' THEN (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname) || ' '
                                   || pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                        FROM pg_catalog.pg_attribute a WHERE a.attrelid = typ.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
         WHEN 'r' THEN (SELECT 'SUBTYPE ' || pg_catalog.format_type(r.rngsubtype, NULL)
                               || coalesce(' SUBTYPE_DIFF ' || nullif(r.rngsubdiff, 0)::pg_catalog.regproc::text, '')
                        FROM pg_catalog.pg_range r WHERE r.rngtypid = typ.oid)
         ELSE (SELECT 'INPUT ' || t.typinput::text || ' OUTPUT ' || t.typoutput::text || ' LENGTH ' || t.typlen
               FROM pg_catalog.pg_type t WHERE t.oid = typ.oid)
       END
FROM typ
UNION ALL
-- Triggers here rather than with the other members of relations: it balances the two halves.
SELECT 'trigger', trg.parent, trg.name, 0, trg.definition FROM trg
UNION ALL
SELECT 'extension', '', pg_catalog.quote_ident(e.extname), 0,
       'VERSION ' || pg_catalog.quote_literal(e.extversion) || ' SCHEMA ' || pg_catalog.quote_ident(n.nspname)
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
UNION ALL
SELECT 'default privileges', '',
       'for role ' || pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(da.defaclrole))
       || coalesce(' in schema ' || (SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_namespace n WHERE n.oid = da.defaclnamespace), '')
       || ' on ' || CASE da.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                                          WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' END,
       0,
       (SELECT pg_catalog.string_agg(x::text, ', ' ORDER BY x::text) FROM pg_catalog.unnest(da.defaclacl) AS x)
FROM pg_catalog.pg_default_acl da
UNION ALL
SELECT 'owner', '', obj.label, 0, pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(obj.owner))
FROM obj WHERE obj.owner IS NOT NULL
UNION ALL
SELECT 'privileges', '', obj.label, 0,
       CASE WHEN pg_catalog.cardinality(obj.acl) = 1 THEN obj.acl[1]::text
            ELSE (SELECT pg_catalog.string_agg(x::text, ', ' ORDER BY x::text) FROM pg_catalog.unnest(obj.acl) AS x) END
FROM obj WHERE obj.acl IS NOT NULL
UNION ALL
SELECT 'comment', '', obj.label, 0, d.description
FROM obj JOIN pg_catalog.pg_description d
  ON d.objoid = obj.objid AND d.classoid = obj.classid AND d.objsubid = obj.subid
-- Only the comments that can belong to an object above: user objects (FirstNormalObjectId,
-- 16384, and up), schemas and extensions (public and plpgsql come with the database), so
-- that the join does not hash the comments of every catalog object.
WHERE d.objoid >= 16384
   OR d.classoid IN ('pg_catalog.pg_namespace'::pg_catalog.regclass, 'pg_catalog.pg_extension'::pg_catalog.regclass)
