//! Writes the man pages and the bash, zsh and fish completions of `migrate`, `schema-check`
//! and `hard-reset` from their clap definitions (`clap_mangen`, `clap_complete`), so that they
//! can never say something the tools do not do.
//!
//! ```text
//! cargo run -p docgen              # (re)writes packaging/man/ and packaging/completions/
//! cargo run -p docgen -- --check   # exit 1 when the committed files are not current (CI)
//! ```
//!
//! The output is committed: the Debian package (cargo-deb) and `infra/db/quickstart.sh` install
//! it as it is, without running anything at build time, and a change to a flag shows up in
//! review as a change to its man page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap_complete::Shell;

/// Relative path under the output directory -> content.
type Files = BTreeMap<PathBuf, Vec<u8>>;

/// The directory the files are written to, relative to the workspace.
const DEFAULT_OUT: &str = "packaging";

/// The subdirectories this program owns (and empties before writing).
const OWNED: [&str; 2] = ["man", "completions"];

fn main() -> ExitCode {
    let mut check = false;
    let mut out = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).join(DEFAULT_OUT);
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: docgen [--check] [OUT_DIR]   (default OUT_DIR: {DEFAULT_OUT}/)");
                return ExitCode::SUCCESS;
            }
            dir => out = PathBuf::from(dir),
        }
    }
    let files = match generate() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("docgen: error: rendering: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = if check {
        compare(&out, &files)
    } else {
        write(&out, &files)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docgen: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every man page and completion file, in memory.
fn generate() -> std::io::Result<Files> {
    let mut files = Files::new();
    for cmd in [
        migrate::command(),
        schema_check::command(),
        hard_reset::command(),
    ] {
        let name = cmd.get_name().to_string();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd.clone(), &name, &mut buf);
            let file = match shell {
                Shell::Bash => format!("bash/{name}"),
                Shell::Zsh => format!("zsh/_{name}"),
                _ => format!("fish/{name}.fish"),
            };
            files.insert(Path::new("completions").join(file), buf);
        }
        man_pages(cmd, &mut files)?;
    }
    Ok(files)
}

/// `name.1` for the tool and `name-sub.1` for each subcommand (but `help`).
fn man_pages(mut cmd: clap::Command, files: &mut Files) -> std::io::Result<()> {
    // Building propagates the global flags (--env, --dir, --format) into the subcommands.
    cmd.build();
    let name = cmd.get_name().to_string();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    files.insert(Path::new("man").join(format!("{name}.1")), buf);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let full = format!("{name}-{}", sub.get_name());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().display_name(full.clone())).render(&mut buf)?;
        files.insert(Path::new("man").join(format!("{full}.1")), buf);
    }
    Ok(())
}

/// Replaces the owned subdirectories of `out` with `files`.
fn write(out: &Path, files: &Files) -> Result<(), String> {
    for dir in OWNED {
        let dir = out.join(dir);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| format!("removing {}: {e}", dir.display()))?;
        }
    }
    for (path, content) in files {
        let path = out.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, content).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    println!(
        "docgen: wrote {} files under {}",
        files.len(),
        out.display()
    );
    Ok(())
}

/// Compares `files` with what is under `out`: every file present and equal, nothing else.
fn compare(out: &Path, files: &Files) -> Result<(), String> {
    let mut stale = Vec::new();
    for (path, content) in files {
        match std::fs::read(out.join(path)) {
            Ok(found) if &found == content => {}
            Ok(_) => stale.push(format!("{} differs", path.display())),
            Err(_) => stale.push(format!("{} is missing", path.display())),
        }
    }
    for dir in OWNED {
        for found in list(&out.join(dir)) {
            let relative = found.strip_prefix(out).unwrap_or(&found).to_path_buf();
            if !files.contains_key(&relative) {
                stale.push(format!("{} is no longer generated", relative.display()));
            }
        }
    }
    if stale.is_empty() {
        println!(
            "docgen: the {} files under {} are current",
            files.len(),
            out.display()
        );
        Ok(())
    } else {
        Err(format!(
            "the man pages and completions under {} are not current:\n  {}\nrun `cargo run -p docgen` and commit the result",
            out.display(),
            stale.join("\n  ")
        ))
    }
}

/// Every file under `dir`, recursively (none when it does not exist).
fn list(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(list(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}
