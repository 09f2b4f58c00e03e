//! Least privilege, end to end: environments provisioned by `infra/db/provision.sh` get two
//! roles each, and PostgreSQL itself keeps the runtime role from changing the schema.
//!
//! Every case provisions a cluster of its own with the real script ([`Host`]), migrates as the
//! owner with the URL of `dev.env`, and then acts as the runtime does, with the URL of
//! `dev.runtime.env`: every statement that would change the schema must be refused by the
//! server with SQLSTATE 42501 (insufficient_privilege), while rows can be read and written in
//! the tables the migrations created after provisioning. `migrate` and `hard-reset` must
//! refuse the runtime role before touching anything, and a `hard-reset` must keep the split.

use postgres::error::SqlState;

use crate::provision::Host;
use crate::support::cluster::{connect, describe_error};
use crate::support::pty::assert_in_order;
use crate::support::{Pty, Run, Tool};

/// Created after provisioning, by the owner: a table with an identity sequence, a sequence
/// of its own and a function, none of which names the runtime role.
const MIGRATION: &str = "CREATE TABLE public.ledger (id bigserial PRIMARY KEY, note text);\n\
     CREATE SEQUENCE public.ticket;\n\
     CREATE FUNCTION public.twice(n int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 2 * n';\n";

/// A provisioned host with a migrations directory holding [`MIGRATION`].
struct Split {
    host: Host,
    dir: tempfile::TempDir,
}

impl Split {
    /// Provisions both environments with the script; nothing migrated yet.
    fn provisioned() -> Split {
        let host = Host::start();
        host.provision(&[], &[]).assert_code(0);
        let dir = tempfile::tempdir().expect("a migrations directory");
        std::fs::write(dir.path().join("001_init.sql"), MIGRATION).expect("write 001_init.sql");
        Split { host, dir }
    }

    /// [`Split::provisioned`], then migrated as the owner.
    fn migrated() -> Split {
        let s = Split::provisioned();
        s.tool(Tool::Migrate, "dev").run().assert_code(0);
        s
    }

    /// `TOOL --env dev --dir DIR` with the DATABASE_URL of `file` (`dev` or `dev.runtime`).
    fn tool(&self, tool: Tool, file: &str) -> Run {
        tool.cmd()
            .env("DATABASE_URL", self.host.url_in_file(file))
            .args(["--env", "dev", "--dir"])
            .arg(self.dir.path())
    }

    /// `hard-reset` with the URL of `file`, the superuser's admin URL and the cluster's
    /// client programs, in a terminal.
    fn hard_reset(&self, file: &str) -> Pty {
        self.hard_reset_as(file, &self.host.cluster.admin_url())
    }

    /// [`Split::hard_reset`] with another admin URL.
    fn hard_reset_as(&self, file: &str, admin_url: &str) -> Pty {
        Pty::spawn(
            self.tool(Tool::HardReset, file)
                .arg("--stop-command")
                .arg("true")
                .env("DREICHOR_ADMIN_DATABASE_URL", admin_url)
                .env(
                    "PG_BIN",
                    self.host
                        .cluster
                        .bin("pg_dump")
                        .parent()
                        .expect("a directory"),
                ),
        )
    }

    /// A session as the runtime: the URL of `dev.runtime.env`.
    fn runtime(&self) -> postgres::Client {
        connect(&self.host.url_in_file("dev.runtime"), "dreichor-runtime")
            .unwrap_or_else(|e| panic!("the runtime role logs in: {}", describe_error(&e)))
    }

    /// The oid of `dreichor_dev`: a new one means it was dropped.
    fn oid(&self) -> String {
        self.host.scalar(
            "postgres",
            "SELECT oid::text FROM pg_database WHERE datname = 'dreichor_dev'",
        )
    }
}

/// Panics unless `sql` fails in `client` with SQLSTATE 42501.
#[track_caller]
fn refused(client: &mut postgres::Client, sql: &str) {
    match client.batch_execute(sql) {
        Ok(()) => panic!("the runtime role could run {sql:?}"),
        Err(e) => assert_eq!(
            e.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql:?}: {}",
            describe_error(&e)
        ),
    }
}

