//! The gate's role without SELECT on the snapshot table (SPEC.md, schema-check: it needs
//! SELECT on the tools' two tables and nothing else): a failure, never "compatible", and the
//! message says what is missing and the statement that grants it.

use crate::support::{Project, Tool};

#[test]
fn a_gate_without_select_on_the_snapshot_says_what_to_grant() {
    let p = Project::start();
    p.write(
        "001_base.sql",
        "CREATE TABLE public.invoice (id bigint PRIMARY KEY);\n",
    );
    let password = p
        .cluster
        .create_role("deploy_gate", "NOSUPERUSER NOCREATEDB NOCREATEROLE");
    p.cluster.sql(
        "postgres",
        "GRANT CONNECT ON DATABASE dreichor_dev TO deploy_gate",
    );
    // Before migrate: a privilege granted after the snapshot would be drift.
    p.sql("GRANT USAGE ON SCHEMA public TO deploy_gate");
    p.tool(Tool::Migrate, &[]).run().assert_code(0);
    p.sql("GRANT SELECT ON public.dreichor_schema_migrations TO deploy_gate");
    let url = p
        .cluster
        .url_for("deploy_gate", &password, "localhost", "dreichor_dev");

    let out = p
        .tool(Tool::SchemaCheck, &[])
        .env("DATABASE_URL", &url)
        .run();
    out.assert_code(1);
    out.assert_stderr("permission denied for table dreichor_schema_snapshot");
    out.assert_stderr("GRANT SELECT ON public.dreichor_schema_migrations, public.dreichor_schema_snapshot TO \"deploy_gate\"");
    out.assert_no_secrets();

    // The statement it names is enough.
    p.sql("GRANT SELECT ON public.dreichor_schema_migrations, public.dreichor_schema_snapshot TO \"deploy_gate\"");
    p.tool(Tool::SchemaCheck, &[])
        .env("DATABASE_URL", &url)
        .run()
        .assert_code(0);
}
