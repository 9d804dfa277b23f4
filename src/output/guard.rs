//! An output must never replace one of the files it was computed from: `--out` naming the
//! checkpoint (or its config or tokenizer) would swap the model for a table and still succeed.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A usage error when `out` is the same file as one of `inputs`: same device and inode, after
/// following links, so a second name, a relative path or a symlink to the input is caught too.
/// An output that does not exist yet is no input.
pub fn refuse_overwriting_inputs(out: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(target) = std::fs::metadata(out) else {
        return Ok(());
    };
    let identity = (target.dev(), target.ino());
    for input in inputs {
        let same =
            std::fs::metadata(input).is_ok_and(|input| (input.dev(), input.ino()) == identity);
        if same {
            return Err(Error::usage(format!(
                "--out {} is the model's own file {}: refusing to overwrite an input",
                out.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_is_refused_by_any_name() {
        let folder = tempfile::tempdir().expect("temp dir");
        let model = folder.path().join("model.safetensors");
        std::fs::write(&model, b"weights").expect("write");
        let link = folder.path().join("link.csv");
        std::os::unix::fs::symlink(&model, &link).expect("symlink");
        let hard = folder.path().join("hard.csv");
        std::fs::hard_link(&model, &hard).expect("hard link");
        let inputs = [model.clone()];
        for out in [
            model.clone(),
            link,
            hard,
            folder.path().join("./model.safetensors"),
        ] {
            let err = refuse_overwriting_inputs(&out, &inputs).expect_err("an input");
            assert_eq!(err.kind(), crate::error::ErrorKind::Usage, "{err}");
        }
        let other = folder.path().join("stats.csv");
        refuse_overwriting_inputs(&other, &inputs).expect("a new file");
        std::fs::write(&other, b"old table").expect("write");
        refuse_overwriting_inputs(&other, &inputs).expect("another file");
    }
}
