//! What a fetch shows while it runs: one progress bar per active file plus a total (bytes/s, ETA)
//! when stderr is a terminal, one line per file when verbose, nothing when quiet.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How much a fetch tells on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Errors only.
    Quiet,
    /// Progress bars when stderr is a terminal.
    Normal,
    /// Progress bars and one line per file.
    Verbose,
}

/// The progress display of one fetch.
pub struct FetchProgress {
    multi: Option<MultiProgress>,
    total: Option<ProgressBar>,
    verbose: bool,
}

impl FetchProgress {
    /// A display for `total_bytes` to fetch; bars only when `bars` (stderr is a terminal).
    pub fn new(verbosity: Verbosity, bars: bool, total_bytes: u64) -> FetchProgress {
        let show_bars = bars && verbosity != Verbosity::Quiet;
        let multi =
            show_bars.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let total = multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(total_bytes));
            bar.set_style(style(
                "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {prefix}",
            ));
            bar.set_prefix("total");
            bar
        });
        FetchProgress {
            multi,
            total,
            verbose: verbosity == Verbosity::Verbose,
        }
    }

    /// A bar for one file of `size` bytes (when known).
    pub fn start_file(&self, path: &str, size: Option<u64>) -> FileProgress {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.insert_from_back(1, ProgressBar::new(size.unwrap_or(0)));
            bar.set_style(style(
                "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {prefix}",
            ));
            bar.set_prefix(path.to_string());
            bar
        });
        FileProgress {
            bar,
            total: self.total.clone(),
        }
    }

    /// Counts `bytes` of a file that was already on disk towards the total.
    pub fn skip(&self, bytes: u64) {
        if let Some(total) = &self.total {
            total.inc(bytes);
        }
    }

    /// A line about one file, shown when verbose.
    pub fn note(&self, line: &str) {
        if !self.verbose {
            return;
        }
        match &self.multi {
            // Printing through indicatif keeps the bars intact.
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some(total) = &self.total {
            total.finish_and_clear();
        }
    }
}

/// The bar of one file; bytes also advance the total.
pub struct FileProgress {
    bar: Option<ProgressBar>,
    total: Option<ProgressBar>,
}

impl FileProgress {
    /// Counts `bytes` more received (or found already on disk).
    pub fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
        if let Some(total) = &self.total {
            total.inc(bytes);
        }
    }
}

impl Drop for FileProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}
