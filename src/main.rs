//! The `aib` binary: parse the command line, run one command, report an error once.

fn main() {
    std::process::exit(aib::cli::run());
}
