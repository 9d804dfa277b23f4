//! How long-running library work reports what it is doing, without printing.
//!
//! Every long-running call (the statistics pass, the layers pass, k-means and its sweep, a Hub
//! fetch) reports to one [`Observer`]: a phase starts with a total, work advances (as a whole, or
//! by named parts such as the files of a download), a warning or a detail is worth telling. The
//! command line implements it once with progress bars on stderr, as ripgrep's searcher reports to
//! a `Sink` that its printer implements; tests and library callers pass [`Silent`].
//!
//! A front end that can cancel a run (the Python module, on Ctrl-C) gives its observer a
//! [`Cancellation`]. The observer's own methods check it between matrices and tiles; inside one
//! long decomposition the spectral code calls [`checkpoint`] between its blocks and panels, which
//! checks the flag that [`cancellable`] set for the work on its thread. A cancelled run puts no
//! output in place: writers commit (rename a finished file into place) through [`commit`] or
//! [`Cancellation::commit`], which a cancel waits for and which refuse once it is raised.

use std::cell::RefCell;
use std::panic;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// What a phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Bytes of weights read, or of files downloaded.
    Bytes,
    /// Items done: matrices, sweep steps, iterations.
    Items,
}

/// Receives progress, warnings and details from long-running work. Every method does nothing
/// unless implemented, so an observer implements only what it shows.
///
/// Methods may be called from several threads at once, hence `Sync`; they should return quickly,
/// as the work waits for them.
pub trait Observer: Sync {
    /// A phase called `name` starts, with `total` units of `quantity` to do.
    fn phase(&self, name: &str, total: u64, quantity: Quantity) {
        let _ = (name, total, quantity);
    }

    /// `amount` more units of the current phase are done.
    fn advance(&self, amount: u64) {
        let _ = amount;
    }

    /// A part of the current phase called `name` (a file of a download) starts: `size` units of
    /// the phase, when known.
    fn part_started(&self, name: &str, size: Option<u64>) {
        let _ = (name, size);
    }

    /// `amount` more units of part `name` are done; they count toward the phase as well.
    fn part_advanced(&self, name: &str, amount: u64) {
        let _ = (name, amount);
    }

    /// Part `name` ended, whether it succeeded or not.
    fn part_finished(&self, name: &str) {
        let _ = name;
    }

    /// Something about the results the user must know that does not stop the work (a matrix
    /// skipped, a value excluded, a file passed over).
    fn warn(&self, message: &str) {
        let _ = message;
    }

    /// A detail for verbose runs (which file and tensor is read, what happened to one file).
    fn detail(&self, message: &str) {
        let _ = message;
    }

    /// All phases are done, whether the work succeeded or not.
    fn finish(&self) {}

    /// The flag that cancels this run, for the [`checkpoint`]s of the work [`cancellable`] runs;
    /// `None` for a run that cannot be cancelled.
    fn cancellation(&self) -> Option<&Cancellation> {
        None
    }
}

/// A flag that stops a run: raised once, it makes every later check unwind the checking thread
/// with a [`Cancelled`] payload, which the front end that raised it catches where the run began.
/// rayon carries the unwinding from its workers to the caller; the run's state is dropped.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<CancellationState>);

#[derive(Debug, Default)]
struct CancellationState {
    cancelled: AtomicBool,
    /// Held while an output is put in place and while the flag is raised, so the two never
    /// overlap.
    commits: Mutex<()>,
}

