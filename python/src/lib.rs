//! `aib._aib`: the native half of the Python module `aib`.
//!
//! Every function takes the command line of the CLI command it stands for (the Python half turns
//! keyword arguments into flags), so that options, checks, messages and the provenance recorded
//! in a table are the CLI's own. The engine runs on a worker thread with the GIL released; the
//! calling thread wakes every [`POLL`] to forward progress and warnings to Python and to check
//! for Ctrl-C, which cancels the run (see [`Relay`]) and is raised within [`GRACE`] of that,
//! whether or not the worker has stopped (see [`run_cancellable`]).

use std::collections::HashMap;
use std::ffi::OsString;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use aib::error::{Error, ErrorKind};
use aib::observe::{Cancellation, Observer, Quantity};
use aib::output::Table;
use aib::output::parquet::record_batch;
use arrow_array::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use arrow_schema::Schema;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// How often the calling thread looks at the run: progress, warnings, Ctrl-C.
const POLL: Duration = Duration::from_millis(100);

/// How long a cancelled run's worker is waited for before the exception is raised anyway.
const GRACE: Duration = Duration::from_millis(300);

/// Runs whose worker thread has not ended: those under way and cancelled ones finishing a step
/// in the background.
static WORKERS: AtomicUsize = AtomicUsize::new(0);

/// Runs the CLI on `argv` (program name first) with the GIL released and returns its exit code:
/// the `aib` console script.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(|| aib::cli::run_with_args(argv))
}

/// Runs the `aib fetch` or `aib report` command line `argv` (program name first) with the GIL
/// released and returns the path it wrote. `reporter` as for [`documents`].
#[pyfunction]
fn written_path<'py>(
    py: Python<'py>,
    argv: Vec<OsString>,
    reporter: Option<Bound<'py, PyAny>>,
) -> PyResult<std::path::PathBuf> {
    run_cancellable(py, reporter.as_ref(), move |relay| {
        aib::cli::written_path(argv, relay)
    })
}

/// The documents of the `aib stats`, `layers`, `embed` or `diff` command line `argv` (program
/// name first): its tables as `pyarrow.RecordBatch`es by name (each with the provenance the
/// Parquet file records as schema metadata), in the order of the command's files, and its summary
/// as JSON text, or `None`. `reporter`, when given, has `progress(phase, total, done,
/// counts_bytes)` and `warn(message)`.
#[pyfunction]
fn documents<'py>(
    py: Python<'py>,
    argv: Vec<OsString>,
    reporter: Option<Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyDict>, Option<String>)> {
    let documents = run_cancellable(py, reporter.as_ref(), move |relay| {
        aib::cli::documents(argv, relay)
    })?;
    let tables = PyDict::new(py);
    for (name, table) in &documents.tables {
        tables.set_item(name, to_pyarrow(py, table)?)?;
    }
    let summary = documents
        .summary
        .as_ref()
        .map(|summary| summary.to_string());
    Ok((tables, summary))
}

/// How many runs have a worker thread that has not ended: a cancelled run's worker may finish
/// its current step in the background. Tests wait for 0 before they look at the files.
#[pyfunction]
fn _workers() -> usize {
    WORKERS.load(Ordering::SeqCst)
}

/// A table of `rows` rows (one Int64 column counting from 0), through the same export as every
/// table, with the address of that column's values on the Rust side: tests check that pyarrow
/// sees the same address, i.e. that nothing was copied.
#[pyfunction]
fn _export_probe(py: Python<'_>, rows: usize) -> PyResult<(Bound<'_, PyAny>, usize)> {
    let values = arrow_array::Int64Array::from_iter_values(0..rows as i64);
    let address = values.values().inner().as_ptr() as usize;
    let schema = Arc::new(Schema::new(vec![arrow_schema::Field::new(
        "row",
        arrow_schema::DataType::Int64,
        false,
    )]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(values)])
        .map_err(|err| pyo3::exceptions::PyValueError::new_err(err.to_string()))?;
    Ok((batch.to_pyarrow(py)?, address))
}

/// `table` as a pyarrow record batch, its provenance as schema metadata.
fn to_pyarrow<'py>(py: Python<'py>, table: &Table) -> PyResult<Bound<'py, PyAny>> {
    let batch = record_batch(table).map_err(|err| raise(py, &Error::input(err.to_string())))?;
    let schema = Schema::new(batch.schema().fields().clone()).with_metadata(
        table
            .provenance
            .pairs()
            .into_iter()
            .collect::<HashMap<_, _>>(),
    );
    let batch = batch
        .with_schema(Arc::new(schema))
        .map_err(|err| raise(py, &Error::input(err.to_string())))?;
    batch.to_pyarrow(py)
}

/// The engine's observer for a Python caller. Engine threads only store into it; the calling
/// thread reads it every [`POLL`] with the GIL held. When the run is cancelled, the next call
/// from the engine (each tile of the statistics pass, each matrix of the spectra) or the next
/// checkpoint inside a decomposition unwinds its thread with [`aib::observe::Cancelled`]; rayon
/// carries the unwinding to the run's caller, and the run's state is dropped. A download's
/// threads look at the cancellation themselves and stop with an error instead.
#[derive(Default)]
struct Relay {
    cancellation: Cancellation,
    /// The current phase: name, total and whether it counts bytes.
    phase: Mutex<Option<(String, u64, bool)>>,
    done: AtomicU64,
    warnings: Mutex<Vec<String>>,
}