/// What the runtime must be able to do, and must not, in a migrated `dreichor_dev`.
#[track_caller]
fn assert_split(s: &Split) {
    let mut rt = s.runtime();
    for sql in [
        "CREATE TABLE public.stray (id int)",
        "CREATE TABLE IF NOT EXISTS public.stray (id int)",
        "ALTER TABLE public.ledger ADD COLUMN extra int",
        "DROP TABLE public.ledger",
        "CREATE INDEX ON public.ledger (note)",
        "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "CREATE TEMP TABLE scratch (id int)",
        "TRUNCATE public.ledger",
        "COMMENT ON TABLE public.ledger IS 'mine now'",
        "CREATE SCHEMA runtime_own",
        "INSERT INTO public.dreichor_schema_migrations (version, checksum) VALUES ('999_fake', 'x')",
        "DELETE FROM public.dreichor_schema_migrations",
        "UPDATE public.dreichor_schema_migrations SET checksum = 'x'",
    ] {
        refused(&mut rt, sql);
    }
    // A GRANT by a role without the grant option succeeds with a warning and grants nothing.
    let acl = |s: &Split| {
        s.host.scalar(
            "dreichor_dev",
            "SELECT relacl::text FROM pg_class WHERE oid = 'public.ledger'::regclass",
        )
    };
    let before = acl(s);
    rt.batch_execute("GRANT ALL ON public.ledger TO PUBLIC")
        .unwrap_or_else(|e| panic!("GRANT: {}", describe_error(&e)));
    assert_eq!(acl(s), before, "the GRANT granted something");

    // Rows, sequences and functions are the runtime's to use.
    rt.batch_execute(
        "DELETE FROM public.ledger WHERE note IN ('a', 'b', 'c');
         INSERT INTO public.ledger (note) VALUES ('a'), ('b');
         UPDATE public.ledger SET note = 'c' WHERE note = 'b';
         DELETE FROM public.ledger WHERE note = 'a';
         SELECT nextval('public.ticket'), currval('public.ticket');
         SELECT * FROM public.ticket;",
    )
    .unwrap_or_else(|e| panic!("DML as the runtime: {}", describe_error(&e)));
    let row = rt
        .query_one(
            "SELECT count(*)::int, max(note), public.twice(21),
                    (SELECT count(*)::int FROM public.dreichor_schema_migrations)
             FROM public.ledger WHERE note IN ('a', 'b', 'c')",
            &[],
        )
        .unwrap_or_else(|e| panic!("SELECT as the runtime: {}", describe_error(&e)));
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, String>(1), "c");
    assert_eq!(row.get::<_, i32>(2), 42);
    assert!(row.get::<_, i32>(3) >= 1, "the tracking table is readable");

    // The gate passes with the runtime's credentials, as the deploy agent runs it.
    s.tool(Tool::SchemaCheck, "dev.runtime")
        .run()
        .assert_code(0);
}

#[test]
fn the_runtime_role_reads_and_writes_rows_but_cannot_change_the_schema() {
    let s = Split::migrated();
    assert_split(&s);
    // Its file: 0600, the runtime role's URL, the environment.
    let file = s.host.env_file("dev.runtime");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file)
            .expect("dev.runtime.env")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(s
        .host
        .url_in_file("dev.runtime")
        .starts_with("postgres://dreichor_dev_runtime:"));
    // It owns nothing, is a member of nothing, and cannot reach the other environment.
    let owned = s.host.scalar(
        "postgres",
        "SELECT count(*) FROM pg_shdepend WHERE deptype = 'o'
           AND refobjid = 'dreichor_dev_runtime'::regrole",
    );
    assert_eq!(owned, "0");
    let memberships = s.host.scalar(
        "postgres",
        "SELECT count(*) FROM pg_auth_members WHERE member = 'dreichor_dev_runtime'::regrole",
    );
    assert_eq!(memberships, "0");
    let err = s
        .host
        .login(
            "dreichor_dev_runtime",
            &s.host.password_in_file("dev.runtime"),
            "dreichor_prod",
        )
        .err()
        .expect("dev's runtime role cannot connect to dreichor_prod");
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
}

