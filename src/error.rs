//! The one error type of aib: a message that names its subject, a kind that picks the exit code,
//! and the underlying error it came from, when there is one.

use std::fmt;
use std::path::Path;

/// What went wrong, coarsely: it decides the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line asks for something impossible (exit 2).
    Usage,
    /// A model file, index or config is missing, malformed or lies about itself (exit 3).
    Input,
    /// The network or a remote server failed (exit 4).
    Network,
    /// Reading or writing local files failed: permissions, a full disk (exit 5).
    Io,
}

impl ErrorKind {
    /// The process exit code for this kind, as documented in the README.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage => 2,
            ErrorKind::Input => 3,
            ErrorKind::Network => 4,
            ErrorKind::Io => 5,
        }
    }
}

/// An error with a one-line message that already names the file, tensor or URL it is about.
///
/// The message is complete for a reader; the cause, when the error came from another one (an I/O
/// error, a JSON parse error), is kept as [`std::error::Error::source`] so that callers can act on
/// it by type, as [`Error::is_broken_pipe`] does, never by matching message text.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Result with aib's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of the given kind with a complete message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error, recording `source` as its cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// A bad command line.
    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, message)
    }

    /// Bad input data (a model file, index, config).
    pub fn input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Input, message)
    }

    /// A network failure.
    pub fn network(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Network, message)
    }

    /// A local I/O failure on `path`, e.g. `Error::io("writing", path, err)`.
    pub fn io(action: &str, path: &Path, err: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, format!("{action} {}: {err}", path.display())).with_source(err)
    }

    /// A failure to read the text file at `path`: bytes that are not UTF-8 make the file
    /// malformed input (exit 3, as truncated JSON is); anything else is local I/O (exit 5).
    pub fn reading_text(path: &Path, err: std::io::Error) -> Error {
        if err.kind() == std::io::ErrorKind::InvalidData {
            return Error::input(format!("{}: not UTF-8 text: {err}", path.display()))
                .with_source(err);
        }
        Error::io("reading", path, err)
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `context` put in front of its message.
    pub fn context(self, context: impl fmt::Display) -> Error {
        Error {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }

    /// True when this is a local I/O error whose chain of causes holds an I/O error of kind
    /// `BrokenPipe`: the reader of our output went away (`aib stats | head`), a normal end.
    /// A network error never is, whatever its socket said.
    pub fn is_broken_pipe(&self) -> bool {
        if self.kind != ErrorKind::Io {
            return false;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(error) = cause {
            if let Some(io) = error.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return true;
            }
            cause = error.source();
        }
        false
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_its_cause_and_finds_a_broken_pipe_by_kind() {
        let pipe = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        let error = Error::io("writing", Path::new("<stdout>"), pipe).context("stats");
        assert!(error.is_broken_pipe());
        assert_eq!(error.message(), "stats: writing <stdout>: gone");
        assert!(std::error::Error::source(&error).is_some());

        // Bytes that are not UTF-8 are bad input, a missing file is local I/O.
        let folder = tempfile::tempdir().expect("temp dir");
        let latin1 = folder.path().join("config.json");
        std::fs::write(&latin1, b"{\"model_type\": \"caf\xe9\"}").expect("write");
        let read =
            |path: &Path| std::fs::read_to_string(path).map_err(|e| Error::reading_text(path, e));
        assert_eq!(read(&latin1).unwrap_err().kind(), ErrorKind::Input);
        let absent = folder.path().join("absent.json");
        assert_eq!(read(&absent).unwrap_err().kind(), ErrorKind::Io);

        // The words alone are not enough: only the kind counts.
        let other = std::io::Error::other("Broken pipe");
        assert!(!Error::io("writing", Path::new("out.csv"), other).is_broken_pipe());
        assert!(!Error::input("Broken pipe").is_broken_pipe());
        let socket = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "reset");
        assert!(
            !Error::network("fetching")
                .with_source(socket)
                .is_broken_pipe()
        );
    }
}