impl Relay {
    /// Hands the current progress and the warnings since the last call to `reporter`.
    fn forward(&self, reporter: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let Some(reporter) = reporter else {
            return Ok(());
        };
        let warnings = std::mem::take(&mut *aib::sync::lock(&self.warnings));
        for warning in warnings {
            reporter.call_method1("warn", (warning,))?;
        }
        let phase = aib::sync::lock(&self.phase).clone();
        if let Some((name, total, bytes)) = phase {
            let done = self.done.load(Ordering::Relaxed);
            reporter.call_method1("progress", (name, total, done, bytes))?;
        }
        Ok(())
    }
}

impl Observer for Relay {
    fn phase(&self, name: &str, total: u64, quantity: Quantity) {
        self.cancellation.check();
        *aib::sync::lock(&self.phase) =
            Some((name.to_string(), total, quantity == Quantity::Bytes));
        self.done.store(0, Ordering::Relaxed);
    }

    fn advance(&self, amount: u64) {
        self.cancellation.check();
        self.done.fetch_add(amount, Ordering::Relaxed);
    }

    /// Counts toward the phase without a check: the threads of a download must not unwind (the
    /// others would wait for their chunks); they stop on the cancellation themselves.
    fn part_advanced(&self, _name: &str, amount: u64) {
        self.done.fetch_add(amount, Ordering::Relaxed);
    }

    fn warn(&self, message: &str) {
        aib::sync::lock(&self.warnings).push(message.to_string());
    }

    fn detail(&self, _message: &str) {}

    fn finish(&self) {}

    fn cancellation(&self) -> Option<&Cancellation> {
        Some(&self.cancellation)
    }
}

/// Runs `work` on a worker thread with the GIL released; this thread forwards progress to
/// `reporter` and checks for signals every [`POLL`]. A KeyboardInterrupt (or an exception from
/// `reporter`) cancels the run, waits up to [`GRACE`] for the worker and is raised.
///
/// The worker is not joined: a step that does not look at the cancellation (one call into faer,
/// a network read) runs to its end in the background, then the worker stops at its next check.
/// It owns everything it uses, and a cancelled run puts no file in place (see
/// [`aib::observe::Cancellation::commit`]), so nothing appears after the exception.
fn run_cancellable<T: Send + 'static>(
    py: Python<'_>,
    reporter: Option<&Bound<'_, PyAny>>,
    work: impl FnOnce(&Relay) -> aib::error::Result<T> + Send + 'static,
) -> PyResult<T> {
    let relay = Arc::new(Relay::default());
    let (done_tx, done_rx) = mpsc::channel();
    // Behind a mutex only to lend it to the GIL-free closures (a receiver is not `Sync`).
    let done_rx = Mutex::new(done_rx);
    let worker_relay = Arc::clone(&relay);
    WORKERS.fetch_add(1, Ordering::SeqCst);
    let spawned = std::thread::Builder::new()
        .name("aib-run".to_string())
        .spawn(move || {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| work(worker_relay.as_ref())));
            // The caller may be gone (a cancelled run): then the outcome is dropped here.
            let _ = done_tx.send(outcome);
            WORKERS.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(err) = spawned {
        WORKERS.fetch_sub(1, Ordering::SeqCst);
        return Err(raise(
            py,
            &Error::new(ErrorKind::Io, format!("cannot start a thread: {err}")),
        ));
    }
    let outcome = loop {
        let received = py.detach(|| aib::sync::lock(&done_rx).recv_timeout(POLL));
        let interrupted = relay.forward(reporter).and_then(|()| py.check_signals());
        if let Err(err) = interrupted {
            py.detach(|| {
                relay.cancellation.cancel();
                let _ = aib::sync::lock(&done_rx).recv_timeout(GRACE);
            });
            return Err(err);
        }
        match received {
            Ok(outcome) => break outcome,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            // The worker sends its outcome before it ends, whatever happens in the run.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "aib's worker thread ended without an outcome",
                ));
            }
        }
    };
    match outcome {
        Ok(result) => result.map_err(|err| raise(py, &err)),
        // A panic of the engine (a bug): pyo3 turns it into a PanicException. `Cancelled` cannot
        // be the payload here: a cancelled run returned above.
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// The Python exception for `err`: the class of `aib` that follows its exit code, with its
/// one-line message.
fn raise(py: Python<'_>, err: &Error) -> PyErr {
    let class = match err.kind() {
        ErrorKind::Usage => "UsageError",
        ErrorKind::Input => "InputError",
        ErrorKind::Network => "NetworkError",
        ErrorKind::Io => "IoError",
    };
    match py.import("aib").and_then(|module| module.getattr(class)) {
        Ok(class) => PyErr::from_type(
            class.cast_into().expect("aib's error classes are types"),
            err.message().to_string(),
        ),
        Err(import_error) => import_error,
    }
}

/// The native half of `aib`.
#[pymodule]
fn _aib(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(main, module)?)?;
    module.add_function(wrap_pyfunction!(written_path, module)?)?;
    module.add_function(wrap_pyfunction!(documents, module)?)?;
    module.add_function(wrap_pyfunction!(_export_probe, module)?)?;
    module.add_function(wrap_pyfunction!(_workers, module)?)?;
    Ok(())
}
