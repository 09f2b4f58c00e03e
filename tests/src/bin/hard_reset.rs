//! Test shim: the `hard-reset` tool, built from the same library as the shipped binary.

fn main() -> std::process::ExitCode {
    hard_reset::main()
}
