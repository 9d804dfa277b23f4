//! The Hub's HTTP API as far as downloads need it: the revision listing (commit and files) and
//! the per-file metadata (`ETag`, `X-Linked-Etag`, `X-Linked-Size`, `X-Repo-Commit`).

use serde::Deserialize;

use super::http::{HubHttp, header};
use crate::error::{Error, Result};

/// One file of a repo revision, as the listing describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Path inside the repo, `/`-separated.
    pub path: String,
    /// Size in bytes, when the listing gives it (`?blobs=true`) or a HEAD told us.
    pub size: Option<u64>,
    /// The sha256 of an LFS file: also its cache blob name.
    pub lfs_sha256: Option<String>,
    /// The git blob id of a non-LFS file: its cache blob name.
    pub blob_id: Option<String>,
}

impl RemoteFile {
    /// The blob name the Hub client uses in the cache, when the listing already tells it.
    pub fn known_etag(&self) -> Option<&str> {
        self.lfs_sha256.as_deref().or(self.blob_id.as_deref())
    }
}

/// A revision of a repo: the commit it resolves to and its files.
#[derive(Debug, Clone)]
pub struct RepoListing {
    /// The 40-hex commit the revision points at.
    pub commit: String,
    /// Every file of the commit.
    pub files: Vec<RemoteFile>,
}

/// What a HEAD of a file's resolve URL says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMetadata {
    /// The cache blob name: `X-Linked-Etag` (LFS sha256) or else `ETag`, unquoted.
    pub etag: String,
    /// `X-Linked-Size` or `Content-Length`.
    pub size: Option<u64>,
}

#[derive(Deserialize)]
struct ListingJson {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<SiblingJson>,
}

#[derive(Deserialize)]
struct SiblingJson {
    rfilename: String,
    size: Option<u64>,
    #[serde(rename = "blobId")]
    blob_id: Option<String>,
    lfs: Option<LfsJson>,
}

#[derive(Deserialize)]
struct LfsJson {
    sha256: String,
    size: Option<u64>,
}

/// A Hub endpoint (`https://huggingface.co` or a mirror) and the repo being fetched.
#[derive(Debug, Clone)]
pub struct RepoEndpoint {
    endpoint: String,
    repo_id: String,
}

impl RepoEndpoint {
    /// `endpoint` without a trailing slash, and an `org/name` repo id.
    pub fn new(endpoint: &str, repo_id: &str) -> RepoEndpoint {
        RepoEndpoint {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            repo_id: repo_id.to_string(),
        }
    }

