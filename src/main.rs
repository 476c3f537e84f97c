use std::process::ExitCode;

fn main() -> ExitCode {
    narvaro::cli::main()
}