#[test]
fn migrate_and_hard_reset_refuse_the_runtime_role_and_touch_nothing() {
    let s = Split::provisioned();
    for args in [&[][..], &["--dry-run"][..]] {
        let out = s.tool(Tool::Migrate, "dev.runtime").args(args).run();
        out.assert_code(2)
            .assert_stderr("cannot change the schema of dreichor_dev")
            .assert_stderr("/etc/dreichor/dev.env")
            .assert_stderr("dev.runtime.env is for the runtime");
    }
    let tracking = s.host.scalar(
        "dreichor_dev",
        "SELECT to_regclass('public.dreichor_schema_migrations') IS NULL",
    );
    assert_eq!(tracking, "t", "migrate touched the database");

    s.tool(Tool::Migrate, "dev").run().assert_code(0);
    s.runtime()
        .batch_execute("INSERT INTO public.ledger (note) VALUES ('keep me')")
        .expect("a row to keep");
    let oid = s.oid();
    let out = s.hard_reset("dev.runtime").finish();
    out.assert_code(2);
    out.assert_contains("cannot change the schema of dreichor_dev");
    out.assert_contains("never drops a database it could not migrate again");
    out.assert_contains("/etc/dreichor/dev.env");
    out.assert_lacks("Type the database name");
    assert_eq!(s.oid(), oid, "the database was dropped");
    assert_eq!(
        s.host
            .scalar("dreichor_dev", "SELECT count(*) FROM public.ledger"),
        "1"
    );
    // schema-check accepts either role.
    s.tool(Tool::SchemaCheck, "dev").run().assert_code(0);
    s.tool(Tool::SchemaCheck, "dev.runtime")
        .run()
        .assert_code(0);
}

#[test]
fn hard_reset_keeps_the_two_roles_apart() {
    let s = Split::migrated();
    let admin_url = s.host.cluster.admin_url();
    reset_and_check_the_split(&s, &admin_url);
}

#[test]
fn hard_reset_by_an_admin_that_is_no_superuser_keeps_the_two_roles_apart() {
    let s = Split::migrated();
    // SPEC.md's other admin: CREATEDB and a member of the owner. It restores schema public's
    // privileges as a member of the owner, and the owner's default privileges for it.
    let password = s.host.cluster.create_role("resetter", "CREATEDB");
    s.host
        .cluster
        .sql("postgres", "GRANT dreichor_dev TO resetter");
    let admin_url = s
        .host
        .cluster
        .url_for("resetter", &password, "localhost", "postgres");
    reset_and_check_the_split(&s, &admin_url);
}

/// Resets dev with `admin_url`, and checks that schema public's privileges and the default
/// privileges came back identical and the runtime role still works as before.
fn reset_and_check_the_split(s: &Split, admin_url: &str) {
    let default_acls = |s: &Split| {
        s.host.cluster.query_strings(
            "dreichor_dev",
            "SELECT pg_get_userbyid(defaclrole), defaclobjtype::text, defaclacl::text
             FROM pg_default_acl ORDER BY 1, 2",
        )
    };
    let public_acl = |s: &Split| {
        s.host.scalar(
            "dreichor_dev",
            "SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'",
        )
    };
    let (defaults, public) = (default_acls(s), public_acl(s));
    assert!(!defaults.is_empty(), "provisioning set default privileges");
    assert!(
        public.contains("dreichor_dev_runtime=U/"),
        "provisioning granted USAGE on schema public: {public}"
    );
    let oid = s.oid();

    let mut pty = s.hard_reset_as("dev", admin_url);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    let out = pty.finish();
    out.assert_code(0);
    assert_in_order(
        &out.transcript,
        &[
            "step 4/7",
            "default privileges of dreichor_dev",
            "step 5/7",
            "checked it against the recorded properties: identical",
            "step 6/7",
            "applied  001_init",
        ],
    );
    assert_ne!(s.oid(), oid, "the database was not recreated");
    assert_eq!(default_acls(s), defaults);
    assert_eq!(public_acl(s), public);
    assert_split(s);
}

