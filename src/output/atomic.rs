//! Output files written to a temporary name beside the target and renamed when complete, so an
//! interrupted run never leaves a half-written file that looks complete.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Creates `path` atomically with the bytes `write` produces. Missing parent folders are created.
/// The file gets the usual permissions (0666 less the umask), like any file the user creates.
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
    let result = write_and_sync(file, write).map_err(|err| Error::io("writing", path, err));
    let result = result.and_then(|()| {
        fs::rename(&temporary, path)
            .map_err(|err| Error::io("renaming the finished output to", path, err))
    });
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// A new file `.{name}.{pid}.{n}.partial` beside the target.
fn create_temporary(folder: &Path, path: &Path) -> Result<(PathBuf, File)> {
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
            Ok(file) => return Ok((temporary, file)),
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
