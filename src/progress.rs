//! Progress on stderr: a bar when stderr is a terminal, log lines with `--verbose`, nothing with
//! `--quiet`.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display shared by the phases of one command.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    verbose: bool,
}

impl Progress {
    /// A display that draws only when stderr is a terminal and `quiet` is off.
    pub fn new(quiet: bool, verbose: bool) -> Progress {
        let bar = ProgressBar::hidden();
        if !quiet && std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Progress { bar, verbose }
    }

    /// A display that never draws or logs (tests, library use).
    pub fn silent() -> Progress {
        Progress {
            bar: ProgressBar::hidden(),
            verbose: false,
        }
    }

    /// Starts a phase counting `total` bytes.
    pub fn start_bytes(&self, phase: &str, total: u64) {
        self.start(
            phase,
            total,
            "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        );
    }

    /// Starts a phase counting `total` items.
    pub fn start_items(&self, phase: &str, total: u64) {
        self.start(phase, total, "{msg:>10} [{bar:40}] {pos}/{len} eta {eta}");
    }

    fn start(&self, phase: &str, total: u64, template: &str) {
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(phase.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }

    /// Advances the current phase.
    pub fn advance(&self, amount: u64) {
        self.bar.inc(amount);
    }

    /// Prints `message` on stderr when verbose, above the bar.
    pub fn log(&self, message: &str) {
        if self.verbose {
            self.bar.suspend(|| eprintln!("aib: {message}"));
        }
    }

    /// Prints a warning on stderr (always, even when quiet: it concerns the numbers).
    pub fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("aib: warning: {message}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
