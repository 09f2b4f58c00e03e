//! A rule's firing mode is part of the snapshot, like a trigger's (SPEC.md, "Schema snapshot
//! and drift"): `ENABLE REPLICA RULE` and `ENABLE ALWAYS RULE` change when it fires (under
//! `session_replication_role = replica`, as logical replication and some restores run), so
//! each is drift, named.

use crate::support::{Project, Tool};

const BASE: &str = "
CREATE TABLE public.invoice (id bigint PRIMARY KEY);
CREATE TABLE public.invoice_log (id bigint);
CREATE RULE invoice_logged AS ON INSERT TO public.invoice DO ALSO INSERT INTO public.invoice_log VALUES (NEW.id);
";

#[test]
fn a_rule_enabled_for_replicas_or_always_is_drift() {
    let p = Project::start();
    p.write("001_base.sql", BASE);
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    for (mode, rendered) in [
        ("REPLICA", "(ENABLED REPLICA)"),
        ("ALWAYS", "(ENABLED ALWAYS)"),
    ] {
        p.sql(&format!(
            "ALTER TABLE public.invoice ENABLE {mode} RULE invoice_logged"
        ));
        let out = p.tool(Tool::SchemaCheck, &["--format", "json"]).run();
        let doc = out.json();
        let drift = doc["drift"].as_array().cloned().unwrap_or_default();
        assert!(
            out.code == 1
                && drift.len() == 1
                && drift[0]["kind"] == "rule"
                && drift[0]["object"] == "public.invoice.invoice_logged"
                && drift[0]["actual"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with(rendered),
            "ENABLE {mode} RULE went unseen:\n{doc:#}"
        );
    }
    p.sql("ALTER TABLE public.invoice ENABLE RULE invoice_logged");
    let out = p.tool(Tool::SchemaCheck, &["--format", "json"]).run();
    assert_eq!(
        out.code, 0,
        "false drift after ENABLE RULE:\n{}",
        out.stdout
    );
}
