//! How long-running library work reports what it is doing, without printing.
//!
//! Every long-running call (the statistics pass, the layers pass, k-means and its sweep, a Hub
//! fetch) reports to one [`Observer`]: a phase starts with a total, work advances (as a whole, or
//! by named parts such as the files of a download), a warning or a detail is worth telling. The
//! command line implements it once with progress bars on stderr, as ripgrep's searcher reports to
//! a `Sink` that its printer implements; tests and library callers pass [`Silent`].

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
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}
