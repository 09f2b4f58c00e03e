//! Live-schema drift (SPEC.md, "Schema snapshot and drift"): `migrate` records a snapshot of
//! the schema after a run that applied a file; `schema-check` names every object that
//! differs from it.
//!
//! Two halves. Detection: every change the issue lists, made by hand after `migrate`, is
//! found and named (kind, object, added/dropped/changed) by the gate; each case is its own
//! test (`hand_change::*`), all on copies of one migrated database. No false drift: maintenance,
//! data changes, a `pg_dump | pg_restore` into a new database, a hard reset and a real
//! history (the crates.io corpus) leave the gate compatible with no drift.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::drift_histories::{assert_no_false_drift, History};
use crate::support::cluster::SUPERUSER;
use crate::support::pty::Pty;
use crate::support::{Outcome, Project, Run, Tool};

/// A role outside the environments, for GRANT, REVOKE and owner changes.
const READER: &str = "drift_reader";

/// A schema with one of each kind of object the snapshot covers.
const BASE: &str = r#"
CREATE TYPE public.state AS ENUM ('open', 'paid');
CREATE DOMAIN public.positive AS numeric CONSTRAINT positive_check CHECK (VALUE > 0);
CREATE TABLE public.customer (name text PRIMARY KEY);
CREATE TABLE public.invoice (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer text NOT NULL REFERENCES public.customer (name),
    amount   numeric(12,2) NOT NULL DEFAULT 0,
    due      date,
    state    public.state NOT NULL DEFAULT 'open',
    CONSTRAINT amount_nonneg CHECK (amount >= 0)
);
CREATE INDEX invoice_due ON public.invoice (due);
CREATE SEQUENCE public.ticket_seq;
CREATE VIEW public.open_invoice AS SELECT id, amount FROM public.invoice WHERE state = 'open';
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER invoice_touch BEFORE UPDATE ON public.invoice FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE TABLE public.event (at timestamptz NOT NULL, what text) PARTITION BY RANGE (at);
CREATE TABLE public.event_2026 PARTITION OF public.event FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE public.event_2027 (at timestamptz NOT NULL, what text);
CREATE STATISTICS public.invoice_customer_state (dependencies) ON customer, state FROM public.invoice;
ALTER TABLE public.invoice ALTER COLUMN customer SET STATISTICS 500, ALTER COLUMN customer SET STORAGE MAIN;
GRANT SELECT (customer) ON public.invoice TO drift_reader;
COMMENT ON TABLE public.invoice IS 'Invoices';
CREATE TYPE public.pair AS (a int, b text);
CREATE MATERIALIZED VIEW public.invoice_total AS SELECT customer, sum(amount) AS total FROM public.invoice GROUP BY customer;
CREATE INDEX event_at ON public.event (at);
CREATE POLICY reader_or_owner ON public.invoice TO drift_reader, dreichor_dev USING (true);
INSERT INTO public.customer VALUES ('acme');
INSERT INTO public.invoice (customer, amount) VALUES ('acme', 10);
"#;

/// A project with [`READER`] and [`BASE`] applied by `migrate`.
fn migrated_project() -> Project {
    let p = Project::start();
    p.cluster.create_role(READER, "NOLOGIN");
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p
}

/// `schema-check --format json` on dreichor_dev.
fn gate(p: &Project, extra: &[&str]) -> Outcome {
    p.tool(Tool::SchemaCheck, &["--format", "json"])
        .args(extra)
        .run()
}

/// The `drift` array of a gate's JSON document.
#[track_caller]
fn drift_of(out: &Outcome) -> Vec<Value> {
    let doc = out.json();
    doc["drift"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"drift\" array in {doc}"))
        .clone()
}

