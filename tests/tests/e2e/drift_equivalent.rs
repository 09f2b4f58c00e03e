//! No false drift from a restore's renderings (issue 13): PostgreSQL's deparsed text is not
//! always a fixed point of parse + deparse, so a `pg_dump -Fc | pg_restore` renders some
//! definitions differently with nothing changed (`common::snapshot::equivalent` lists the
//! two forms a probe of every place an expression is rendered found). The gate proves such a
//! database unchanged by equivalence (`snapshot_proof` `"equivalent"`), says so in
//! `migrate status` and its warnings, and `migrate snapshot` records the live renderings so
//! that the cheap fingerprint proof returns. A hand change to one of these expressions is
//! still drift, named.

use std::collections::BTreeMap;

use common::snapshot::capture::{parse_entries, Entry};
use common::snapshot::equivalent::equivalent;
use common::snapshot::store::capture_live;
use serde_json::Value;

use crate::drift::dump_and_restore;
use crate::support::pty::Pty;
use crate::support::{Outcome, Project, Tool};

/// The issue's minimal case: a varchar `IN` list and a `BETWEEN` inside an `AND`.
const MINIMAL: &str = "CREATE TABLE public.t (v varchar(10), n int, \
    CONSTRAINT t_v CHECK (v IN ('a', 'b')), \
    CONSTRAINT t_n CHECK (n BETWEEN 1 AND 9 AND n <> 5));\n";

/// Both forms in every place the probe found them: table and domain constraints, an
/// exclusion constraint's predicate, a partition's constraint, column and domain defaults, a
/// function argument's default, a generated column, index predicates and expressions,
/// policies, trigger conditions, rules, views, materialized views, `RETURN` and
/// `BEGIN ATOMIC` bodies of functions and procedures; `IN` lists (`NOT IN`, with a column,
/// of rows), `BETWEEN` (`NOT BETWEEN`, under `OR`), `numeric = ANY (ARRAY[1, 2])` (flat and
/// two-dimensional), implicit array casts in `CASE` and `COALESCE`, and a cast of a cast
/// that takes two restores to settle.
const FORMS: &str = r#"
CREATE DOMAIN public.code AS varchar(10) CONSTRAINT code_in CHECK (VALUE IN ('a', 'b'));
CREATE DOMAIN public.flag AS boolean DEFAULT ('a'::varchar IN ('a', 'b'));
CREATE TABLE public.t (
    id integer PRIMARY KEY,
    v varchar(10),
    vu varchar,
    n integer,
    nu numeric,
    va varchar[],
    is_ab boolean GENERATED ALWAYS AS (v IN ('a', 'b') AND n BETWEEN 1 AND 9 AND n <> 5) STORED,
    ok boolean DEFAULT (1 BETWEEN 0 AND 2 AND true),
    CONSTRAINT t_v CHECK (v IN ('a', 'b')),
    CONSTRAINT t_n CHECK (n BETWEEN 1 AND 9 AND n <> 5),
    CONSTRAINT t_not_in CHECK (v NOT IN ('x', 'y') OR n NOT BETWEEN 3 AND 4 OR n IS NULL),
    CONSTRAINT t_rows CHECK ((n, v) IN ((1, 'a'), (2, 'b')) OR v IN ('c', vu)),
    CONSTRAINT t_any CHECK (nu = ANY (ARRAY[1, 2]) AND nu = ANY (ARRAY[ARRAY[1, 2], ARRAY[3, 4]])),
    CONSTRAINT t_case CHECK ((CASE WHEN n > 0 THEN ARRAY['a'] ELSE va END) <> '{}' AND COALESCE(va, ARRAY['b']) <> '{}'),
    CONSTRAINT t_nested CHECK (nu = ANY (ARRAY[1, 2]::bigint[]::int[])),
    CONSTRAINT t_excl EXCLUDE USING btree (id WITH =) WHERE (v IN ('a', 'b') AND n BETWEEN 1 AND 9 AND n <> 5)
);
CREATE INDEX t_partial ON public.t (id) WHERE v IN ('a', 'b') AND n BETWEEN 1 AND 9 AND n <> 5;
CREATE INDEX t_expr ON public.t ((v IN ('a', 'b')));
ALTER TABLE public.t ENABLE ROW LEVEL SECURITY;
CREATE POLICY t_mine ON public.t USING (v IN ('a', 'b') AND n BETWEEN 1 AND 9 AND n <> 5);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t_touch BEFORE UPDATE ON public.t FOR EACH ROW
    WHEN (NEW.v IN ('a', 'b') AND NEW.n BETWEEN 1 AND 9 AND NEW.n <> 5) EXECUTE FUNCTION public.touch();
