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

# WeightWatcher 0.7.7's own metrics, written once into benches/reference/ and committed:
# tests/weightwatcher_reference.rs compares `aib layers` (and `aib stats` on the GGUF model) with
# them. The venv (benches/reference/requirements.txt, pinned, from PyPI; no torch) is under target/,
# with a second one for xmin_peak and E_TPL (the same set but powerlaw==1.5), and mpmath's
# incomplete gamma function for src/layers/incomplete_gamma.rs.
weightwatcher-reference:
    test -x target/python-ww/bin/python || python3 -m venv target/python-ww
    target/python-ww/bin/python -m pip install --quiet --disable-pip-version-check -r benches/reference/requirements.txt
    for model in llama-tiny gpt2-tiny; do \
        target/python-ww/bin/python benches/reference/weightwatcher_analyze.py fixtures/$model/model.safetensors $model > target/weightwatcher-$model.json && \
        mv target/weightwatcher-$model.json benches/reference/; \
    done
    target/python-ww/bin/python benches/reference/weightwatcher_analyze.py fixtures/gguf/llama-tiny-q8_0.gguf llama-tiny-q8_0 > target/weightwatcher-llama-tiny-q8_0.json
    mv target/weightwatcher-llama-tiny-q8_0.json benches/reference/
    for model in llama-tiny gpt2-tiny; do \
        target/python-ww/bin/python benches/reference/weightwatcher_options.py fixtures/$model/model.safetensors $model > target/weightwatcher-options-$model.json && \
        mv target/weightwatcher-options-$model.json benches/reference/; \
    done
    target/python-ww/bin/python benches/reference/incomplete_gamma_mpmath.py > target/incomplete-gamma-mpmath.json
    mv target/incomplete-gamma-mpmath.json benches/reference/
    # xmin_peak and E_TPL fail with the pinned powerlaw 2.0 (see weightwatcher_options.py's
    # `failed`): they run in a second venv, the same set but for powerlaw==1.5.
    test -x target/python-ww-powerlaw15/bin/python || python3 -m venv target/python-ww-powerlaw15
    target/python-ww-powerlaw15/bin/python -m pip install --quiet --disable-pip-version-check -r benches/reference/requirements.txt
    target/python-ww-powerlaw15/bin/python -m pip install --quiet --disable-pip-version-check powerlaw==1.5
    for model in llama-tiny gpt2-tiny; do \
        target/python-ww-powerlaw15/bin/python benches/reference/weightwatcher_powerlaw.py fixtures/$model/model.safetensors $model > target/weightwatcher-powerlaw-$model.json && \
        mv target/weightwatcher-powerlaw-$model.json benches/reference/; \
    done

# scikit-learn's k-means sweep (k = 2..32 on 30,000 × 384 f32) beside aib's, on the same data.
# The venv is made from PyPI under target/; the data file is target/kmeans-reference.f32. It also
# writes, once, the small dataset and scikit-learn's fit of it that src/cluster/tests.rs reads
# (benches/reference/kmeans-small.*, committed; seeded, so rewriting them changes nothing unless
# scikit-learn's answer does).
kmeans-reference:
    test -x target/python-sklearn/bin/python || python3 -m venv target/python-sklearn
    target/python-sklearn/bin/python -c "import sklearn" 2>/dev/null || target/python-sklearn/bin/python -m pip install --quiet --disable-pip-version-check numpy==2.4.6 scikit-learn==1.9.1
    target/python-sklearn/bin/python benches/reference/kmeans_reference.py small target/kmeans-small.f32 target/kmeans-small.json
    mv target/kmeans-small.f32 target/kmeans-small.json benches/reference/
    target/python-sklearn/bin/python benches/reference/kmeans_reference.py write target/kmeans-reference.f32
    target/python-sklearn/bin/python benches/reference/kmeans_reference.py sweep target/kmeans-reference.f32 32
    AIB_KMEANS_REFERENCE=target/kmeans-reference.f32 cargo bench --bench kmeans

# The machine's f64 matrix-product rate, the yardstick of the performance table: NumPy/OpenBLAS's
# (a venv from PyPI under target/) and faer's (from the spectral bench), in one run.
matmul-yardstick:
    test -x target/python-numpy/bin/python || python3 -m venv target/python-numpy
    target/python-numpy/bin/python -c "import numpy" 2>/dev/null || target/python-numpy/bin/python -m pip install --quiet --disable-pip-version-check numpy
    target/python-numpy/bin/python benches/matmul_numpy.py
    AIB_SPECTRAL_ONE_OFF=matmul cargo bench --bench spectral

# The performance table's 7B-shaped runs: `aib layers`, `aib stats` and `aib report` on the
# checkpoint of `just bench-model-7b`, each under /usr/bin/time -v, with the load average, wall
# time, peak RSS, and the rate reached (flops of the work as the README counts them ÷ wall time);
# divide by `just matmul-yardstick`'s rate, measured in the same session, for the share.
bench-7b model="target/bench-models/llama2-7b-shape" out="target/bench-7b":
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release
    mkdir -p {{out}}
    flops() { python3 benches/count_flops.py {{model}} "$1"; }
    run() {
        local name=$1 work=$2; shift 2
        echo "== aib $name ($(uptime))"
        /usr/bin/time -v "$@" 2> {{out}}/$name.time > /dev/null
        local wall=$(grep 'Elapsed (wall clock)' {{out}}/$name.time | awk '{print $NF}')
        local rss=$(grep 'Maximum resident' {{out}}/$name.time | awk '{print $NF}')
        local cpu=$(grep 'Percent of CPU' {{out}}/$name.time | awk '{print $NF}')
        local seconds=$(echo "$wall" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
        echo "wall $wall ($seconds s), peak RSS $((rss / 1024)) MB, CPU $cpu, $(python3 -c "print(f'{$work / $seconds / 1e9:.1f}')") GFLOP/s of counted work"
    }
    run layers "$(flops 1.3333333333)" target/release/aib layers {{model}} -o {{out}}/layers.json --quiet
    run stats "$(flops 0.3333333333)" target/release/aib stats {{model}} -o {{out}}/stats.csv --quiet
    run report "$(flops 1.3333333333)" target/release/aib report {{model}} -o {{out}}/report.html --quiet

# The two planted 7B-shaped checkpoints (base, and tuned: rank-8 updates of 1% merged into every
# q_proj and v_proj, stored in bf16; ~13.5 GB each with 32 layers, `just bench-diff-7b 2` for a
# 2-layer pair), then their diff with `--rank off` and with the default exact ranks.
bench-diff-7b layers="32" out="target/bench-models/diff-7b":
    cargo build --release
    test -d {{out}}/base || cargo run --release --example make_fixtures -- --llama2-7b --layers {{layers}} --out {{out}}/base
    test -d {{out}}/tuned || cargo run --release --example make_fixtures -- --llama2-7b --layers {{layers}} --tuned --out {{out}}/tuned
    /usr/bin/time -v target/release/aib diff {{out}}/base {{out}}/tuned --rank off -q -o {{out}}/diff-rank-off.csv
    /usr/bin/time -v target/release/aib diff {{out}}/base {{out}}/tuned -q -o {{out}}/diff.csv
