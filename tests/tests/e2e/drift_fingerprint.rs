//! The gate's cheap path (SPEC.md, "Schema snapshot and drift"): equal catalog fingerprints
//! end the comparison without rendering anything, so the fingerprint must change with every
//! catalog row that a rendering of the snapshot shows. Each change below alters only such a
//! row, so nothing but the fingerprint can notice it; and a temporary table, which the
//! snapshot never shows, must not cost the cheap path for good.

use serde_json::Value;

use crate::support::{Outcome, Project, Tool};

const BASE: &str = "
CREATE COLLATION public.bytewise FROM \"C\";
CREATE TABLE public.customer (name text COLLATE public.bytewise PRIMARY KEY);
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
";

fn gate(p: &Project) -> Outcome {
    p.tool(Tool::SchemaCheck, &["--format", "json"]).run()
}

/// Panics unless the gate reports exactly one drifted object, `(kind, object)`, changed.
#[track_caller]
fn assert_only_drift(p: &Project, what: &str, kind: &str, object: &str) {
    let out = gate(p);
    let doc = out.json();
    let drift = doc["drift"].as_array().cloned().unwrap_or_default();
    let named: Vec<(Value, Value, Value)> = drift
        .iter()
        .map(|d| (d["kind"].clone(), d["object"].clone(), d["change"].clone()))
        .collect();
    assert_eq!(
        (out.code, named),
        (1, vec![(kind.into(), object.into(), "changed".into())]),
        "{what} went unseen or misnamed:\n{doc:#}"
    );
}

/// Panics unless the gate finds no drift; returns its proof.
#[track_caller]
fn assert_no_drift(p: &Project, after: &str) -> String {
    let out = gate(p);
    let doc = out.json();
    assert_eq!(out.code, 0, "false drift after {after}:\n{doc:#}");
    doc["snapshot_proof"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_change_only_a_rendering_shows_is_drift_on_the_cheap_path_too() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(assert_no_drift(&p, "migrate"), "fingerprint");

    // A collation renamed: the column's definition names it.
    p.sql("ALTER COLLATION public.bytewise RENAME TO bytes");
    assert_only_drift(&p, "a renamed collation", "column", "public.customer.name");
    p.sql("ALTER COLLATION public.bytes RENAME TO bytewise");
    assert_no_drift(&p, "the collation's name restored");

    // A comment on plpgsql, the extension every database has (OID below 16384).
    p.sql("COMMENT ON EXTENSION plpgsql IS 'by hand'");
    assert_only_drift(&p, "a comment on plpgsql", "comment", "extension plpgsql");
    p.sql("COMMENT ON EXTENSION plpgsql IS 'PL/pgSQL procedural language'");
    assert_no_drift(&p, "plpgsql's comment restored");

    // The language renamed: every plpgsql function's definition names it.
    p.sql("ALTER LANGUAGE plpgsql RENAME TO plpgsql_renamed");
    assert_only_drift(&p, "a renamed language", "function", "public.touch()");
    p.sql("ALTER LANGUAGE plpgsql_renamed RENAME TO plpgsql");
    assert_no_drift(&p, "the language's name restored");
}

#[test]
fn a_temporary_table_does_not_cost_the_cheap_path_for_good() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(assert_no_drift(&p, "migrate"), "fingerprint");
    // One session: its temporary table dropped, its temporary schema stays for good.
    p.sql("CREATE TEMPORARY TABLE scratch (id int); INSERT INTO scratch VALUES (1); DROP TABLE scratch");
    assert_eq!(
        assert_no_drift(&p, "a session's temporary table"),
        "fingerprint",
        "the temporary schema a session left behind changed the fingerprint"
    );
}

/// The gate reads the second half of the fingerprint on a second session, at the same time
/// as the first session reads everything else. A role limited to one connection still gets
/// its verdict on the cheap path, whichever of the two takes the slot first; and the gate
/// leaves no session behind.
#[test]
fn a_role_limited_to_one_connection_still_gets_the_cheap_path() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p.sql("ALTER ROLE dreichor_dev CONNECTION LIMIT 1");
    for run in 1..=10 {
        assert_eq!(
            assert_no_drift(&p, &format!("gate run {run} with CONNECTION LIMIT 1")),
            "fingerprint"
        );
    }
    p.sql("ALTER ROLE dreichor_dev CONNECTION LIMIT -1");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let left = p.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dreichor-schema-check'",
        );
        if left.as_deref() == Some("0") {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the gate left {left:?} sessions behind"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