CREATE TABLE public.log (v varchar(10), n integer);
CREATE RULE t_log AS ON UPDATE TO public.t WHERE new.v IN ('a', 'b') AND new.n BETWEEN 1 AND 9 AND new.n <> 5
    DO ALSO INSERT INTO public.log VALUES (new.v, new.n);
CREATE VIEW public.t_ab AS
    SELECT t.id, t.n BETWEEN 1 AND 9 AND t.n <> 5 AS mid FROM public.t WHERE t.v IN ('a', 'b');
CREATE MATERIALIZED VIEW public.t_counts AS
    SELECT t.v, count(*) FILTER (WHERE t.n BETWEEN 1 AND 9 AND t.n <> 5) AS c
    FROM public.t WHERE t.v IN ('a', 'b') GROUP BY t.v;
CREATE FUNCTION public.is_ab(x varchar, m integer DEFAULT 0, f boolean DEFAULT ('a'::varchar IN ('a', 'b')))
    RETURNS boolean LANGUAGE sql IMMUTABLE RETURN x IN ('a', 'b') AND m BETWEEN 0 AND 9 AND m <> 5;
CREATE FUNCTION public.ab_ids() RETURNS SETOF integer LANGUAGE sql STABLE
    BEGIN ATOMIC SELECT t.id FROM public.t WHERE t.v IN ('a', 'b') AND t.n BETWEEN 1 AND 9 AND t.n <> 5; END;
CREATE PROCEDURE public.log_ab(x varchar) LANGUAGE sql
    BEGIN ATOMIC INSERT INTO public.log (v) SELECT x WHERE x IN ('a', 'b'); END;
CREATE TABLE public.part (v varchar(10), n integer) PARTITION BY LIST (v);
CREATE TABLE public.part_ab PARTITION OF public.part
    (CONSTRAINT part_ab_n CHECK (n BETWEEN 1 AND 9 AND n <> 5)) FOR VALUES IN ('a', 'b');
"#;

/// The entries of [`FORMS`] that a restore renders differently: `(kind, object)`.
const RERENDERED: &[(&str, &str)] = &[
    ("column", "public.t.is_ab"),
    ("column", "public.t.ok"),
    ("constraint", "public.code.code_in"),
    ("constraint", "public.part_ab.part_ab_n"),
    ("constraint", "public.t.t_any"),
    ("constraint", "public.t.t_case"),
    ("constraint", "public.t.t_excl"),
    ("constraint", "public.t.t_n"),
    ("constraint", "public.t.t_nested"),
    ("constraint", "public.t.t_not_in"),
    ("constraint", "public.t.t_rows"),
    ("constraint", "public.t.t_v"),
    ("domain", "public.flag"),
    ("function", "public.ab_ids()"),
    (
        "function",
        "public.is_ab(character varying,integer,boolean)",
    ),
    ("index", "public.t_excl"),
    ("index", "public.t_expr"),
    ("index", "public.t_partial"),
    ("materialized view", "public.t_counts"),
    ("policy", "public.t.t_mine"),
    ("procedure", "public.log_ab(character varying)"),
    ("rule", "public.t.t_log"),
    ("trigger", "public.t.t_touch"),
    ("view", "public.t_ab"),
];

