//! Output files written to a temporary name beside the target and renamed when complete, so an
//! interrupted run never leaves a half-written file that looks complete, and a cancelled run
//! none at all.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::observe;

/// Creates `path` atomically with the bytes `write` produces. Missing parent folders are created.
/// The file gets the usual permissions (0666 less the umask), like any file the user creates.
///
/// In a run that can be cancelled (see [`crate::observe::cancellable`]), a cancelled run puts
/// nothing in place: its temporary file is removed, also when `write` unwinds.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<()> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&folder).map_err(|err| Error::io("creating output folder", &folder, err))?;
    let (temporary, file) = create_temporary(&folder, path)?;
    write_and_sync(file, write).map_err(|err| Error::io("writing", path, err))?;
    match observe::commit(|| fs::rename(&temporary.path, path)) {
        Some(Ok(())) => {
            temporary.placed();
            Ok(())
        }
        Some(Err(err)) => Err(Error::io("renaming the finished output to", path, err)),
        None => Err(Error::new(
            ErrorKind::Io,
            format!("{}: not written: the run was cancelled", path.display()),
        )),
    }
}

/// A temporary file beside an output, removed when dropped unless it was put in place: an error
/// or an unwinding cancellation leaves nothing behind.
struct Temporary {
    path: PathBuf,
    placed: bool,
}

impl Temporary {
    /// The file was renamed to its final name: nothing to remove.
    fn placed(mut self) {
        self.placed = true;
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.placed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A new file `.{name}.{pid}.{n}.partial` beside the target.
fn create_temporary(folder: &Path, path: &Path) -> Result<(Temporary, File)> {
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("output");
    let mut attempt = 0;
    loop {
        let temporary = folder.join(format!(".{name}.{}.{attempt}.partial", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
        {
            Ok(file) => {
                let temporary = Temporary {
                    path: temporary,
                    placed: false,
                };
                return Ok((temporary, file));
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1
            }
            Err(err) => return Err(Error::io("creating a temporary file in", folder, err)),
        }
    }
}

fn write_and_sync(
    file: File,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    write(&mut writer)?;
    let file = writer.into_inner().map_err(|err| err.into_error())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::{Cancellation, Cancelled, Observer};

    /// An observer whose run can be cancelled.
    #[derive(Default)]
    struct Cancellable(Cancellation);

    impl Observer for Cancellable {
        fn cancellation(&self) -> Option<&Cancellation> {
            Some(&self.0)
        }
    }

    /// The names in `folder`.
    fn names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(folder)
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_run_not_cancelled_puts_its_file_in_place() {
        let folder = tempfile::tempdir().expect("temp dir");
        let out = folder.path().join("page.html");
        let observer = Cancellable::default();
        observe::cancellable(&observer, || {
            write_atomically(&out, |writer| writer.write_all(b"page"))
        })
        .expect("written");
        assert_eq!(fs::read(&out).expect("read"), b"page");
        assert_eq!(names(folder.path()), ["page.html"]);
    }

    #[test]
    fn a_cancelled_run_writes_nothing_and_leaves_no_temporary_file() {
        let folder = tempfile::tempdir().expect("temp dir");
        let out = folder.path().join("page.html");
        let observer = Cancellable::default();
        // Cancelled while the bytes are written: the finished file is not put in place.
        let written = observe::cancellable(&observer, || {
            write_atomically(&out, |writer| {
                writer.write_all(b"page")?;
                observer.0.cancel();
                Ok(())
            })
        });
        let err = written.expect_err("cancelled");
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().contains("cancelled"), "{err}");
        assert!(
            names(folder.path()).is_empty(),
            "{:?}",
            names(folder.path())
        );
        // A cancellation that unwinds out of the writing removes the temporary file too.
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            observe::cancellable(&observer, || {
                write_atomically(&out, |writer| {
                    writer.write_all(b"page")?;
                    observer.0.check();
                    Ok(())
                })
            })
        }));
        let payload = unwound.expect_err("unwound");
        assert!(payload.is::<Cancelled>());
        assert!(
            names(folder.path()).is_empty(),
            "{:?}",
            names(folder.path())
        );
    }

    #[test]
    fn a_write_that_fails_leaves_no_temporary_file() {
        let folder = tempfile::tempdir().expect("temp dir");
        let out = folder.path().join("table.csv");
        let written = write_atomically(&out, |_| Err(std::io::Error::other("disk full")));
        assert!(written.is_err());
        assert!(
            names(folder.path()).is_empty(),
            "{:?}",
            names(folder.path())
        );
    }
}
