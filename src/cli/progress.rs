//! What a command shows on stderr while it runs: progress bars when stderr is a terminal, one
//! line per event with `--verbose`, nothing but errors with `--quiet`. The library reports
//! events to an [`Observer`]; this module is the one that draws them.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::observe::{Observer, Quantity};
use crate::output::terminal::escape_controls;
use crate::sync::lock;

/// How much a command tells on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Progress bars when stderr is a terminal.
    Normal,
    /// Progress bars and a line per event.
    Verbose,
}

impl Verbosity {
    /// The verbosity `--quiet` and `--verbose` ask for (clap keeps them exclusive).
    pub fn from_flags(quiet: bool, verbose: bool) -> Verbosity {
        if quiet {
            Verbosity::Quiet
        } else if verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        }
    }
}

/// What one command shows on stderr: the bar of the current phase (restyled for each phase,
/// counting bytes or items), a bar per part under way above it (the files of a download), and
/// the warnings and, when verbose, the details. The library's [`Observer`], implemented once.
pub struct ProgressDisplay {
    /// `None` when no bars are drawn (quiet, or stderr is not a terminal).
    bars: Option<MultiProgress>,
    verbose: bool,
    /// The bar of the current phase, when bars are drawn.
    phase: Option<ProgressBar>,
    /// The bars of the parts under way, by name.
    parts: Mutex<HashMap<String, ProgressBar>>,
}

impl ProgressDisplay {
    /// A display at `verbosity`; it draws bars only when `terminal` (stderr is one).
    pub fn new(verbosity: Verbosity, terminal: bool) -> ProgressDisplay {
        let drawn = terminal && verbosity != Verbosity::Quiet;
        let target = drawn.then(ProgressDrawTarget::stderr);
        ProgressDisplay::with_target(target, verbosity)
    }

    /// A display drawing its bars on `target` (`None`: no bars).
    fn with_target(target: Option<ProgressDrawTarget>, verbosity: Verbosity) -> ProgressDisplay {
        let bars = target.map(MultiProgress::with_draw_target);
        let phase = bars
            .as_ref()
            .map(|bars| bars.add(styled_bar(0, "{msg}", "")));
        ProgressDisplay {
            bars,
            verbose: verbosity == Verbosity::Verbose,
            phase,
            parts: Mutex::new(HashMap::new()),
        }
    }

    /// Prints one line on stderr; names in it (tensors, files) may hold control characters, so
    /// they are shown escaped.
    fn print(&self, line: &str) {
        let line = escape_controls(line);
        let line = line.as_ref();
        match &self.bars {
            // Printing through indicatif keeps the bars intact.
            Some(bars) => {
                let _ = bars.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

fn styled_bar(length: u64, template: &str, prefix: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    let bar = ProgressBar::new(length).with_style(style);
    bar.set_prefix(prefix.to_string());
    bar
}

impl Observer for ProgressDisplay {
    fn phase(&self, name: &str, total: u64, quantity: Quantity) {
        let Some(bar) = &self.phase else {
            return;
        };
        let template = match quantity {
            Quantity::Bytes => {
                "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
            }
            Quantity::Items => "{msg:>10} [{bar:40}] {pos}/{len} eta {eta}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(name.to_string());
        bar.set_length(total);
        bar.set_position(0);
    }

    fn advance(&self, amount: u64) {
        if let Some(bar) = &self.phase {
            bar.inc(amount);
        }
    }

    fn part_started(&self, name: &str, size: Option<u64>) {
        let Some(bars) = &self.bars else {
            return;
        };
        let template = "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {prefix}";
        // Above the phase's bar, which stays last.
        let bar = bars.insert_from_back(
            1,
            styled_bar(size.unwrap_or(0), template, &escape_controls(name)),
        );
        lock(&self.parts).insert(name.to_string(), bar);
    }

    fn part_advanced(&self, name: &str, amount: u64) {
        if let Some(bar) = lock(&self.parts).get(name) {
            bar.inc(amount);
        }
        self.advance(amount);
    }

    fn part_finished(&self, name: &str) {
        if let Some(bar) = lock(&self.parts).remove(name) {
            bar.finish_and_clear();
        }
    }

    /// Prints `aib: warning: {message}`, even when quiet: a warning concerns the result.
    fn warn(&self, message: &str) {
        self.print(&format!("aib: warning: {message}"));
    }

    /// Prints `aib: {message}` when verbose, above the bars.
    fn detail(&self, message: &str) {
        if self.verbose {
            self.print(&format!("aib: {message}"));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.phase {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A display that keeps its bars without drawing them.
    fn undrawn(verbosity: Verbosity) -> ProgressDisplay {
        ProgressDisplay::with_target(Some(ProgressDrawTarget::hidden()), verbosity)
    }

    #[test]
    fn the_total_counts_skipped_and_received_bytes_and_file_bars_go_when_done() {
        let display = undrawn(Verbosity::Normal);
        display.phase("download", 100, Quantity::Bytes);
        display.advance(30);
        display.part_started("b.bin", Some(70));
        display.part_advanced("b.bin", 20);
        display.part_advanced("b.bin", 50);
        let file_position = lock(&display.parts)["b.bin"].position();
        assert_eq!(file_position, 70);
        let total = display.phase.as_ref().expect("a total bar");
        assert_eq!(total.position(), 100);
        display.part_finished("b.bin");
        assert!(lock(&display.parts).is_empty());
        display.finish();
        assert!(total.is_finished());
    }

    #[test]
    fn without_a_terminal_or_when_quiet_no_bar_is_made() {
        for (verbosity, terminal) in [(Verbosity::Normal, false), (Verbosity::Quiet, true)] {
            let display = ProgressDisplay::new(verbosity, terminal);
            display.phase("download", 10, Quantity::Bytes);
            display.part_started("a", Some(10));
            display.part_advanced("a", 10);
            assert!(display.phase.is_none());
            assert!(lock(&display.parts).is_empty());
        }
    }

    #[test]
    fn flags_pick_the_verbosity() {
        assert_eq!(Verbosity::from_flags(true, false), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(false, false), Verbosity::Normal);
        assert_eq!(Verbosity::from_flags(false, true), Verbosity::Verbose);
    }
}
