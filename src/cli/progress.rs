//! What a command shows on stderr while it runs: progress bars when stderr is a terminal, one
//! line per event with `--verbose`, nothing but errors with `--quiet`. The library reports
//! events to observers; this module is the one that draws them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::hub::observer::FetchObserver;
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

/// The bars and lines of one command on stderr.
pub struct ProgressDisplay {
    /// `None` when no bars are drawn (quiet, or stderr is not a terminal).
    bars: Option<MultiProgress>,
    verbose: bool,
}

impl ProgressDisplay {
    /// A display at `verbosity`; it draws bars only when `terminal` (stderr is one).
    pub fn new(verbosity: Verbosity, terminal: bool) -> ProgressDisplay {
        let drawn = terminal && verbosity != Verbosity::Quiet;
        ProgressDisplay {
            bars: drawn.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            verbose: verbosity == Verbosity::Verbose,
        }
    }

    /// A bar of `length` drawn with `template` (indicatif's syntax) below the others, or `None`
    /// when no bars are drawn.
    pub fn add_bar(&self, length: u64, template: &str, prefix: &str) -> Option<ProgressBar> {
        self.bars
            .as_ref()
            .map(|bars| bars.add(styled_bar(length, template, prefix)))
    }

    /// Like [`ProgressDisplay::add_bar`], but placed above the last bar (a file's bar above the total).
    pub fn insert_bar_above_last(
        &self,
        length: u64,
        template: &str,
        prefix: &str,
    ) -> Option<ProgressBar> {
        self.bars
            .as_ref()
            .map(|bars| bars.insert_from_back(1, styled_bar(length, template, prefix)))
    }

    /// Prints `line` when verbose, above the bars.
    pub fn verbose_line(&self, line: &str) {
        if self.verbose {
            self.print(line);
        }
    }

    /// Prints `aib: warning: {message}`, even when quiet: a warning concerns the result.
    pub fn warning(&self, message: &str) {
        self.print(&format!("aib: warning: {message}"));
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

/// A model command's phases on stderr (statistics, spectra, sweeps): one bar, restyled for each
/// phase, counting bytes or items; the engine's [`Observer`].
pub struct PhaseDisplay {
    display: ProgressDisplay,
    bar: Option<ProgressBar>,
}

impl PhaseDisplay {
    /// A phase display on `display`.
    pub fn new(display: ProgressDisplay) -> PhaseDisplay {
        let bar = display.add_bar(0, "{msg}", "");
        PhaseDisplay { display, bar }
    }
}

impl Observer for PhaseDisplay {
    fn phase(&self, name: &str, total: u64, quantity: Quantity) {
        let Some(bar) = &self.bar else {
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
        if let Some(bar) = &self.bar {
            bar.inc(amount);
        }
    }

    fn warn(&self, message: &str) {
        self.display.warning(message);
    }

    fn detail(&self, message: &str) {
        self.display.verbose_line(&format!("aib: {message}"));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `aib fetch` on stderr: one bar per file being downloaded plus a total (bytes/s, ETA), and the
/// hub's notes when verbose.
pub struct FetchDisplay {
    display: ProgressDisplay,
    total: OnceLock<ProgressBar>,
    /// The bars of the files being downloaded, by repo path.
    files: Mutex<HashMap<String, ProgressBar>>,
}

impl FetchDisplay {
    /// A fetch display on `display`.
    pub fn new(display: ProgressDisplay) -> FetchDisplay {
        FetchDisplay {
            display,
            total: OnceLock::new(),
            files: Mutex::new(HashMap::new()),
        }
    }

    fn advance_total(&self, bytes: u64) {
        if let Some(total) = self.total.get() {
            total.inc(bytes);
        }
    }
}

impl FetchObserver for FetchDisplay {
    fn fetch_started(&self, total_bytes: u64) {
        let template = "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {prefix}";
        if let Some(bar) = self.display.add_bar(total_bytes, template, "total") {
            let _ = self.total.set(bar);
        }
    }

    fn file_started(&self, path: &str, size: Option<u64>) {
        let template = "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {prefix}";
        if let Some(bar) =
            self.display
                .insert_bar_above_last(size.unwrap_or(0), template, &escape_controls(path))
        {
            lock(&self.files).insert(path.to_string(), bar);
        }
    }

    fn file_advanced(&self, path: &str, bytes: u64) {
        if self.total.get().is_none() {
            return;
        }
        if let Some(bar) = lock(&self.files).get(path) {
            bar.inc(bytes);
        }
        self.advance_total(bytes);
    }

    fn file_skipped(&self, _path: &str, size: Option<u64>) {
        self.advance_total(size.unwrap_or(0));
    }

    fn file_finished(&self, path: &str) {
        if let Some(bar) = lock(&self.files).remove(path) {
            bar.finish_and_clear();
        }
    }

    fn note(&self, line: &str) {
        self.display.verbose_line(line);
    }

    fn warning(&self, message: &str) {
        self.display.warning(message);
    }

    fn fetch_finished(&self) {
        if let Some(total) = self.total.get() {
            total.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A display that keeps its bars without drawing them.
    fn undrawn(verbosity: Verbosity) -> ProgressDisplay {
        ProgressDisplay {
            bars: Some(MultiProgress::with_draw_target(ProgressDrawTarget::hidden())),
            verbose: verbosity == Verbosity::Verbose,
        }
    }

    #[test]
    fn the_total_counts_skipped_and_received_bytes_and_file_bars_go_when_done() {
        let display = FetchDisplay::new(undrawn(Verbosity::Normal));
        display.fetch_started(100);
        display.file_skipped("a.json", Some(30));
        display.file_started("b.bin", Some(70));
        display.file_advanced("b.bin", 20);
        display.file_advanced("b.bin", 50);
        let file_position = lock(&display.files)["b.bin"].position();
        assert_eq!(file_position, 70);
        let total = display.total.get().expect("a total bar");
        assert_eq!(total.position(), 100);
        display.file_finished("b.bin");
        assert!(lock(&display.files).is_empty());
        display.fetch_finished();
        assert!(total.is_finished());
    }

    #[test]
    fn without_a_terminal_or_when_quiet_no_bar_is_made() {
        for (verbosity, terminal) in [(Verbosity::Normal, false), (Verbosity::Quiet, true)] {
            let display = FetchDisplay::new(ProgressDisplay::new(verbosity, terminal));
            display.fetch_started(10);
            display.file_started("a", Some(10));
            display.file_advanced("a", 10);
            assert!(display.total.get().is_none());
            assert!(lock(&display.files).is_empty());
        }
    }

    #[test]
    fn flags_pick_the_verbosity() {
        assert_eq!(Verbosity::from_flags(true, false), Verbosity::Quiet);
        assert_eq!(Verbosity::from_flags(false, false), Verbosity::Normal);
        assert_eq!(Verbosity::from_flags(false, true), Verbosity::Verbose);
    }
}
