//! The one error type of aib: a message that names its subject, and a kind that picks the exit code.

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
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// Result with aib's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of the given kind with a complete message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
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
        Error::new(ErrorKind::Io, format!("{action} {}: {err}", path.display()))
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
            kind: self.kind,
            message: format!("{context}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