#[test]
fn provisioning_a_host_from_before_the_runtime_roles_adds_them_and_drops_nothing() {
    let s = Split::migrated();
    // The state the previous release left: no runtime roles, no runtime files, but
    // migrated databases with data in them.
    for env in ["dev", "prod"] {
        let db = format!("dreichor_{env}");
        s.host.cluster.sql(
            &db,
            "DROP OWNED BY dreichor_dev_runtime, dreichor_prod_runtime",
        );
        std::fs::remove_file(s.host.env_file(&format!("{env}.runtime"))).expect("remove");
    }
    s.host.cluster.sql(
        "postgres",
        "DROP ROLE dreichor_dev_runtime; DROP ROLE dreichor_prod_runtime",
    );
    s.host.cluster.sql(
        "dreichor_dev",
        "INSERT INTO public.ledger (note) VALUES ('kept')",
    );
    let hashes = s.host.password_hashes();
    let owner_file = s.host.file("dev");

    let out = s.host.provision(&[], &[]);
    out.assert_code(0);
    for needle in [
        "created role dreichor_dev_runtime",
        "ACTION NEEDED for dev",
        "EnvironmentFile=",
        "dev.runtime.env",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle:?} missing\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("ROTATED"));
    assert_eq!(
        &s.host.password_hashes()[..2],
        &hashes[..2],
        "the owners' passwords are untouched"
    );
    assert_eq!(s.host.file("dev"), owner_file, "dev.env is untouched");
    assert_eq!(
        s.host.scalar(
            "dreichor_dev",
            "SELECT string_agg(note, ',' ORDER BY id) FROM public.ledger"
        ),
        "kept"
    );
    // The tables that existed before are the runtime's to use, the tracking table only to
    // read; the migrations that come later are covered by the default privileges.
    std::fs::write(
        s.dir.path().join("002_more.sql"),
        "CREATE TABLE public.later (id int);\n",
    )
    .expect("write 002_more.sql");
    s.tool(Tool::Migrate, "dev").run().assert_code(0);
    assert_split(&s);
    s.runtime()
        .batch_execute("INSERT INTO public.later VALUES (1)")
        .unwrap_or_else(|e| panic!("a table of a later migration: {}", describe_error(&e)));

    // A second run finds everything in place.
    let again = s.host.provision(&[], &[]);
    again.assert_code(0);
    for needle in [
        "created",
        "granted",
        "FIXED",
        "ACTION NEEDED",
        "set the default",
    ] {
        assert!(
            !again.stdout.contains(needle),
            "{needle:?} in the second run\n{}",
            again.stdout
        );
    }
}

#[test]
fn provisioning_takes_away_what_the_runtime_role_was_given_by_hand() {
    let s = Split::migrated();
    s.host.cluster.sql(
        "postgres",
        "GRANT dreichor_dev TO dreichor_dev_runtime;
         GRANT CREATE, TEMPORARY ON DATABASE dreichor_dev TO dreichor_dev_runtime;
         GRANT CONNECT ON DATABASE dreichor_prod TO dreichor_dev_runtime;",
    );
    s.host.cluster.sql(
        "dreichor_dev",
        "GRANT CREATE ON SCHEMA public TO dreichor_dev_runtime;
         GRANT INSERT, UPDATE, DELETE, TRUNCATE ON public.dreichor_schema_migrations TO dreichor_dev_runtime, PUBLIC;",
    );
    let hashes = s.host.password_hashes();

    let out = s.host.provision(&[], &[]);
    out.assert_code(0);
    for needle in [
        "FIXED role dreichor_dev_runtime: it was a member of dreichor_dev; revoked",
        "FIXED database dreichor_dev: revoked CREATE, TEMPORARY from dreichor_dev_runtime",
        "FIXED database dreichor_prod: revoked CONNECT, TEMPORARY from dreichor_dev_runtime",
        "FIXED database dreichor_dev: revoked CREATE on its schemas from dreichor_dev_runtime",
        "FIXED the tools' own tables in database dreichor_dev",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle:?} missing\n{}",
            out.stdout
        );
    }
    assert_eq!(
        s.host.password_hashes(),
        hashes,
        "repairs never touch passwords"
    );
    assert_split(&s);
}

#[test]
fn hard_reset_drops_nothing_when_the_admin_could_not_restore_the_default_privileges() {
    let s = Split::migrated();
    // Default privileges of a role the admin below is not a member of.
    s.host
        .cluster
        .sql("postgres", "CREATE ROLE reporting NOLOGIN");
    s.host.cluster.sql(
        "dreichor_dev",
        "ALTER DEFAULT PRIVILEGES FOR ROLE reporting GRANT SELECT ON TABLES TO dreichor_dev_runtime",
    );
    let password = s.host.cluster.create_role("resetter", "CREATEDB");
    s.host
        .cluster
        .sql("postgres", "GRANT dreichor_dev TO resetter");
    let admin_url = s
        .host
        .cluster
        .url_for("resetter", &password, "localhost", "postgres");
    let oid = s.oid();

    let mut pty = s.hard_reset_as("dev", &admin_url);
    pty.expect("Type the database name (dreichor_dev) to confirm");
    pty.answer("dreichor_dev");
    let out = pty.finish();
    out.assert_code(1);
    out.assert_contains("the admin role cannot restore schema public's privileges or the default privileges of reporting");
    out.assert_contains("so the database is not dropped");
    assert_eq!(s.oid(), oid, "the database was dropped");
}
