//! What a fetch tells while it runs. The hub reports; whoever called it decides what to show
//! (the command line draws progress bars on a terminal), as ripgrep's searcher reports to a sink
//! that its printer implements.

/// Hears the events of one fetch. Every method does nothing unless implemented, so an observer
/// implements only what it shows.
///
/// Methods are called from several download threads at once, hence `Sync`; they should return
/// quickly, as a download waits for them.
pub trait FetchObserver: Sync {
    /// The download phase begins: the selected files hold `total_bytes` (the sum of the sizes
    /// the listing knows), including those already on disk.
    fn fetch_started(&self, total_bytes: u64) {
        let _ = total_bytes;
    }

    /// A download of `path` (`size` bytes, when known) begins.
    fn file_started(&self, path: &str, size: Option<u64>) {
        let _ = (path, size);
    }

    /// `bytes` more bytes of `path` are on disk: received, or found in the partial file a
    /// download resumes.
    fn file_advanced(&self, path: &str, bytes: u64) {
        let _ = (path, bytes);
    }

    /// `path` was complete on disk already: its `size` bytes count as done, none crossed the
    /// network.
    fn file_skipped(&self, path: &str, size: Option<u64>) {
        let _ = (path, size);
    }

    /// The download of `path` ended, whether it succeeded or not.
    fn file_finished(&self, path: &str) {
        let _ = path;
    }

    /// A line for a reader who asked for detail (`--verbose`): what happened to one file.
    fn note(&self, line: &str) {
        let _ = line;
    }

    /// Something the user should know that does not stop the fetch.
    fn warning(&self, message: &str) {
        let _ = message;
    }

    /// The download phase is over, whether it succeeded or not.
    fn fetch_finished(&self) {}
}