/// Panics unless the gate finds dreichor_dev compatible, without drift and with a snapshot;
/// returns how it proved that (`fingerprint` or `digest`).
#[track_caller]
fn assert_no_drift(p: &Project, after: &str) -> String {
    let out = gate(p, &["--strict"]);
    let doc = out.json();
    assert!(
        out.code == 0 && doc["compatible"] == true && drift_of(&out).is_empty(),
        "false drift after {after}: exit {}\n{doc:#}",
        out.code
    );
    assert_eq!(doc["snapshot_recorded"], true, "after {after}: {doc}");
    doc["snapshot_proof"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// One change made by hand, and the drift it must produce: `(kind, object, change)`.
struct Case {
    name: &'static str,
    sql: &'static str,
    expect: (&'static str, &'static str, &'static str),
    /// A fragment of the text line (`drift: ...`) the gate prints.
    text: &'static str,
}

/// One `#[test]` per case, in the module `hand_change` (`cargo test hand_change::` runs them
/// all, `cargo test hand_change::column_added` one).
macro_rules! hand_change_cases {
    ($($test:ident => $case:expr;)*) => {
        mod hand_change {
            use super::{assert_hand_change_is_drift, Case};
            $(
                #[test]
                fn $test() {
                    assert_hand_change_is_drift(&$case);
                }
            )*
        }
    };
}

#[rustfmt::skip]
hand_change_cases! {
    column_added => Case { name: "column added", sql: "ALTER TABLE public.invoice ADD COLUMN note text",
        expect: ("column", "public.invoice.note", "added"), text: "drift: table public.invoice: column note (text) added outside migrations" };
    column_dropped => Case { name: "column dropped", sql: "ALTER TABLE public.invoice DROP COLUMN due",
        expect: ("column", "public.invoice.due", "dropped"), text: "drift: table public.invoice: column due: dropped outside migrations" };
    column_type_changed => Case { name: "column type changed", sql: "ALTER TABLE public.invoice ALTER COLUMN due TYPE timestamp",
        expect: ("column", "public.invoice.due", "changed"), text: "is \"timestamp without time zone\"" };
    column_default_changed => Case { name: "column default changed", sql: "ALTER TABLE public.invoice ALTER COLUMN amount SET DEFAULT 1",
        expect: ("column", "public.invoice.amount", "changed"), text: "DEFAULT 1" };
    not_null_dropped => Case { name: "NOT NULL dropped", sql: "ALTER TABLE public.invoice ALTER COLUMN customer DROP NOT NULL",
        expect: ("column", "public.invoice.customer", "changed"), text: "column customer: changed" };
    table_added => Case { name: "table added", sql: "CREATE TABLE public.extra (id int)",
        expect: ("table", "public.extra", "added"), text: "drift: table public.extra added outside migrations" };
    table_dropped => Case { name: "table dropped", sql: "DROP TABLE public.event_2027",
        expect: ("table", "public.event_2027", "dropped"), text: "drift: table public.event_2027: dropped outside migrations" };
    table_renamed_old_name => Case { name: "table renamed (old name)", sql: "ALTER TABLE public.event_2027 RENAME TO event_next",
        expect: ("table", "public.event_2027", "dropped"), text: "table public.event_2027: dropped" };
    table_renamed_new_name => Case { name: "table renamed (new name)", sql: "ALTER TABLE public.event_2027 RENAME TO event_next",
        expect: ("table", "public.event_next", "added"), text: "table public.event_next added" };
    index_added => Case { name: "index added", sql: "CREATE INDEX invoice_amount ON public.invoice (amount)",
        expect: ("index", "public.invoice_amount", "added"), text: "drift: index public.invoice_amount added outside migrations" };
    index_dropped => Case { name: "index dropped", sql: "DROP INDEX public.invoice_due",
        expect: ("index", "public.invoice_due", "dropped"), text: "drift: index public.invoice_due: dropped outside migrations" };
    index_made_invalid => Case { name: "index made invalid", sql: "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.invoice_due'::regclass",
        expect: ("index", "public.invoice_due", "changed"), text: "(INVALID)" };
    constraint_added => Case { name: "constraint added", sql: "ALTER TABLE public.invoice ADD CONSTRAINT amount_cap CHECK (amount < 1000000)",
        expect: ("constraint", "public.invoice.amount_cap", "added"), text: "table public.invoice: constraint amount_cap" };
    constraint_dropped => Case { name: "constraint dropped", sql: "ALTER TABLE public.invoice DROP CONSTRAINT amount_nonneg",
        expect: ("constraint", "public.invoice.amount_nonneg", "dropped"), text: "constraint amount_nonneg: dropped" };
    constraint_not_valid => Case { name: "constraint NOT VALID", sql: "ALTER TABLE public.invoice DROP CONSTRAINT amount_nonneg, ADD CONSTRAINT amount_nonneg CHECK (amount >= 0) NOT VALID",
        expect: ("constraint", "public.invoice.amount_nonneg", "changed"), text: "NOT VALID" };
    view_redefined => Case { name: "view redefined", sql: "CREATE OR REPLACE VIEW public.open_invoice AS SELECT id, amount FROM public.invoice WHERE state = 'paid'",
        expect: ("view", "public.open_invoice", "changed"), text: "view public.open_invoice: changed" };
    function_body_changed => Case { name: "function body changed", sql: "CREATE OR REPLACE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
        expect: ("function", "public.touch()", "changed"), text: "RETURN OLD" };
    trigger_added => Case { name: "trigger added", sql: "CREATE TRIGGER invoice_touch_again BEFORE INSERT ON public.invoice FOR EACH ROW EXECUTE FUNCTION public.touch()",
        expect: ("trigger", "public.invoice.invoice_touch_again", "added"), text: "table public.invoice: trigger invoice_touch_again added" };
    trigger_disabled => Case { name: "trigger disabled", sql: "ALTER TABLE public.invoice DISABLE TRIGGER invoice_touch",
        expect: ("trigger", "public.invoice.invoice_touch", "changed"), text: "(DISABLED)" };
    sequence_increment_changed => Case { name: "sequence increment changed", sql: "ALTER SEQUENCE public.ticket_seq INCREMENT BY 5",
        expect: ("sequence", "public.ticket_seq", "changed"), text: "INCREMENT 5" };
    enum_value_added => Case { name: "enum value added", sql: "ALTER TYPE public.state ADD VALUE 'void'",
        expect: ("enum", "public.state", "changed"), text: "'void'" };
    domain_constraint_changed => Case { name: "domain constraint changed", sql: "ALTER DOMAIN public.positive DROP CONSTRAINT positive_check; ALTER DOMAIN public.positive ADD CONSTRAINT positive_check CHECK (VALUE >= 1)",
        expect: ("constraint", "public.positive.positive_check", "changed"), text: "domain public.positive: constraint positive_check: changed" };
    grant_on_a_table => Case { name: "GRANT on a table", sql: "GRANT SELECT ON public.invoice TO drift_reader",
        expect: ("privileges", "table public.invoice", "changed"), text: "drift: privileges on table public.invoice: changed" };
    revoke_on_a_table => Case { name: "REVOKE on a table", sql: "REVOKE DELETE ON public.invoice FROM dreichor_dev",
        expect: ("privileges", "table public.invoice", "changed"), text: "privileges on table public.invoice" };
    grant_on_a_column => Case { name: "GRANT on a column", sql: "GRANT UPDATE (amount) ON public.invoice TO drift_reader",
        expect: ("privileges", "column public.invoice.amount", "added"), text: "privileges on column public.invoice.amount added" };
    revoke_on_a_column => Case { name: "REVOKE on a column", sql: "REVOKE SELECT (customer) ON public.invoice FROM drift_reader",
        expect: ("privileges", "column public.invoice.customer", "dropped"), text: "privileges on column public.invoice.customer: dropped" };
    default_privileges => Case { name: "default privileges", sql: "ALTER DEFAULT PRIVILEGES FOR ROLE dreichor_dev IN SCHEMA public GRANT SELECT ON TABLES TO drift_reader",
        expect: ("default privileges", "for role dreichor_dev in schema public on tables", "added"), text: "default privileges for role dreichor_dev" };
    row_level_security_enabled => Case { name: "row-level security enabled", sql: "ALTER TABLE public.invoice ENABLE ROW LEVEL SECURITY",
        expect: ("table", "public.invoice", "changed"), text: "ROW LEVEL SECURITY" };
    policy_added => Case { name: "policy added", sql: "CREATE POLICY mine ON public.invoice USING (customer = current_user)",
        expect: ("policy", "public.invoice.mine", "added"), text: "table public.invoice: policy mine added" };
    comment_changed => Case { name: "comment changed", sql: "COMMENT ON TABLE public.invoice IS 'Bills'",
        expect: ("comment", "table public.invoice", "changed"), text: "comment on table public.invoice: changed" };
    owner_changed => Case { name: "owner changed", sql: "ALTER TABLE public.customer OWNER TO drift_reader",
        expect: ("owner", "table public.customer", "changed"), text: "owner of table public.customer: changed" };
    extension_added => Case { name: "extension added", sql: "CREATE EXTENSION citext",
        expect: ("extension", "citext", "added"), text: "drift: extension citext added outside migrations" };
    statistics_object_added => Case { name: "statistics object added", sql: "CREATE STATISTICS public.invoice_amount_due (ndistinct) ON amount, due FROM public.invoice",
        expect: ("statistics", "public.invoice_amount_due", "added"), text: "drift: statistics public.invoice_amount_due added outside migrations" };
    statistics_object_dropped => Case { name: "statistics object dropped", sql: "DROP STATISTICS public.invoice_customer_state",
        expect: ("statistics", "public.invoice_customer_state", "dropped"), text: "statistics public.invoice_customer_state: dropped" };
    statistics_objects_target_changed => Case { name: "statistics object's target changed", sql: "ALTER STATISTICS public.invoice_customer_state SET STATISTICS 50",
        expect: ("statistics", "public.invoice_customer_state", "changed"), text: "STATISTICS 50" };
    column_statistics_target_changed => Case { name: "column statistics target changed", sql: "ALTER TABLE public.invoice ALTER COLUMN customer SET STATISTICS 100",
        expect: ("column", "public.invoice.customer", "changed"), text: "STATISTICS 100" };
    column_storage_changed => Case { name: "column storage changed", sql: "ALTER TABLE public.invoice ALTER COLUMN customer SET STORAGE EXTERNAL",
        expect: ("column", "public.invoice.customer", "changed"), text: "STORAGE EXTERNAL" };
    column_compression_changed => Case { name: "column compression changed", sql: "ALTER TABLE public.invoice ALTER COLUMN customer SET COMPRESSION lz4",
        expect: ("column", "public.invoice.customer", "changed"), text: "COMPRESSION lz4" };
    column_option_set => Case { name: "column option set", sql: "ALTER TABLE public.invoice ALTER COLUMN amount SET (n_distinct = 100)",
        expect: ("column", "public.invoice.amount", "changed"), text: "n_distinct=100" };
    partition_attached => Case { name: "partition attached", sql: "ALTER TABLE public.event ATTACH PARTITION public.event_2027 FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
        expect: ("table", "public.event_2027", "changed"), text: "PARTITION OF public.event" };
    partition_index_option_set => Case { name: "partition index option set", sql: "ALTER INDEX public.event_2026_at_idx SET (fillfactor = 50)",
        expect: ("index", "public.event_2026_at_idx", "changed"), text: "fillfactor=50" };
    view_column_comment => Case { name: "view column comment", sql: "COMMENT ON COLUMN public.open_invoice.id IS 'Number'",
        expect: ("comment", "column public.open_invoice.id", "added"), text: "comment on column public.open_invoice.id added" };
    view_column_grant => Case { name: "GRANT on a view column", sql: "GRANT SELECT (id) ON public.open_invoice TO drift_reader",
        expect: ("privileges", "column public.open_invoice.id", "added"), text: "privileges on column public.open_invoice.id added" };
    materialized_view_column_grant => Case { name: "GRANT on a materialized view column", sql: "GRANT SELECT (total) ON public.invoice_total TO drift_reader",
        expect: ("privileges", "column public.invoice_total.total", "added"), text: "privileges on column public.invoice_total.total added" };
    composite_attribute_comment => Case { name: "composite type attribute comment", sql: "COMMENT ON COLUMN public.pair.a IS 'First'",
        expect: ("comment", "column public.pair.a", "added"), text: "comment on column public.pair.a added" };
    materialized_view_column_statistics => Case { name: "materialized view column statistics target", sql: "ALTER MATERIALIZED VIEW public.invoice_total ALTER COLUMN total SET STATISTICS 50",
        expect: ("materialized view", "public.invoice_total", "changed"), text: "COLUMN total STATISTICS 50" };
    partition_detached => Case { name: "partition detached", sql: "ALTER TABLE public.event DETACH PARTITION public.event_2026",
        expect: ("table", "public.event_2026", "changed"), text: "table public.event_2026: changed" };
}

/// Replaces dreichor_dev with a fresh copy of `template` (same owner and database privileges
/// as provisioned).
fn restore_copy(p: &Project, template: &str) {
    p.cluster
        .sql("postgres", "DROP DATABASE dreichor_dev WITH (FORCE)");
    p.cluster.sql(
        "postgres",
        &format!("CREATE DATABASE dreichor_dev OWNER dreichor_dev TEMPLATE {template}"),
    );
    p.cluster.sql(
        "postgres",
        "REVOKE CONNECT, TEMPORARY ON DATABASE dreichor_dev FROM PUBLIC; GRANT CONNECT ON DATABASE dreichor_dev TO dreichor_dev",
    );
}

/// The migrated database the hand-change cases start from, shared by the cases of this test
/// process: one project, its migrated `dreichor_dev` kept as the template `drift_base`. Cases
/// take turns (the tools need the database to be `dreichor_dev`), each on a fresh copy; other
/// tests run beside them. A copy made with `CREATE DATABASE ... TEMPLATE` keeps the catalog's
/// row versions, so the gate proves an unchanged copy by the fingerprint alone (asserted here
/// and by [`a_copy_of_the_migrated_database_is_proven_by_the_fingerprint`]).
fn hand_change_base() -> MutexGuard<'static, Project> {
    static BASE: OnceLock<Mutex<Project>> = OnceLock::new();
    BASE.get_or_init(|| {
        let p = migrated_project();
        assert_eq!(assert_no_drift(&p, "migrate"), "fingerprint");
        p.cluster.sql(
            "postgres",
            "CREATE DATABASE drift_base TEMPLATE dreichor_dev",
        );
        restore_copy(&p, "drift_base");
        assert_eq!(
            assert_no_drift(&p, "a copy of the migrated database"),
            "fingerprint",
            "the cheap path must prove an unchanged copy"
        );
        Mutex::new(p)
    })
    .lock()
    // A case that panicked left a copy behind; the next one replaces it anyway.
    .unwrap_or_else(PoisonError::into_inner)
}

/// The hand-change cases' starting point is what they assume: no drift, proven by the
/// fingerprint, on a copy of the migrated database.
#[test]
fn a_copy_of_the_migrated_database_is_proven_by_the_fingerprint() {
    let p = hand_change_base();
    restore_copy(&p, "drift_base");
    assert_eq!(assert_no_drift(&p, "a fresh copy"), "fingerprint");
}

/// The change `case` makes by hand is drift, named with its kind, object and change, and
/// makes the gate fail (exit 1) in text and JSON. Runs on a fresh copy of the migrated
/// database ([`hand_change_base`]). The gate renders and diffs the entries only after the
/// fingerprint and then the digest differ, so a case that finds its drift also shows that its
/// change defeats both.
#[track_caller]
fn assert_hand_change_is_drift(case: &Case) {
    let p = hand_change_base();
    restore_copy(&p, "drift_base");
    p.sql(case.sql);
    let out = gate(&p, &[]);
    let drift = drift_of(&out);
    let (kind, object, change) = case.expect;
    let found = drift
        .iter()
        .any(|d| d["kind"] == kind && d["object"] == object && d["change"] == change);
    let changed_sides = drift
        .iter()
        .filter(|d| d["change"] == "changed")
        .all(|d| d["expected"].is_string() && d["actual"].is_string());
    let text = p.tool(Tool::SchemaCheck, &[]).run();
    let named =
        text.stdout.contains(case.text) || text.stdout.contains(&case.text.replace("drift: ", ""));
    assert!(
        out.code == 1 && found && changed_sides && text.code == 1 && named,
        "case {:?}: exit {} (text {}), expected ({kind}, {object}, {change}) {}, text line {:?} {}\n  drift: {}\n  text: {}",
        case.name,
        out.code,
        text.code,
        if found { "found" } else { "NOT found" },
        case.text,
        if named { "printed" } else { "NOT printed" },
        serde_json::to_string(&drift).unwrap_or_default(),
        text.stdout.trim()
    );
}

/// Maintenance and data changes are not drift: VACUUM FULL, ANALYZE, CLUSTER, REINDEX,
/// TRUNCATE, inserts, updates, deletes and sequence calls change no definition.
#[test]
fn maintenance_and_data_changes_are_not_drift() {
    let p = migrated_project();
    assert_no_drift(&p, "migrate");
    for (what, sql) in [
        ("data changes", "INSERT INTO public.customer VALUES ('globex'); UPDATE public.invoice SET amount = 20; DELETE FROM public.customer WHERE name = 'globex'; SELECT nextval('public.ticket_seq'); SELECT setval('public.ticket_seq', 100)"),
        ("ANALYZE", "ANALYZE"),
        ("VACUUM FULL", "VACUUM FULL"),
        ("CLUSTER", "CLUSTER public.invoice USING invoice_due"),
        ("REINDEX", "REINDEX DATABASE dreichor_dev"),
        ("TRUNCATE", "TRUNCATE public.invoice, public.customer RESTART IDENTITY"),
    ] {
        p.sql(sql);
        assert_no_drift(&p, what);
    }
}

/// A database migrated before snapshots existed (no snapshot table): the gate warns
/// (compatible), `--strict` makes it incompatible, and the next `migrate` run records the
/// first snapshot even with nothing to apply. After that a run with nothing to apply never
/// re-records it, so a hand change stays drift; `migrate status` shows it, and `migrate`
/// warns about it before applying.
#[test]
fn no_snapshot_warns_and_empty_runs_do_not_bless_hand_changes() {
    let p = migrated_project();
    p.sql("DROP TABLE public.dreichor_schema_snapshot");
    let out = gate(&p, &[]);
    out.assert_code(0);
    assert!(
        out.json()["warnings"]
            .to_string()
            .contains("no schema snapshot"),
        "{}",
        out.stdout
    );
    gate(&p, &["--strict"]).assert_code(1);

    // The first run records the first snapshot even with nothing to apply.
    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    run.assert_stderr("created the schema snapshot table public.dreichor_schema_snapshot");
    run.assert_stderr("recorded the schema snapshot");
    assert_no_drift(&p, "the first snapshot");

    p.sql("CREATE INDEX invoice_amount ON public.invoice (amount)");
    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    run.assert_stderr("warning: drift found: index public.invoice_amount added outside migrations; this run applies nothing and records no snapshot, so the gate still reports it");
    let status = p.tool(Tool::Migrate, &["status", "--format", "json"]).run();
    status.assert_code(0);
    assert_eq!(status.json()["snapshot"], "drifted", "{}", status.stdout);
    assert_eq!(status.json()["drift"][0]["object"], "public.invoice_amount");
    let out = gate(&p, &[]);
    out.assert_code(1);
    assert_eq!(drift_of(&out)[0]["object"], "public.invoice_amount");

    // Made official by a migration: the next run applies it and records the snapshot.
    p.write(
        "002_invoice_amount.sql",
        "CREATE INDEX IF NOT EXISTS invoice_amount ON public.invoice (amount);\n",
    );
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_no_drift(&p, "a migration that makes the hand change official");
    let rows = p.scalar("SELECT count(*) FROM public.dreichor_schema_snapshot");
    assert_eq!(
        rows.as_deref(),
        Some("2"),
        "one snapshot per run that applied or was first"
    );
}

/// The gate stays SELECT-only: a role with CONNECT and SELECT on the two tools' tables, and
/// nothing else, gets the same verdict as the owner, drift included.
#[test]
fn the_gate_needs_only_select_on_the_tools_tables() {
    let p = migrated_project();
    p.sql("CREATE INDEX invoice_amount ON public.invoice (amount)");
    let password = p.cluster.create_role("drift_gate", "");
    p.cluster.sql(
        "postgres",
        "GRANT CONNECT ON DATABASE dreichor_dev TO drift_gate",
    );
    p.sql(
        "GRANT SELECT ON public.dreichor_schema_migrations, public.dreichor_schema_snapshot TO drift_gate",
    );
    let url = p
        .cluster
        .url_for("drift_gate", &password, "localhost", "dreichor_dev");
    let out = p
        .tool(Tool::SchemaCheck, &["--format", "json"])
        .env("DATABASE_URL", &url)
        .run();
    out.assert_code(1);
    let drift = drift_of(&out);
    assert!(
        drift.iter().any(|d| d["object"] == "public.invoice_amount"),
        "{}",
        out.stdout
    );
    // The new index itself is drift for it; only the grant to drift_gate differs otherwise.
    assert!(
        drift
            .iter()
            .all(|d| d["object"] == "public.invoice_amount" || d["kind"] == "privileges"),
        "{}",
        out.stdout
    );
}

/// `pg_dump -Fc` of dreichor_dev restored into a new database (then renamed to
/// dreichor_dev) has the same snapshot: no OID, creation order or layout leaks into it.
#[test]
fn a_dump_restored_into_a_new_database_has_no_drift() {
    let p = migrated_project();
    dump_and_restore(&p);
    // Other OIDs and row versions: the fingerprint differs, the rendered digest decides.
    assert_eq!(
        assert_no_drift(&p, "pg_dump -Fc | pg_restore into a new database"),
        "digest"
    );
}

/// Dumps dreichor_dev with `pg_dump -Fc`, drops it, creates it again (as provisioned) and
/// restores the dump with `pg_restore`, as the superuser.
pub(crate) fn dump_and_restore(p: &Project) {
    let dump = p.cluster.dir().join("drift.dump");
    let socket = p.cluster.socket_dir().to_owned();
    let port = p.cluster.port().to_string();
    Run::new(p.cluster.bin("pg_dump"))
        .args(["-Fc", "-f"])
        .arg(&dump)
        .arg("-h")
        .arg(&socket)
        .args(["-p", &port, "-U", SUPERUSER, "-d", "dreichor_dev"])
        .timeout(Duration::from_secs(300))
        .run()
        .assert_code(0);
    p.cluster
        .sql("postgres", "DROP DATABASE dreichor_dev WITH (FORCE)");
    p.cluster.sql(
        "postgres",
        "CREATE DATABASE dreichor_dev OWNER dreichor_dev TEMPLATE template0",
    );
    p.cluster.sql(
        "postgres",
        "REVOKE CONNECT, TEMPORARY ON DATABASE dreichor_dev FROM PUBLIC; GRANT CONNECT ON DATABASE dreichor_dev TO dreichor_dev",
    );
    Run::new(p.cluster.bin("pg_restore"))
        .args(["--exit-on-error", "-d", "dreichor_dev", "-h"])
        .arg(&socket)
        .args(["-p", &port, "-U", SUPERUSER])
        .arg(&dump)
        .timeout(Duration::from_secs(300))
        .run()
        .assert_code(0);
}

/// hard-reset rebuilds the database from the same files and records a snapshot: the gate
/// finds no drift, and a hand change made before the reset is gone.
#[test]
fn hard_reset_records_a_snapshot_without_drift() {
    let p = migrated_project();
    p.sql("CREATE INDEX invoice_amount ON public.invoice (amount)");
    gate(&p, &[]).assert_code(1);
    let mut pty = Pty::spawn(p.hard_reset("dev", &["--stop-command", "true"]));
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    pty.finish().assert_code(0);
    assert_no_drift(&p, "hard-reset");
}

/// `migrate snapshot --reason` is audited: refused without a terminal and under CI; at a
/// terminal it shows each difference, asks, and records who, why and both digests.
#[test]
fn migrate_snapshot_accepts_the_live_schema_only_at_a_terminal() {
    let p = migrated_project();
    p.sql("COMMENT ON TABLE public.invoice IS 'Bills'");
    let args = [
        "snapshot",
        "--reason",
        "PostgreSQL upgrade renders comments differently",
    ];
    let piped = p.tool(Tool::Migrate, &args).stdin("dreichor_dev\n").run();
    piped.assert_code(2);
    piped.assert_stderr("not a terminal");
    let out = Pty::spawn(p.tool(Tool::Migrate, &args).env("CI", "true")).finish();
    out.assert_code(2).assert_contains("CI is set");
    gate(&p, &[]).assert_code(1);

    let mut pty = Pty::spawn(p.tool(Tool::Migrate, &args).env("USER", "alice"));
    pty.expect("accept: comment on table public.invoice: changed outside migrations");
    pty.expect("Type the database name (dreichor_dev) to accept");
    pty.answer("dreichor_dev");
    pty.finish()
        .assert_code(0)
        .assert_contains("accepted 1 difference");
    assert_no_drift(&p, "migrate snapshot");
    let row = p.query(
        "SELECT operator, reason, previous_digest IS NOT NULL AND previous_digest <> digest FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1",
    );
    assert_eq!(
        row[0],
        [
            Some("alice".to_string()),
            Some(args[2].to_string()),
            Some("t".to_string())
        ]
    );
}

/// A real history: the crates.io corpus (`../shared/corpus/crates_io`, outside the
/// repository) applied by `migrate` has no drift, nor after maintenance, a dump restored
/// into a new database or a hard reset ([`assert_no_false_drift`]). A missing corpus fails the test, naming the path: a test that skips
/// proves nothing.
#[test]
fn the_crates_io_corpus_has_no_false_drift() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crates_io/migrations");
    assert!(
        dir.is_dir(),
        "the crates.io corpus is missing at {}: put the shared directory beside the clone",
        dir.display()
    );
    assert_no_false_drift(&History {
        name: "crates.io",
        dir,
        files: 285,
        data: "",
        cluster: "CLUSTER public.crates USING packages_pkey",
        truncate: "TRUNCATE public.crates CASCADE",
    });
}

/// The digest `migrate` records is computed by the tool from the entries in canonical order;
/// it must be, byte for byte, what the server computes with
/// `json_agg(json_build_array(...) ORDER BY ...)` over the same capture, whatever the names
/// and definitions hold: quotes, backslashes, control characters, non-ASCII text, mixed case.
/// The same digest for the same schema, whichever side computes it.
#[test]
fn the_recorded_digest_is_the_servers_json_agg_digest_of_the_capture() {
    let p = migrated_project();
    p.write(
        "002_awkward_names.sql",
        r#"CREATE TABLE public."Quoted ""name"" é" ("tab	column" int, "back\slash" text DEFAULT E'line\nbreak \\ "q" \x01 / é');
COMMENT ON TABLE public."Quoted ""name"" é" IS E'control \x1f and \x7f, tab\t, unicode \u00e9\u4e2d';
CREATE TABLE public.a_lower (x int);
CREATE TABLE public."A_upper" (x int);
"#,
    );
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    let recorded =
        p.scalar("SELECT digest FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1");
    let server = p.scalar(&format!(
        "BEGIN; SET LOCAL search_path = pg_catalog, pg_temp; {};
         SELECT encode(sha256(convert_to(coalesce(json_agg(json_build_array(kind, parent, name, definition)
                ORDER BY kind COLLATE \"C\", parent COLLATE \"C\", pos, name COLLATE \"C\")::text, '[]'), 'UTF8')), 'hex')
         FROM ({}) e; COMMIT",
        common::snapshot::capture::PIN_RENDERING,
        common::snapshot::capture::WHOLE
    ));
    assert!(recorded.is_some(), "no snapshot recorded");
    assert_eq!(
        recorded, server,
        "the tool's digest and the server's differ"
    );
    assert_no_drift(&p, "migrate with awkward names");
}

/// The snapshot's renderings do not depend on the session that renders them: a constant in a
/// default, a check or a view is rendered through its type's output function, which follows
/// DateStyle, IntervalStyle, TimeZone, extra_float_digits, bytea_output, xmlbinary, and every
/// name follows quote_all_identifiers. `migrate` runs with whatever the role and database set
/// (ALTER ROLE ... SET), the gate may run as another role with other defaults: both must
/// render the same text, so the capture pins them all.
#[test]
fn the_snapshot_does_not_depend_on_the_sessions_settings() {
    let p = migrated_project();
    p.write(
        "002_constants.sql",
        r#"CREATE TABLE public.constants (
    d   date        DEFAULT '2026-01-31',
    ts  timestamptz DEFAULT '2026-01-31 12:00:00+00',
    iv  interval    DEFAULT '1 day 02:03:04' CHECK (iv < '400 days'),
    f   float8      DEFAULT 0.1,
    b   bytea       DEFAULT '\x00ff',
    x   xml         DEFAULT '<a/>'
);
CREATE VIEW public.constants_view AS SELECT '2026-02-01'::date AS d, '2 hours'::interval AS iv, 1.5::float8 AS f FROM public.constants;
"#,
    );
    p.sql(
        "ALTER ROLE dreichor_dev SET DateStyle = 'German'; ALTER ROLE dreichor_dev SET IntervalStyle = 'sql_standard';
         ALTER ROLE dreichor_dev SET TimeZone = 'Asia/Tokyo'; ALTER ROLE dreichor_dev SET extra_float_digits = -3;
         ALTER ROLE dreichor_dev SET bytea_output = 'escape'; ALTER ROLE dreichor_dev SET xmlbinary = 'hex';
         ALTER ROLE dreichor_dev SET quote_all_identifiers = on",
    );
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p.sql("ALTER ROLE dreichor_dev RESET ALL");
    assert_no_drift(&p, "migrate under other rendering settings than the gate's");
    // And the other way round: a gate session with settings of its own.
    p.sql("ALTER ROLE dreichor_dev SET DateStyle = 'SQL, DMY'; ALTER ROLE dreichor_dev SET TimeZone = 'America/Caracas'");
    p.sql("VACUUM FULL");
    assert_no_drift(&p, "a gate session with rendering settings of its own");
    p.sql("ALTER ROLE dreichor_dev RESET ALL");
}

/// A run that applies a file records the schema as it is after it: drift found before applying
/// becomes part of the snapshot. The run says so before applying (not that it leaves it out),
/// and the snapshot's reason names what it accepted.
#[test]
fn a_run_that_applies_files_says_it_accepts_the_drift_it_found_and_records_which() {
    let p = migrated_project();
    p.sql("CREATE INDEX invoice_amount ON public.invoice (amount)");
    p.write(
        "002_note.sql",
        "ALTER TABLE public.invoice ADD COLUMN note text;\n",
    );
    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    run.assert_stderr("warning: drift found before applying: index public.invoice_amount added outside migrations; when this run records its snapshot after applying, the snapshot includes it, accepted (its reason names it)");
    run.assert_stderr("the snapshot accepts the 1 difference found before applying");
    let reason = p
        .scalar("SELECT reason FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1")
        .unwrap_or_default();
    assert_eq!(
        reason,
        "applied 002_note; accepted 1 difference found before applying: index public.invoice_amount added outside migrations"
    );
    assert_no_drift(&p, "a run that accepted the drift it found");
}

/// A run killed after applying its files but before recording the snapshot leaves a snapshot
/// older than the newest applied migration: the gate reports that run's own objects as
/// differences, without calling them hand changes. The next run records the snapshot even with
/// nothing to apply, saying why.
#[test]
fn a_snapshot_older_than_the_newest_migration_is_recorded_by_the_next_run() {
    let p = migrated_project();
    p.write(
        "002_note.sql",
        "ALTER TABLE public.invoice ADD COLUMN note text;\n",
    );
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    // As if the run had died before recording: its snapshot is gone, the older one remains.
    p.sql("DELETE FROM public.dreichor_schema_snapshot WHERE id = (SELECT max(id) FROM public.dreichor_schema_snapshot)");
    let out = gate(&p, &[]);
    out.assert_code(1);
    assert!(
        drift_of(&out)
            .iter()
            .any(|d| d["object"] == "public.invoice.note"),
        "{}",
        out.stdout
    );
    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    run.assert_stderr("recorded the schema snapshot");
    let reason =
        p.scalar("SELECT reason FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1");
    assert_eq!(
        reason.as_deref().unwrap_or_default(),
        "the run that applied the newest migration ended before recording its snapshot; accepted 1 difference found before applying (from a snapshot older than the newest applied migration: that run's own changes, hand changes, or both): table public.invoice: column note (text) added"
    );
    assert_no_drift(&p, "the next run after an interrupted one");
    // Up to date now: an empty run records nothing more.
    let count = p.scalar("SELECT count(*) FROM public.dreichor_schema_snapshot");
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(
        p.scalar("SELECT count(*) FROM public.dreichor_schema_snapshot"),
        count
    );
}

/// Rewrites the newest snapshot as the release before the drift sweep recorded it (a
/// partition index with an empty definition, the policy's roles in catalog order), with the
/// digest of those entries.
fn record_in_earlier_rendering(p: &Project) {
    // The newest snapshot as the earlier capture wrote it; its digest over those entries.
    p.sql(
        "UPDATE public.dreichor_schema_snapshot s SET entries = (
           SELECT pg_catalog.jsonb_agg(CASE
             WHEN e->>0 = 'index' AND e->>3 LIKE '% PARTITION OF %'
               THEN pg_catalog.jsonb_build_array(e->0, e->1, e->2, '')
             WHEN e->>0 = 'policy'
               THEN pg_catalog.jsonb_build_array(e->0, e->1, e->2,
                      replace(e->>3, 'TO dreichor_dev, drift_reader', 'TO drift_reader, dreichor_dev'))
             ELSE e END ORDER BY n)
           FROM pg_catalog.jsonb_array_elements(s.entries) WITH ORDINALITY AS x(e, n))
         WHERE id = (SELECT max(id) FROM public.dreichor_schema_snapshot);
         UPDATE public.dreichor_schema_snapshot
         SET digest = pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(entries::text, 'UTF8')), 'hex')
         WHERE id = (SELECT max(id) FROM public.dreichor_schema_snapshot)",
    );
    let earlier = p.query(
        "SELECT count(*) FILTER (WHERE e->>0 = 'index' AND e->>3 = ''),
                count(*) FILTER (WHERE e->>0 = 'policy' AND e->>3 LIKE '%TO drift_reader, dreichor_dev%')
         FROM public.dreichor_schema_snapshot s, pg_catalog.jsonb_array_elements(s.entries) e
         WHERE s.id = (SELECT max(id) FROM public.dreichor_schema_snapshot)",
    );
    assert_eq!(
        earlier,
        vec![vec![Some("1".to_string()), Some("1".to_string())]],
        "the test's snapshot must hold both earlier renderings"
    );
}

/// A snapshot recorded by the release before the drift sweep (a partition index rendered as an
/// empty definition, a policy's roles in catalog order) is not drift once the tools are
/// upgraded: the gate proves the unchanged schema by equivalence and lists the renderings,
/// as after a restore (`common::snapshot::earlier`). Without that, the first check after an
/// upgrade whose fingerprint differs (a `VACUUM FULL` here) would stop deploys for nothing.
#[test]
fn a_snapshot_in_the_earlier_rendering_is_not_drift_after_an_upgrade() {
    let p = migrated_project();
    assert_no_drift(&p, "migrate");
    record_in_earlier_rendering(&p);
    p.sql("VACUUM FULL");
    let out = gate(&p, &["--strict"]);
    let doc = out.json();
    assert_eq!(out.code, 0, "{doc:#}");
    assert_eq!(doc["snapshot_proof"], "equivalent", "{doc:#}");
    assert!(drift_of(&out).is_empty(), "{doc:#}");
    // A hand change beside them is still drift.
    p.sql("CREATE INDEX invoice_amount ON public.invoice (amount)");
    let out = gate(&p, &[]);
    assert_eq!(out.code, 1, "{}", out.json());
    let drift = drift_of(&out);
    assert_eq!(drift.len(), 1, "only the new index: {drift:?}");
    assert_eq!(drift[0]["object"], "public.invoice_amount");
}

/// After `VACUUM FULL` (or a restore) the catalog fingerprint differs and every gate renders
/// the schema to prove it unchanged. The next `migrate` run, with nothing to apply, refreshes
/// the recorded fingerprint when the schema renders exactly as recorded (no new snapshot,
/// same digest), and the gate's cheap path proves it again. With a hand change it refreshes
/// nothing: the gate still names the drift.
#[test]
fn migrate_refreshes_the_fingerprint_only_when_the_schema_renders_as_recorded() {
    let p = migrated_project();
    assert_eq!(assert_no_drift(&p, "migrate"), "fingerprint");
    let newest = "SELECT id || ' ' || digest || ' ' || fingerprint FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1";
    let recorded = p.scalar(newest).expect("a snapshot");
    let count = "SELECT count(*) FROM public.dreichor_schema_snapshot";
    let snapshots = p.scalar(count);

    p.sql("VACUUM FULL");
    assert_eq!(assert_no_drift(&p, "VACUUM FULL"), "digest");
    let refreshes =
        "every check renders the schema until the next migrate run refreshes the fingerprint";
    let status = p.tool(Tool::Migrate, &["status"]).run();
    assert!(status.stdout.contains(refreshes), "{}", status.stdout);
    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    let status = p.tool(Tool::Migrate, &["status"]).run();
    assert!(!status.stdout.contains(refreshes), "{}", status.stdout);
    assert!(
        run.stderr
            .contains("refreshed the schema snapshot's catalog fingerprint"),
        "{}",
        run.stderr
    );
    assert_eq!(p.scalar(count), snapshots, "no new snapshot");
    let refreshed = p.scalar(newest).expect("a snapshot");
    let (same, _) = recorded.rsplit_once(' ').unwrap_or_default();
    assert!(
        refreshed.starts_with(same) && refreshed != recorded,
        "same row and digest, another fingerprint: {recorded} -> {refreshed}"
    );
    assert_eq!(
        assert_no_drift(&p, "migrate's refresh"),
        "fingerprint",
        "the cheap path proves it again"
    );

    // A hand change, then VACUUM FULL: nothing refreshed, the drift still named.
    p.sql("CREATE INDEX invoice_amount ON public.invoice (amount)");
    p.sql("VACUUM FULL");
    let run = p.tool(Tool::Migrate, &[]).run();
    run.assert_code(0);
    assert!(
        !run.stderr.contains("refreshed"),
        "a run must not refresh the fingerprint of a changed schema: {}",
        run.stderr
    );
    assert_eq!(p.scalar(newest), Some(refreshed), "nothing written");
    assert_hand_made_index_is_drift(&p);
}

/// The earlier rendering of a partition index (an empty definition) hides nothing the index
/// has of its own: options set by hand after the upgrade are drift, as they are against a
/// snapshot in today's rendering. Accepted as equivalent, they would pass every gate and be
/// recorded by the next run that applies a file without a word.
#[test]
fn a_partition_index_changed_after_the_upgrade_is_drift_against_the_earlier_rendering() {
    let p = migrated_project();
    record_in_earlier_rendering(&p);
    p.sql("VACUUM FULL");
    assert_eq!(assert_no_drift(&p, "the upgrade"), "equivalent");
    p.sql("ALTER INDEX public.event_2026_at_idx SET (fillfactor = 50)");
    let out = gate(&p, &[]);
    assert_eq!(out.code, 1, "{:#}", out.json());
    let drift = drift_of(&out);
    assert!(
        drift
            .iter()
            .any(|d| d["object"] == "public.event_2026_at_idx"
                && d["change"] == "changed"
                && d["expected"] == ""),
        "{drift:?}"
    );
}

/// A hand change committed between `migrate`'s comparison before applying (proven by digest
/// after `VACUUM FULL`) and its refresh of the fingerprint: the refresh renders the schema
/// again and refreshes nothing, so the gate still names the change. Deterministic: a session
/// holds the tracking table locked, so the run waits right after its comparison (reading
/// whether the snapshot is stale); the change is committed meanwhile.
#[test]
fn a_hand_change_after_migrates_comparison_is_not_refreshed_into_the_fingerprint() {
    let p = migrated_project();
    p.sql("VACUUM FULL");
    assert_eq!(assert_no_drift(&p, "VACUUM FULL"), "digest");
    let newest = "SELECT fingerprint FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1";
    let recorded = p.scalar(newest);
    let mut holder = p.cluster.admin_db("dreichor_dev");
    holder
        .batch_execute(
            "BEGIN; LOCK TABLE public.dreichor_schema_migrations IN ACCESS EXCLUSIVE MODE",
        )
        .expect("lock the tracking table");
    let run = p.tool(Tool::Migrate, &[]).spawn();
    let query = p.query_waiting_for_a_lock(&run, Duration::from_secs(8));
    assert!(
        query.contains("AS stale"),
        "the run should wait after its comparison, not in: {query}"
    );
    p.sql("CREATE INDEX invoice_amount ON public.invoice (amount)");
    holder.batch_execute("ROLLBACK").expect("release the lock");
    let out = run.wait();
    out.assert_code(0);
    assert!(!out.stderr.contains("refreshed"), "{}", out.stderr);
    assert_eq!(p.scalar(newest), recorded, "nothing written");
    assert_hand_made_index_is_drift(&p);
}

/// A refresh that fails (its update waits past the lock timeout: a session holds the snapshot
/// table in SHARE mode) is only a warning that says what is true: nothing written, the gate
/// still on the digest path, and the next run refreshes it.
#[test]
fn a_failed_fingerprint_refresh_writes_nothing_and_the_next_run_refreshes_it() {
    let p = migrated_project();
    let newest = "SELECT fingerprint FROM public.dreichor_schema_snapshot ORDER BY id DESC LIMIT 1";
    let recorded = p.scalar(newest);
    p.sql("VACUUM FULL");
    let mut holder = p.cluster.admin_db("dreichor_dev");
    holder
        .batch_execute("BEGIN; LOCK TABLE public.dreichor_schema_snapshot IN SHARE MODE")
        .expect("lock the snapshot table");
    let run = p.tool(Tool::Migrate, &["--lock-timeout", "1"]).run();
    holder.batch_execute("ROLLBACK").expect("release the lock");
    run.assert_code(0);
    run.assert_stderr("warning: could not refresh the schema snapshot's catalog fingerprint");
    run.assert_stderr("until the next migrate run refreshes it or records a snapshot");
    assert_eq!(p.scalar(newest), recorded, "nothing written");
    assert_eq!(assert_no_drift(&p, "a failed refresh"), "digest");

    p.tool(Tool::Migrate, &[])
        .run()
        .assert_code(0)
        .assert_stderr("refreshed the schema snapshot's catalog fingerprint");
    assert_eq!(assert_no_drift(&p, "the next run"), "fingerprint");
}

/// The gate finds dreichor_dev incompatible and names the index `invoice_amount` made by hand.
#[track_caller]
fn assert_hand_made_index_is_drift(p: &Project) {
    let out = gate(p, &[]);
    assert_eq!(out.code, 1, "{}", out.json());
    assert!(
        drift_of(&out)
            .iter()
            .any(|d| d["object"] == "public.invoice_amount" && d["change"] == "added"),
        "{}",
        out.json()
    );
}
