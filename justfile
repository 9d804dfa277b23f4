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

# scikit-learn's k-means sweep (k = 2..32 on 30,000 × 384 f32) beside aib's, on the same data.
# The venv is made from PyPI under target/; the data file is target/kmeans-reference.f32.
kmeans-reference:
    test -x target/python-sklearn/bin/python || python3 -m venv target/python-sklearn
    target/python-sklearn/bin/python -c "import sklearn" 2>/dev/null || target/python-sklearn/bin/python -m pip install --quiet --disable-pip-version-check numpy scikit-learn
    target/python-sklearn/bin/python benches/reference/kmeans_reference.py write target/kmeans-reference.f32
    target/python-sklearn/bin/python benches/reference/kmeans_reference.py sweep target/kmeans-reference.f32 32
    AIB_KMEANS_REFERENCE=target/kmeans-reference.f32 cargo bench --bench kmeans
