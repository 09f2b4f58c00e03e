//! Test shim: the `schema-check` tool, built from the same library as the shipped binary.

fn main() -> std::process::ExitCode {
    schema_check::main()
}