impl Cancellation {
    /// Asks the run to stop at its next check. Waits for an output being put in place: once this
    /// returns, the run puts no more outputs in place (see [`Cancellation::commit`]).
    pub fn cancel(&self) {
        let _commits = lock(&self.0.commits);
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether the run was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// Unwinds with [`Cancelled`] when the run was asked to stop.
    pub fn check(&self) {
        if self.is_cancelled() {
            // `resume_unwind`, not `panic!`: no panic hook runs, so nothing is printed.
            panic::resume_unwind(Box::new(Cancelled));
        }
    }

    /// Runs `put_in_place` (the step that makes a finished output visible, such as the rename of
    /// a complete temporary file) unless the run was asked to stop; `None` when it was, and then
    /// nothing ran. A [`Cancellation::cancel`] waits for a commit under way.
    pub fn commit<T>(&self, put_in_place: impl FnOnce() -> T) -> Option<T> {
        let _commits = lock(&self.0.commits);
        (!self.is_cancelled()).then(put_in_place)
    }
}

/// The payload a cancelled run unwinds with.
#[derive(Debug)]
pub struct Cancelled;

thread_local! {
    /// The cancellation [`checkpoint`] checks on this thread, set by [`cancellable`].
    static CURRENT: RefCell<Option<Cancellation>> = const { RefCell::new(None) };
}

/// Runs `work`, whose [`checkpoint`]s on this thread check `observer`'s cancellation.
pub fn cancellable<T>(observer: &dyn Observer, work: impl FnOnce() -> T) -> T {
    let Some(cancellation) = observer.cancellation() else {
        return work();
    };
    let _restore = Restore(CURRENT.replace(Some(cancellation.clone())));
    work()
}

/// Runs `work` on `pool` under the cancellation [`cancellable`] set up on this thread, so the
/// [`checkpoint`]s of a run given its own pool (`--threads N`) stop it as on the caller's thread.
pub fn install<T: Send>(pool: &rayon::ThreadPool, work: impl FnOnce() -> T + Send) -> T {
    let cancellation = CURRENT.with_borrow(Clone::clone);
    pool.install(move || {
        let _restore = Restore(CURRENT.replace(cancellation));
        work()
    })
}

/// Puts back the cancellation of an enclosing call (rayon may run one matrix's work on a thread
/// that waits inside another's), also when the work unwinds.
struct Restore(Option<Cancellation>);

impl Drop for Restore {
    fn drop(&mut self) {
        CURRENT.set(self.0.take());
    }
}

/// A point in a long computation (between two blocks of a Gram matrix, two panels of a
/// reduction) where a run may stop: unwinds when the run [`cancellable`] set up on this thread
/// was cancelled, and costs a thread-local read otherwise.
pub fn checkpoint() {
    CURRENT.with_borrow(|current| {
        if let Some(cancellation) = current {
            cancellation.check();
        }
    });
}

/// Runs `put_in_place` as [`Cancellation::commit`] does for the run [`cancellable`] set up on
/// this thread; outside such a run, always.
pub fn commit<T>(put_in_place: impl FnOnce() -> T) -> Option<T> {
    let cancellation = CURRENT.with_borrow(Clone::clone);
    match cancellation {
        Some(cancellation) => cancellation.commit(put_in_place),
        None => Some(put_in_place()),
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

#[cfg(test)]
mod tests {
    use super::*;

    /// An observer whose run is already cancelled.
    struct Cancelling(Cancellation);

    impl Observer for Cancelling {
        fn cancellation(&self) -> Option<&Cancellation> {
            Some(&self.0)
        }
    }

    fn stopped(work: impl FnOnce()) -> bool {
        let outcome = panic::catch_unwind(panic::AssertUnwindSafe(work));
        matches!(outcome, Err(payload) if payload.is::<Cancelled>())
    }

    #[test]
    fn a_checkpoint_on_a_pool_of_its_own_sees_the_callers_cancellation() {
        let observer = Cancelling(Cancellation::default());
        observer.0.cancel();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let carried = || install(&pool, checkpoint);
        assert!(stopped(|| cancellable(&observer, carried)));
        // The pool's thread goes back to no cancellation once the work is done.
        assert!(!stopped(|| pool.install(checkpoint)));
        // A plain `install` does not carry it: the reason `install` exists.
        let plain = || pool.install(checkpoint);
        assert!(!stopped(|| cancellable(&observer, plain)));
    }

    #[test]
    fn a_checkpoint_outside_a_cancellable_run_never_stops() {
        assert!(!stopped(checkpoint));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert!(!stopped(|| install(&pool, checkpoint)));
    }
}
