//! The `shotlist` binary: parse arguments, run the library, turn the result into an exit code.

fn main() -> std::process::ExitCode {
    shotlist::cli::main()
}
