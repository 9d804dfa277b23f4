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

# A full-size, sharded bf16 checkpoint of the Llama-2-7B shape (~13.5 GB) for benchmarks, in an
# ignored folder; `just bench-model-7b 2` writes a 2-layer one for quick runs.
bench-model-7b layers="32" out="target/bench-models/llama2-7b-shape":
    cargo run --release --example make_fixtures -- --llama2-7b --layers {{layers}} --out {{out}}

# The float64 NumPy reference of `aib layers`' metrics, as JSON on stdout (its venv, with
# WeightWatcher 0.7.7 for `--weightwatcher`, is made under target/ on first use).
layers-reference model *flags:
    test -x target/python-ww/bin/python || python3 -m venv target/python-ww
    target/python-ww/bin/python -m pip install --quiet --disable-pip-version-check -r benches/reference/requirements.txt
    target/python-ww/bin/python benches/reference/ww_reference.py {{model}} {{flags}}

# scikit-learn's k-means sweep (k = 2..32 on 30,000 × 384 f32) beside aib's, on the same data.
# The venv is made from PyPI under target/; the data file is target/kmeans-reference.f32.
kmeans-reference:
    test -x target/python-sklearn/bin/python || python3 -m venv target/python-sklearn
    target/python-sklearn/bin/python -c "import sklearn" 2>/dev/null || target/python-sklearn/bin/python -m pip install --quiet --disable-pip-version-check numpy scikit-learn
    target/python-sklearn/bin/python benches/reference/kmeans_reference.py write target/kmeans-reference.f32
    target/python-sklearn/bin/python benches/reference/kmeans_reference.py sweep target/kmeans-reference.f32 32
    AIB_KMEANS_REFERENCE=target/kmeans-reference.f32 cargo bench --bench kmeans