/// A project with `sql` applied by `migrate` as its one file.
fn migrated(sql: &str) -> Project {
    let p = Project::start();
    p.write("001_forms.sql", sql);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p
}

/// `schema-check --format json --strict`.
fn gate(p: &Project) -> Outcome {
    p.tool(Tool::SchemaCheck, &["--format", "json", "--strict"])
        .run()
}

/// Panics unless the gate finds no drift; returns its JSON document.
#[track_caller]
fn assert_no_drift(p: &Project, after: &str) -> Value {
    let out = gate(p);
    let doc = out.json();
    assert!(
        out.code == 0 && doc["compatible"] == true && doc["drift"] == serde_json::json!([]),
        "false drift after {after}: exit {}\n{doc:#}",
        out.code
    );
    doc
}

/// `(kind, object) -> definition`, recorded (the newest snapshot) and live.
fn recorded_and_live(p: &Project) -> [BTreeMap<(String, String), String>; 2] {
    let keyed = |entries: Vec<Entry>| {
        entries
            .into_iter()
            .map(|e| ((e.kind.clone(), e.object()), e.definition))
            .collect()
    };
    let recorded = p
        .scalar(
            "SELECT entries::text FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1",
        )
        .expect("a recorded snapshot");
    let live = capture_live(&mut p.cluster.admin_db("dreichor_dev")).expect("the live entries");
    [
        keyed(parse_entries(&recorded).expect("entries")),
        keyed(live),
    ]
}

