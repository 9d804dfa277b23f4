//! Progress on stderr, the command line's [`Observer`]: a bar when stderr is a terminal, log lines
//! with `--verbose`, nothing with `--quiet`; warnings always.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::observe::{Observer, Quantity};

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

    fn start(&self, phase: &str, total: u64, template: &str) {
        if let Ok(style) = ProgressStyle::with_template(template) {
            self.bar.set_style(style.progress_chars("=> "));
        }
        self.bar.set_message(phase.to_string());
        self.bar.set_length(total);
        self.bar.set_position(0);
    }
}

impl Observer for Progress {
    fn phase(&self, name: &str, total: u64, quantity: Quantity) {
        let template = match quantity {
            Quantity::Bytes => {
                "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            }
            Quantity::Items => "{msg:>10} [{bar:40}] {pos}/{len} eta {eta}",
        };
        self.start(name, total, template);
    }

    fn advance(&self, amount: u64) {
        self.bar.inc(amount);
    }

    /// Printed even when quiet: it concerns the numbers.
    fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("aib: warning: {message}"));
    }

    fn detail(&self, message: &str) {
        if self.verbose {
            self.bar.suspend(|| eprintln!("aib: {message}"));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