    /// `GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true`: file sizes need `blobs`.
    pub fn listing_url(&self, revision: &str) -> String {
        format!(
            "{}/api/models/{}/revision/{}?blobs=true",
            self.endpoint,
            self.repo_id,
            percent_encode(revision, false)
        )
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{path}`: the file's bytes, maybe via a redirect.
    pub fn resolve_url(&self, revision: &str, path: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            self.endpoint,
            self.repo_id,
            percent_encode(revision, false),
            percent_encode(path, true)
        )
    }

    /// The commit and files of `revision`.
    pub fn listing(&self, http: &HubHttp, revision: &str) -> Result<RepoListing> {
        let url = self.listing_url(revision);
        let text = http.get_text(&url)?;
        parse_listing(&url, &text)
    }

    /// HEADs the resolve URL of `path` for the blob name the Hub client would use.
    pub fn file_metadata(&self, http: &HubHttp, commit: &str, path: &str) -> Result<FileMetadata> {
        let url = self.resolve_url(commit, path);
        let response = http.head(&url)?;
        let header = |name: &str| header(&response, name);
        let etag = header("x-linked-etag")
            .or_else(|| header("etag"))
            .map(normalize_etag)
            .filter(|etag| is_safe_blob_name(etag))
            .ok_or_else(|| {
                Error::network(format!("{url}: the server sent no usable ETag for {path}"))
            })?;
        let size = header("x-linked-size")
            .or_else(|| header("content-length"))
            .and_then(|size| size.trim().parse().ok());
        Ok(FileMetadata { etag, size })
    }
}

/// Parses the revision listing; `url` names it in errors.
pub fn parse_listing(url: &str, text: &str) -> Result<RepoListing> {
    let json: ListingJson = serde_json::from_str(text).map_err(|err| {
        Error::network(format!("{url}: not a Hub revision listing: {err}")).with_source(err)
    })?;
    let commit = json
        .sha
        .filter(|sha| super::cache::is_commit_hash(sha))
        .ok_or_else(|| Error::network(format!("{url}: the listing has no commit sha")))?;
    let mut files = Vec::with_capacity(json.siblings.len());
    for sibling in json.siblings {
        if !is_safe_repo_path(&sibling.rfilename) {
            return Err(Error::network(format!(
                "{url}: refusing the file name {:?}: it would leave the download folder",
                sibling.rfilename
            )));
        }
        let lfs_size = sibling.lfs.as_ref().and_then(|lfs| lfs.size);
        let lfs_sha256 = match sibling.lfs {
            Some(lfs) if is_sha256(&lfs.sha256) => Some(lfs.sha256.to_ascii_lowercase()),
            Some(lfs) => {
                return Err(Error::network(format!(
                    "{url}: {}: LFS sha256 {:?} is not 64 hex digits",
                    sibling.rfilename, lfs.sha256
                )));
            }
            None => None,
        };
        files.push(RemoteFile {
            path: sibling.rfilename,
            size: sibling.size.or(lfs_size),
            lfs_sha256,
            blob_id: sibling.blob_id.filter(|id| is_safe_blob_name(id)),
        });
    }
    Ok(RepoListing { commit, files })
}

/// `W/"abc"` and `"abc"` become `abc`, as the Hub client stores blob names.
pub fn normalize_etag(etag: &str) -> String {
    let etag = etag.trim();
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    etag.trim_matches('"').to_string()
}

/// True for 64 hex digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// A blob name becomes a file name: no separators, no dot-only names.
fn is_safe_blob_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name.chars().any(|c| c != '.')
}

/// A repo path from a server must stay inside the snapshot: relative, no `..`, no empty parts.
fn is_safe_repo_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`), as the Hub
/// client quotes revisions (`refs/pr/1` → `refs%2Fpr%2F1`) and paths.
fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let unreserved = byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && byte == b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn listing_with_and_without_blobs() {
        let lfs = "a".repeat(64);
        let text = format!(
            r#"{{"id":"o/n","sha":"{SHA}","siblings":[
                {{"rfilename":"config.json"}},
                {{"rfilename":"a/b.json","size":12,"blobId":"deadbeef"}},
                {{"rfilename":"m.safetensors","lfs":{{"sha256":"{lfs}","size":99}}}}]}}"#
        );
        let listing = parse_listing("u", &text).expect("valid listing");
        assert_eq!(listing.commit, SHA);
        assert_eq!(listing.files[0].size, None);
        assert_eq!(listing.files[0].known_etag(), None);
        assert_eq!(listing.files[1].size, Some(12));
        assert_eq!(listing.files[1].known_etag(), Some("deadbeef"));
        assert_eq!(listing.files[2].size, Some(99));
        assert_eq!(listing.files[2].known_etag(), Some(lfs.as_str()));
    }

    #[test]
    fn listing_rejects_escaping_paths_and_missing_sha() {
        let escaping = format!(r#"{{"sha":"{SHA}","siblings":[{{"rfilename":"../x"}}]}}"#);
        assert!(parse_listing("u", &escaping).is_err());
        assert!(parse_listing("u", r#"{"siblings":[]}"#).is_err());
        let not_json = parse_listing("u", "<html>").expect_err("not JSON");
        let cause = std::error::Error::source(&not_json).expect("the parse error is kept");
        assert!(cause.is::<serde_json::Error>());
    }

    #[test]
    fn urls_quote_revision_and_path() {
        let repo = RepoEndpoint::new("http://h:1/", "o/n");
        assert_eq!(
            repo.listing_url("refs/pr/1"),
            "http://h:1/api/models/o/n/revision/refs%2Fpr%2F1?blobs=true"
        );
        assert_eq!(
            repo.resolve_url("main", "dir/a b.json"),
            "http://h:1/o/n/resolve/main/dir/a%20b.json"
        );
    }

    #[test]
    fn etags_are_unquoted() {
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(normalize_etag("abc"), "abc");
    }
}
