//! `migrate new` (offline: creates the next migration file), the global flags on either side
//! of a subcommand, how an installed `migrate` outside a checkout finds its directory, and
//! the `[n/N]` progress of a run.

use std::path::Path;

use crate::support::{Project, Tool};

/// The file names in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("reading the directory")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn new_writes_the_next_file_with_the_directorys_width_and_it_applies() {
    let f = Project::start();
    let dir = f.dir().display().to_string();

    // An empty directory starts at 001; the path is printed, nothing else on stdout.
    let out = Tool::Migrate
        .cmd()
        .args(["new", "init", "--dir", &dir])
        .run();
    out.assert_code(0);
    assert_eq!(out.stdout.trim_end(), format!("{dir}/001_init.sql"));
    let header = std::fs::read_to_string(f.dir().join("001_init.sql")).unwrap();
    assert!(header.starts_with("-- 001_init\n"), "{header}");

    // JSON, the flags before the subcommand.
    let out = Tool::Migrate
        .cmd()
        .args(["--format", "json", "--dir", &dir, "new", "add_positions"])
        .run();
    out.assert_code(0);
    let doc = out.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["version"], "002_add_positions");
    assert_eq!(doc["path"], format!("{dir}/002_add_positions.sql"));

    // The new files are ordinary migrations: fill one in and apply both.
    f.write(
        "002_add_positions.sql",
        "CREATE TABLE public.positions (id bigint PRIMARY KEY);\n",
    );
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    assert_eq!(f.versions(), ["001_init", "002_add_positions"]);
    assert!(f.table_exists("positions"));

    // A wider prefix is kept, and the number carries over a digit.
    let wide = tempfile::tempdir().unwrap();
    std::fs::write(wide.path().join("0009_a.sql"), "SELECT 1;\n").unwrap();
    let out = Tool::Migrate
        .cmd()
        .args(["new", "b", "--dir"])
        .arg(wide.path())
        .run();
    out.assert_code(0);
    assert_eq!(files_in(wide.path()), ["0009_a.sql", "0010_b.sql"]);
}

#[test]
fn new_refuses_a_bad_name_or_an_unclean_directory_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("001_a.sql"), "SELECT 1;\n").unwrap();
    let new = |name: &str| {
        Tool::Migrate
            .cmd()
            .args(["new", name, "--dir"])
            .arg(dir.path())
            .run()
    };
    for bad in ["Add_Positions", "add-positions", "", "x.sql", "../escape"] {
        new(bad)
            .assert_code(2)
            .assert_stderr("[a-z0-9_]")
            .assert_stderr("nothing was written");
    }
    assert_eq!(files_in(dir.path()), ["001_a.sql"]);

    // A directory that lint refuses (a second file with the same prefix, a file of another
    // width): every violation is named, nothing is written.
    std::fs::write(dir.path().join("001_b.sql"), "SELECT 1;\n").unwrap();
    std::fs::write(dir.path().join("02_c.sql"), "SELECT 1;\n").unwrap();
    let out = new("d");
    out.assert_code(2)
        .assert_stderr("does not pass `migrate lint`")
        .assert_stderr("001_b.sql")
        .assert_stderr("02_c.sql");
    assert_eq!(files_in(dir.path()), ["001_a.sql", "001_b.sql", "02_c.sql"]);

    // JSON keeps its promise on refusal too.
    let out = Tool::Migrate
        .cmd()
        .args(["new", "d", "--format", "json", "--dir"])
        .arg(dir.path())
        .run();
    out.assert_code(2);
    assert_eq!(out.json()["ok"], false);

    // An exhausted prefix width is refused rather than widened.
    let full = tempfile::tempdir().unwrap();
    std::fs::write(full.path().join("9_last.sql"), "SELECT 1;\n").unwrap();
    Tool::Migrate
        .cmd()
        .args(["new", "more", "--dir"])
        .arg(full.path())
        .run()
        .assert_code(2)
        .assert_stderr("does not fit the directory's 1-digit prefixes");
    assert_eq!(files_in(full.path()), ["9_last.sql"]);
}

#[test]
fn global_flags_are_accepted_before_or_after_the_subcommand() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE public.a (id int);\n");
    let dir = f.dir().display().to_string();
    let before = Tool::Migrate
        .cmd()
        .env("DATABASE_URL", &f.envs.dev_url)
        .args(["--env", "dev", "--dir", &dir, "--format", "json", "status"])
        .run();
    before.assert_code(0);
    let after = f.tool(Tool::Migrate, &["status", "--format", "json"]).run();
    after.assert_code(0);
    assert_eq!(before.json(), after.json());
    assert_eq!(before.json()["migrations"][0]["state"], "pending");

    // The flags of applying make no sense with a subcommand: refused, not ignored.
    f.tool(Tool::Migrate, &["--dry-run", "status"])
        .run()
        .assert_code(2)
        .assert_stderr("apply only to migrate without a subcommand");
    assert!(!f.table_exists("dreichor_schema_migrations"));
}

#[test]
fn outside_a_checkout_the_directory_comes_from_dir_or_dreichor_migrations_dir() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE public.a (id int);\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let installed = || {
        Tool::Migrate
            .cmd()
            .env("DATABASE_URL", &f.envs.dev_url)
            .env("DREICHOR_ENV", "dev")
            .current_dir(elsewhere.path())
    };
    installed()
        .run()
        .assert_code(2)
        .assert_stderr("infra/db/migrations")
        .assert_stderr("--dir or set DREICHOR_MIGRATIONS_DIR");
    assert!(!f.table_exists("dreichor_schema_migrations"));

    installed()
        .env("DREICHOR_MIGRATIONS_DIR", f.dir())
        .run()
        .assert_code(0);
    assert_eq!(f.versions(), ["001_a"]);
}

#[test]
fn each_applying_and_applied_line_says_n_of_n_and_the_summary_keeps_its_words() {
    let f = Project::start();
    f.write("001_a.sql", "CREATE TABLE public.a (id int);\n");
    f.tool(Tool::Migrate, &[]).run().assert_code(0);
    f.write("002_b.sql", "CREATE TABLE public.b (id int);\n");
    f.write("003_c.sql", "CREATE TABLE public.c (id int);\n");
    let out = f.tool(Tool::Migrate, &[]).run();
    out.assert_code(0);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("002_b") || l.contains("003_c"))
        .collect();
    assert_eq!(lines.len(), 4, "{}", out.stderr);
    assert_eq!(lines[0], "[1/2] applying 002_b");
    assert!(
        lines[1].starts_with("[1/2] applied  002_b ("),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2], "[2/2] applying 003_c");
    assert!(
        lines[3].starts_with("[2/2] applied  003_c ("),
        "{}",
        lines[3]
    );
    assert_eq!(
        out.stdout.trim_end(),
        "dreichor_dev: applied 2, already applied 1"
    );
}
