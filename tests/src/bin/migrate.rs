//! Test shim: the `migrate` tool, built from the same library as the shipped binary.

fn main() -> std::process::ExitCode {
    migrate::main()
}