/// The minimal case: after a restore the gate passes by equivalence (it failed naming t_v
/// and t_n before); a real change to either expression after the restore is drift, named.
#[test]
fn a_restored_in_list_and_between_are_no_drift_but_a_changed_one_is() {
    let p = migrated(MINIMAL);
    assert_eq!(
        assert_no_drift(&p, "migrate")["snapshot_proof"],
        "fingerprint"
    );
    dump_and_restore(&p);
    let doc = assert_no_drift(&p, "pg_dump -Fc | pg_restore");
    assert_eq!(doc["snapshot_proof"], "equivalent", "{doc:#}");
    let [recorded, live] = recorded_and_live(&p);
    for name in ["public.t.t_v", "public.t.t_n"] {
        let key = ("constraint".to_string(), name.to_string());
        assert_ne!(recorded[&key], live[&key], "{name} rendered the same");
    }

    p.sql(
        "ALTER TABLE public.t DROP CONSTRAINT t_v, ADD CONSTRAINT t_v CHECK (v IN ('a', 'c'));
         ALTER TABLE public.t DROP CONSTRAINT t_n, ADD CONSTRAINT t_n CHECK (n BETWEEN 1 AND 8 AND n <> 5)",
    );
    let out = gate(&p);
    out.assert_code(1);
    let drift = out.json()["drift"].clone();
    let named: Vec<(&str, &str)> = drift
        .as_array()
        .expect("a drift array")
        .iter()
        .map(|d| {
            (
                d["object"].as_str().unwrap_or(""),
                d["change"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        named,
        [("public.t.t_n", "changed"), ("public.t.t_v", "changed")],
        "{drift:#}"
    );
    let text = p.tool(Tool::SchemaCheck, &[]).run();
    text.assert_code(1);
    for line in [
        "drift: table public.t: constraint t_v: changed outside migrations",
        "drift: table public.t: constraint t_n: changed outside migrations",
        "'c'::character varying",
        "(n <= 8)",
    ] {
        assert!(
            text.stdout.contains(line),
            "{line:?} not in:\n{}",
            text.stdout
        );
    }
}

/// Every form, every place: each listed entry renders differently after a restore and is
/// an equivalent rendering; the gate, its text, `migrate status`, `migrate` (nothing to
/// apply) and the textfile all say "no drift", after a second restore too (the cast of a
/// cast takes two to settle). `migrate snapshot` records the live renderings, saying what
/// they are, and the fingerprint proves the next check.
#[test]
fn every_rerendered_form_is_equivalent_after_restores() {
    let p = migrated(FORMS);
    assert_eq!(
        assert_no_drift(&p, "migrate")["snapshot_proof"],
        "fingerprint"
    );
    for restore in ["first", "second"] {
        dump_and_restore(&p);
        let doc = assert_no_drift(&p, &format!("the {restore} restore"));
        assert_eq!(doc["snapshot_proof"], "equivalent", "{doc:#}");
        let [recorded, live] = recorded_and_live(&p);
        let mut failures = Vec::new();
        for (kind, object) in RERENDERED {
            let key = (kind.to_string(), object.to_string());
            match (recorded.get(&key), live.get(&key)) {
                (Some(r), Some(l)) if r != l && equivalent(kind, r, l) => {}
                (Some(r), Some(l)) if r == l => failures.push(format!(
                    "{kind} {object}: renders the same (a vacuous case)"
                )),
                other => failures.push(format!("{kind} {object}: {other:?}")),
            }
        }
        let differing = recorded
            .iter()
            .filter(|(k, v)| live.get(*k) != Some(*v))
            .count();
        assert!(
            failures.is_empty() && differing == RERENDERED.len(),
            "after the {restore} restore, {differing} entries differ:\n{}",
            failures.join("\n")
        );
        let warning = doc["warnings"].to_string();
        assert!(
            warning.contains(&format!(
                "{} definitions in dreichor_dev render differently from the snapshot but mean the same",
                RERENDERED.len()
            )),
            "{warning}"
        );
    }

    let text = p.tool(Tool::SchemaCheck, &[]).run();
    text.assert_code(0);
    assert!(
        text.stdout.starts_with("compatible: dreichor_dev")
            && text
                .stdout
                .contains("render differently from the snapshot but mean the same")
            && !text.stdout.contains("drift:"),
        "{}",
        text.stdout
    );
    let metrics_dir = tempfile::tempdir().expect("a directory for the textfile");
    let prom = metrics_dir.path().join("dreichor_schema.prom");
    p.tool(Tool::SchemaCheck, &[])
        .arg("--textfile")
        .arg(&prom)
        .run()
        .assert_code(0);
    let metrics = std::fs::read_to_string(&prom).expect("the textfile");
    for line in [
        "dreichor_schema_compatible{database=\"dreichor_dev\"} 1",
        "dreichor_schema_drift_objects{database=\"dreichor_dev\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    let status = p.tool(Tool::Migrate, &["status"]).run();
    status.assert_code(0);
    assert!(
        status
            .stdout
            .contains("schema: matches the snapshot (digest ")
            && status
                .stdout
                .contains(&format!("up to {} equivalent renderings", RERENDERED.len())),
        "{}",
        status.stdout
    );
    let status = p.tool(Tool::Migrate, &["status", "--format", "json"]).run();
    assert_eq!(status.json()["snapshot"], "same", "{}", status.stdout);
    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    assert!(!run.stderr.contains("drift"), "{}", run.stderr);

    let mut pty = Pty::spawn(p.tool(
        Tool::Migrate,
        &["snapshot", "--reason", "renderings after a restore"],
    ));
    pty.expect(&format!(
        "dreichor_dev: no drift; {} definitions render differently from the snapshot but mean the same",
        RERENDERED.len()
    ));
    pty.expect("equivalent: table public.t: constraint t_v");
    pty.expect("Type the database name (dreichor_dev) to accept");
    pty.answer("dreichor_dev");
    pty.finish().assert_code(0).assert_contains(&format!(
        "dreichor_dev: no drift; recorded {} equivalent renderings as the server renders them now",
        RERENDERED.len()
    ));
    let doc = assert_no_drift(&p, "migrate snapshot");
    assert_eq!(doc["snapshot_proof"], "fingerprint", "{doc:#}");
    assert_eq!(doc["warnings"], serde_json::json!([]), "{doc:#}");
}
