//! How long-running library work reports what it is doing, without printing.
//!
//! The engine (and every analysis built on it) calls an [`Observer`]: a phase starts with a total,
//! work advances, a warning or a detail is worth telling. The command line implements it once with
//! a progress bar on stderr, as ripgrep's searcher reports to a `Sink` that its printer implements;
//! tests and library callers pass [`Silent`].

/// What a phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Bytes of weights read.
    Bytes,
    /// Items done: matrices, sweep steps, iterations.
    Items,
}

/// Receives progress, warnings and details from long-running work. Every method may be called
/// from several threads at once.
pub trait Observer: Sync {
    /// A phase called `name` starts, with `total` units of `quantity` to do.
    fn phase(&self, name: &str, total: u64, quantity: Quantity);
    /// `amount` more units of the current phase are done.
    fn advance(&self, amount: u64);
    /// Something about the numbers the user must know (a matrix skipped, a value excluded).
    fn warn(&self, message: &str);
    /// A detail for verbose runs (which file and tensor is read).
    fn detail(&self, message: &str);
    /// All phases are done.
    fn finish(&self);
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {
    fn phase(&self, _name: &str, _total: u64, _quantity: Quantity) {}
    fn advance(&self, _amount: u64) {}
    fn warn(&self, _message: &str) {}
    fn detail(&self, _message: &str) {}
    fn finish(&self) {}
}
