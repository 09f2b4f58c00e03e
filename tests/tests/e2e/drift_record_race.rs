//! A hand change committed while `migrate` records the schema snapshot (SPEC.md, "Schema
//! snapshot and drift"): the migration lock does not stop it, so the snapshot may miss it;
//! then the recorded fingerprint must not count it either, or every later gate would prove
//! "unchanged" on the cheap path and never see the change.

use std::time::Duration;

use crate::support::{Project, Tool};

const BASE: &str = "
CREATE TABLE public.invoice (id bigint PRIMARY KEY, amount numeric NOT NULL);
CREATE VIEW public.invoice_amount AS SELECT id, amount FROM public.invoice;
CREATE FUNCTION public.double_it(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS $$ SELECT x * 2 $$;
";

/// Deterministic: a session holds `public.invoice` locked, so the half of the capture that
/// renders the view over it (the relations' half) waits for it, while the other half (the
/// functions' and comments') has finished; a comment on the function is committed meanwhile,
/// then the lock is released. The comment is in neither half, so the gate must report it.
#[test]
fn a_hand_change_while_the_snapshot_renders_is_drift_afterwards() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);

    let mut holder = p.cluster.admin_db("dreichor_dev");
    holder
        .batch_execute("BEGIN; LOCK TABLE public.invoice IN ACCESS EXCLUSIVE MODE")
        .expect("lock the table");
    p.write("002_note.sql", "CREATE TABLE public.note (body text);\n");
    let mut run = p.tool(Tool::Migrate, &[]).spawn();
    run.wait_for_stderr("applied  002_note", Duration::from_secs(30));

    // The capture waits for the lock: a session of the run's waiting on a relation lock.
    p.query_waiting_for_a_lock(&run, Duration::from_secs(30));
    p.sql("COMMENT ON FUNCTION public.double_it(integer) IS 'by hand'");
    holder.batch_execute("ROLLBACK").expect("release the lock");
    let out = run.wait();
    out.assert_code(0);
    out.assert_stderr("recorded the schema snapshot");

    let gate = p.tool(Tool::SchemaCheck, &["--format", "json"]).run();
    let doc = gate.json();
    assert_eq!(
        gate.code, 1,
        "the comment made during the snapshot went unseen (proof {}):\n{doc:#}",
        doc["snapshot_proof"]
    );
    let drift = doc["drift"].as_array().expect("a drift array");
    assert!(
        drift.iter().any(|d| d["kind"] == "comment"
            && d["object"] == "function public.double_it(integer)"
            && d["change"] == "added"),
        "{doc:#}"
    );
}
