//! The Hub cache layout shared with the Hub's own Python client.
//!
//! ```text
//! {cache}/models--{org}--{name}/
//!     blobs/{etag}                      file contents
//!     refs/{branch}                     the commit a branch or tag points at
//!     snapshots/{commit}/{path}         relative symlinks into blobs/
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The Hub cache folder: `HF_HUB_CACHE`, else `HF_HOME/hub` (see [`hf_home`]).
pub fn cache_dir() -> Option<PathBuf> {
    cache_dir_from(&non_empty_env)
}

/// The Hub client's home folder, which holds the cache and the login token: `HF_HOME`, else
/// `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub fn hf_home() -> Option<PathBuf> {
    hf_home_from(&non_empty_env)
}

/// [`cache_dir`] with the environment read through `env`.
fn cache_dir_from(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HF_HUB_CACHE")
        .map(PathBuf::from)
        .or_else(|| hf_home_from(env).map(|home| home.join("hub")))
}

/// [`hf_home`] with the environment read through `env`, so that tests need not change the
/// process environment (shared by every test thread).
fn hf_home_from(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(home) = env("HF_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(cache) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(cache).join("huggingface"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".cache/huggingface"))
}

/// The value of the environment variable `name`; empty counts as unset, as the Hub's client
/// reads its variables.
pub fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// True when `id` has the shape of a Hub repo id: `name` or `org/name`, no other slashes.
pub fn looks_like_repo_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    let valid = |part: &&str| {
        !part.is_empty()
            && *part != "."
            && *part != ".."
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    (1..=2).contains(&parts.len()) && parts.iter().all(valid)
}

/// The folder of a model repo inside the cache: `models--{org}--{name}`.
pub fn repo_folder(cache: &Path, repo_id: &str) -> PathBuf {
    cache.join(format!("models--{}", repo_id.replace('/', "--")))
}

/// `(repo id, commit)` when `path` lies inside a snapshot of a cache laid out as above, e.g.
/// `…/models--Qwen--Qwen3-4B/snapshots/{commit}/model.safetensors`.
pub fn snapshot_identity(path: &Path) -> Option<(String, String)> {
    let absolute = std::fs::canonicalize(path).ok()?;
    let parts: Vec<&str> = absolute.iter().filter_map(|part| part.to_str()).collect();
    let at = parts.iter().rposition(|part| *part == "snapshots")?;
    let repo = parts.get(at.checked_sub(1)?)?.strip_prefix("models--")?;
    let commit = parts.get(at + 1)?;
    Some((repo.replacen("--", "/", 1), commit.to_string()))
}

/// A 40-hex-digit commit hash.
pub fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// Checks that `revision` is a commit hash or a name git accepts for a branch or tag
/// (`git check-ref-format`'s rules), which is what makes it safe to join to `refs/` as a path:
/// no `..`, no part starting with `.` or ending with `.lock`, no empty part or leading or trailing
/// `/`, no control characters, spaces or any of `~ ^ : ? * [ \`, no `@{`, not `@` alone.
/// A usage error (exit 2) names what is wrong.
pub fn check_revision(revision: &str) -> Result<()> {
    let refused = |why: &str| {
        Err(Error::usage(format!(
            "--revision {revision:?} is neither a commit hash nor a branch or tag name: {why}"
        )))
    };
    if revision.is_empty() {
        return refused("it is empty");
    }
    if revision == "@" || revision.contains("@{") {
        return refused("`@` alone and `@{` are not allowed");
    }
    if revision.contains("..") {
        return refused("`..` is not allowed");
    }
    if let Some(c) = revision
        .chars()
        .find(|&c| c.is_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\'))
    {
        return refused(&format!("the character {c:?} is not allowed"));
    }
    for part in revision.split('/') {
        if part.is_empty() {
            return refused("a leading, trailing or doubled `/`");
        }
        if part.starts_with('.') || part.ends_with('.') || part.ends_with(".lock") {
            return refused("a part starts or ends with `.` or ends with `.lock`");
        }
    }
    Ok(())
}

/// Resolves `revision` (a branch, tag or commit; `main` when `None`) of `repo_id` in `cache`
/// to its snapshot folder and commit, or says what is missing.
pub fn resolve_snapshot(
    cache: &Path,
    repo_id: &str,
    revision: Option<&str>,
) -> Result<(PathBuf, String)> {
    let repo = repo_folder(cache, repo_id);
    if !repo.is_dir() {
        return Err(Error::input(format!(
            "{repo_id}: not found in the Hub cache {} (run `aib fetch {repo_id}` first)",
            cache.display()
        )));
    }
    let revision = revision.unwrap_or("main");
    check_revision(revision)?;
    let commit = if is_commit_hash(revision) {
        revision.to_string()
    } else {
        let ref_path = repo.join("refs").join(revision);
        let text = std::fs::read_to_string(&ref_path).map_err(|err| {
            Error::input(format!(
                "{repo_id}: revision {revision:?} is not in the Hub cache ({}: {err})",
                ref_path.display()
            ))
            .with_source(err)
        })?;
        text.trim().to_string()
    };
    let snapshot = repo.join("snapshots").join(&commit);
    if !snapshot.is_dir() {
        return Err(Error::input(format!(
            "{repo_id}: snapshot {commit} is missing from the Hub cache ({})",
            snapshot.display()
        )));
    }
    Ok((snapshot, commit))
}

/// The branches and tags (`refs/{name}` files, those directly under `refs/`) of `repo_id` in
/// `cache`, by the commit each points at, names sorted; empty when the cache does not hold the
/// repo. The Hub cache is a convenience here: what cannot be read is simply not listed.
pub fn refs_by_commit(cache: &Path, repo_id: &str) -> BTreeMap<String, Vec<String>> {
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(repo_folder(cache, repo_id).join("refs")) else {
        return refs;
    };
    for entry in entries.flatten() {
        let (Ok(name), path) = (entry.file_name().into_string(), entry.path()) else {
            continue;
        };
        if let Ok(commit) = std::fs::read_to_string(&path) {
            refs.entry(commit.trim().to_string())
                .or_default()
                .push(name);
        }
    }
    for names in refs.values_mut() {
        names.sort();
    }
    refs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_listed_by_their_commit() {
        let cache = tempfile::tempdir().unwrap();
        let refs = repo_folder(cache.path(), "Org/Run").join("refs");
        std::fs::create_dir_all(refs.join("pr")).unwrap();
        for (name, commit) in [("main", "c2"), ("step2", "c2"), ("step1", "c1\n")] {
            std::fs::write(refs.join(name), commit).unwrap();
        }
        std::fs::write(refs.join("pr/1"), "c3").unwrap();
        let found = refs_by_commit(cache.path(), "Org/Run");
        let want = BTreeMap::from([
            ("c1".to_string(), vec!["step1".to_string()]),
            (
                "c2".to_string(),
                vec!["main".to_string(), "step2".to_string()],
            ),
        ]);
        assert_eq!(found, want);
        assert!(refs_by_commit(cache.path(), "Org/None").is_empty());
    }

    #[test]
    fn repo_ids_are_recognised() {
        assert!(looks_like_repo_id("Qwen/Qwen3-4B"));
        assert!(looks_like_repo_id("gpt2"));
        assert!(!looks_like_repo_id("a/b/c"));
        assert!(!looks_like_repo_id("../x"));
        assert!(!looks_like_repo_id("/abs/path"));
    }

    #[test]
    fn hf_home_and_the_cache_follow_each_variable_in_turn() {
        let env_of = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            }
        };
        let all = env_of(&[
            ("HF_HUB_CACHE", "/hub-cache"),
            ("HF_HOME", "/hf-home"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(hf_home_from(&all), Some(PathBuf::from("/hf-home")));
        assert_eq!(cache_dir_from(&all), Some(PathBuf::from("/hub-cache")));

        let no_hub_cache = env_of(&[
            ("HF_HOME", "/hf-home"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(
            cache_dir_from(&no_hub_cache),
            Some(PathBuf::from("/hf-home/hub"))
        );

        let xdg = env_of(&[("XDG_CACHE_HOME", "/xdg"), ("HOME", "/home/u")]);
        assert_eq!(hf_home_from(&xdg), Some(PathBuf::from("/xdg/huggingface")));
        assert_eq!(
            cache_dir_from(&xdg),
            Some(PathBuf::from("/xdg/huggingface/hub"))
        );

        let home = env_of(&[("HOME", "/home/u")]);
        assert_eq!(
            hf_home_from(&home),
            Some(PathBuf::from("/home/u/.cache/huggingface"))
        );
        assert_eq!(
            cache_dir_from(&home),
            Some(PathBuf::from("/home/u/.cache/huggingface/hub"))
        );

        let nothing = env_of(&[]);
        assert_eq!(hf_home_from(&nothing), None);
        assert_eq!(cache_dir_from(&nothing), None);
    }

    #[test]
    fn revisions_follow_gits_ref_name_rules() {
        for good in [
            "main",
            "v1.0",
            "refs/pr/1",
            "feature/x-y_z",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            assert!(check_revision(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../../../../X",
            "a/../b",
            "..",
            "/main",
            "main/",
            "a//b",
            ".hidden",
            "a/.b",
            "main.",
            "main.lock",
            "a b",
            "a\nb",
            "a\u{1b}b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[b",
            "a\\b",
            "@",
            "a@{1}",
        ] {
            let err = check_revision(bad).expect_err(bad);
            assert_eq!(err.kind(), crate::error::ErrorKind::Usage, "{bad}");
        }
    }

    #[test]
    fn repo_folder_follows_the_hub_layout() {
        let folder = repo_folder(Path::new("cache"), "Qwen/Qwen3-4B");
        assert_eq!(folder, Path::new("cache/models--Qwen--Qwen3-4B"));
    }
}
