//! A real migration history: the 285 up-migrations of crates.io (`/work/shared/corpus`,
//! see its `SOURCE.md`), applied by `migrate` and, as the reference, by `psql`.
//!
//! Synthetic cases test one rule each; this one tests that nothing in ten years of someone
//! else's SQL trips the runner: dollar-quoted PL/pgSQL bodies, files without a final `;`,
//! `CREATE INDEX CONCURRENTLY` in no-transaction files, trusted extensions created by a
//! non-superuser owner. The oracle is psql, the tool those files were written for: both
//! databases must end with the same schema, byte for byte in `pg_dump --schema-only`.
//!
//! The corpus lives outside the repository. When it is missing the test fails, naming the
//! path: a test that silently tested nothing would be a green run that proved nothing
//! (dbmate's counter-example in STYLE.md).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::support::cluster::SUPERUSER;
use crate::support::{Cluster, Run, Tool};

/// The number of files in the corpus, and how many of them run outside a transaction
/// (`SOURCE.md`).
const FILES: usize = 285;
const NO_TRANSACTION_FILES: usize = 7;

const MARKER: &str = "-- dreichor:no-transaction";

/// Generous bounds for a two-core machine shared with parallel tests: the corpus applies in
/// about 3 s with psql on a quiet machine.
const APPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// The reference database and its owner, a separate non-superuser role.
const PSQL_DB: &str = "corpus_psql";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/crates_io/migrations")
}

/// `(file name, content)` of every `.sql` file, in name order (= execution order). Panics,
/// naming the directory, when it cannot be read: a missing corpus or fixture is a failure,
/// never a skip.
pub(crate) fn corpus_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "the migrations at {} cannot be read ({e}): a missing corpus or fixture is a failure, never a skip",
                dir.display()
            )
        })
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 file name")
                .to_owned();
            let content =
                std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (name, content)
        })
        .collect();
    files.sort();
    files
}

/// SPEC.md's checksum, computed here independently of `common`: lowercase hex SHA-256 after
/// dropping a leading UTF-8 BOM and turning every CRLF into LF.
fn checksum(content: &[u8]) -> String {
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let mut normalised = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        if content[i] == b'\r' && content.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        normalised.push(content[i]);
        i += 1;
    }
    Sha256::digest(&normalised)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn is_no_transaction(content: &[u8]) -> bool {
    let first = content.split(|&b| b == b'\n').next().unwrap_or_default();
    first.strip_suffix(b"\r").unwrap_or(first) == MARKER.as_bytes()
}

