//! The `schema-check` binary: everything lives in the library so that the test package can build
//! an identical shim (see `tests/Cargo.toml`).

fn main() -> std::process::ExitCode {
    schema_check::main()
}
