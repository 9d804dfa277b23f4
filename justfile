# aib's everyday commands. `just --list` shows them.

# Build the release binary.
build:
    cargo build --release

# Run the test suite (the same command CI and the README use).
test:
    cargo test

# Statistics of every tensor of a fixture model, as a table.
demo:
    cargo run --release -- stats fixtures/llama-tiny

# Benchmarks: the statistics kernel and the spectral engine (criterion).
bench:
    cargo bench

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Regenerate the fixture models (bit-identical to the committed ones).
fixtures:
    cargo run --release --example make_fixtures -- --out fixtures