/// `pg_dump --schema-only` of `db` without owners, privileges and migrate's own tables,
/// with the lines that differ between two dumps of identical schemas removed: pg_dump
/// 15.14+ writes `\restrict <random key>` / `\unrestrict <key>`, and a comment may name the
/// database.
fn schema_dump(cluster: &Cluster, db: &str) -> String {
    let out = Run::new(cluster.bin("pg_dump"))
        .args(["--schema-only", "--no-owner", "--no-privileges"])
        .arg("--exclude-table=public.dreichor_schema_migrations")
        .arg("--exclude-table=public.dreichor_schema_snapshot")
        .arg("-h")
        .arg(cluster.socket_dir())
        .args(["-p", &cluster.port().to_string(), "-U", SUPERUSER, "-d", db])
        .timeout(APPLY_TIMEOUT)
        .run();
    out.assert_code(0);
    out.stdout
        .lines()
        .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
        .filter(|line| !(line.starts_with("--") && line.contains(db)))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The first lines where `a` and `b` differ, with some context, for the failure message.
fn first_difference(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = a
        .iter()
        .zip(&b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let from = at.saturating_sub(5);
    let show = |lines: &[&str]| lines[from.min(lines.len())..(at + 10).min(lines.len())].join("\n");
    format!(
        "first difference at line {} ({} vs {} lines)\n--- migrate ---\n{}\n--- psql ---\n{}",
        at + 1,
        a.len(),
        b.len(),
        show(&a),
        show(&b)
    )
}

#[test]
fn crates_io_corpus_applies_like_psql() {
    let dir = corpus_dir();
    // Missing is a failure everywhere: a test that passes without running hides it.
    assert!(
        dir.is_dir(),
        "the crates.io corpus is missing at {}: put the shared directory beside the clone",
        dir.display()
    );
    let files = corpus_files(&dir);
    assert_eq!(files.len(), FILES, "files in {}", dir.display());
    let no_transaction = files.iter().filter(|(_, c)| is_no_transaction(c)).count();
    assert_eq!(no_transaction, NO_TRANSACTION_FILES, "no-transaction files");

    // The real names dreichor_dev/dreichor_prod: a cluster of its own.
    let cluster = Cluster::start();
    let envs = cluster.provision_envs();

    // migrate, as an operator runs it.
    let started = Instant::now();
    let out = Tool::Migrate
        .cmd()
        .env("DATABASE_URL", &envs.dev_url)
        .args(["--env", "dev", "--format", "json", "--dir"])
        .arg(&dir)
        .timeout(APPLY_TIMEOUT)
        .run();
    out.assert_code(0);
    let migrate_took = started.elapsed();
    let summary = out.json();
    let applied = summary["applied"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"applied\" array in {summary}"));
    assert_eq!(applied.len(), FILES, "{summary}");
    assert_eq!(summary["already_applied"], 0, "{summary}");

    // The reference: psql, one session per file, in a database of a separate non-superuser
    // owner (the extensions the corpus creates are trusted, so an owner may create them).
    cluster.create_role(PSQL_DB, "NOSUPERUSER NOCREATEDB NOCREATEROLE");
    cluster.sql(
        "postgres",
        &format!("CREATE DATABASE {PSQL_DB} OWNER {PSQL_DB}"),
    );
    let started = Instant::now();
    for (name, content) in &files {
        let mut psql = Run::new(cluster.bin("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(cluster.socket_dir())
            .args([
                "-p",
                &cluster.port().to_string(),
                "-U",
                PSQL_DB,
                "-d",
                PSQL_DB,
            ]);
        if !is_no_transaction(content) {
            psql = psql.arg("--single-transaction");
        }
        let out = psql
            .arg("-f")
            .arg(dir.join(name))
            .timeout(APPLY_TIMEOUT)
            .run();
        assert!(
            out.code == 0,
            "psql failed on {name} (exit {}): the reference apply must succeed\n{}",
            out.code,
            out.stderr
        );
    }
    let psql_took = started.elapsed();

    let by_migrate = schema_dump(&cluster, "dreichor_dev");
    let by_psql = schema_dump(&cluster, PSQL_DB);
    assert!(
        by_migrate.contains("CREATE TABLE public."),
        "the dump of dreichor_dev has no tables:\n{by_migrate}"
    );
    assert!(
        by_migrate == by_psql,
        "migrate and psql left different schemas: {}",
        first_difference(&by_migrate, &by_psql)
    );

    // One row per file, each with the file's checksum.
    let rows = cluster.query_strings(
        "dreichor_dev",
        "SELECT version, checksum FROM public.dreichor_schema_migrations ORDER BY version",
    );
    let expected: Vec<Vec<Option<String>>> = files
        .iter()
        .map(|(name, content)| {
            vec![
                Some(name.trim_end_matches(".sql").to_owned()),
                Some(checksum(content)),
            ]
        })
        .collect();
    assert_eq!(rows.len(), FILES, "rows in the tracking table");
    for (row, want) in rows.iter().zip(&expected) {
        assert_eq!(row, want, "tracking row (version, checksum)");
    }

    // The gate agrees that the database has this release's every migration.
    let out = Tool::SchemaCheck
        .cmd()
        .env("DATABASE_URL", &envs.dev_url)
        .args(["--env", "dev", "--dir"])
        .arg(&dir)
        .run();
    out.assert_code(0);

    eprintln!(
        "crates.io corpus: {FILES} files, migrate {:.2} s, psql (one process per file) {:.2} s",
        migrate_took.as_secs_f64(),
        psql_took.as_secs_f64()
    );
}
