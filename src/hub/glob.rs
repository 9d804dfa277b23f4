//! `--include` / `--exclude` patterns with the semantics of Python's `fnmatch`, as the Hub's own
//! client applies them: `*` also crosses `/`, `?` is one character, `[seq]` / `[!seq]` are sets, and
//! a pattern ending in `/` means everything under that folder.

/// The file filter of one fetch: keep a path when it matches any include pattern (or there are
/// none) and no exclude pattern.
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl PathFilter {
    /// A filter from `--include` and `--exclude` patterns.
    pub fn new(include: &[String], exclude: &[String]) -> PathFilter {
        PathFilter {
            include: include.iter().map(|p| folder_pattern(p)).collect(),
            exclude: exclude.iter().map(|p| folder_pattern(p)).collect(),
        }
    }

    /// True when `path` (relative, `/`-separated) is to be fetched.
    pub fn keeps(&self, path: &str) -> bool {
        let included = self.include.is_empty() || self.include.iter().any(|p| fnmatch(p, path));
        included && !self.exclude.iter().any(|p| fnmatch(p, path))
    }
}

/// `data/` means `data/*`, as in the Hub client's `filter_repo_objects`.
fn folder_pattern(pattern: &str) -> String {
    if pattern.ends_with('/') {
        format!("{pattern}*")
    } else {
        pattern.to_string()
    }
}

/// Case-sensitive `fnmatch`: true when all of `name` matches `pattern`.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Iterative matcher with one backtrack point for the last `*`: linear in practice and never
    // recursive, so a hostile pattern cannot blow the stack.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    star = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_set(&pattern, p, name[n]) {
                        if matched {
                            p = next;
                            n += 1;
                            continue;
                        }
                    } else if name[n] == '[' {
                        // An unclosed `[` is a literal, as in Python.
                        p += 1;
                        n += 1;
                        continue;
                    }
                }
                literal if literal == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_n)) => {
                p = star_p + 1;
                n = star_n + 1;
                star = Some((star_p, star_n + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against the set starting at `pattern[open] == '['`. Returns whether it matched and
/// the index after the closing `]`, or `None` when the set is not closed.
fn match_set(pattern: &[char], open: usize, c: char) -> Option<(bool, usize)> {
    let mut i = open + 1;
    let negated = matches!(pattern.get(i), Some('!'));
    if negated {
        i += 1;
    }
    let first = i;
    let mut matched = false;
    while i < pattern.len() {
        // A `]` right after `[` or `[!` is a member, not the end.
        if pattern[i] == ']' && i > first {
            return Some((matched != negated, i + 1));
        }
        if i + 2 < pattern.len() && pattern[i + 1] == '-' && pattern[i + 2] != ']' {
            matched |= pattern[i] <= c && c <= pattern[i + 2];
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_crosses_folders_like_python_fnmatch() {
        assert!(fnmatch("*.safetensors", "model-00001-of-00002.safetensors"));
        assert!(fnmatch("*.json", "onnx/config.json"));
        assert!(!fnmatch("*.json", "model.safetensors"));
        assert!(fnmatch("*", ""));
        assert!(!fnmatch("a*b", "a/c"));
        assert!(fnmatch("a*b*c", "axxbyyc"));
        assert!(!fnmatch("a*b*c", "axxbyy"));
    }

    #[test]
    fn question_mark_and_sets() {
        assert!(fnmatch("model-0000?.bin", "model-00003.bin"));
        assert!(!fnmatch("model-0000?.bin", "model-0003.bin"));
        assert!(fnmatch("[ab]*.txt", "b.txt"));
        assert!(!fnmatch("[!ab]*.txt", "b.txt"));
        assert!(fnmatch("[0-9].md", "7.md"));
        assert!(!fnmatch("[0-9].md", "x.md"));
        assert!(fnmatch("[]]", "]"));
        assert!(fnmatch("a[b", "a[b"));
        assert!(!fnmatch("A.json", "a.json"));
    }

    #[test]
    fn filter_combines_include_and_exclude() {
        let filter = PathFilter::new(
            &["*.safetensors".into(), "*.json".into()],
            &["*.index.json".into()],
        );
        assert!(filter.keeps("config.json"));
        assert!(filter.keeps("model.safetensors"));
        assert!(!filter.keeps("model.safetensors.index.json"));
        assert!(!filter.keeps("README.md"));
        let folder = PathFilter::new(&["onnx/".into()], &[]);
        assert!(folder.keeps("onnx/model.onnx"));
        assert!(!folder.keeps("model.onnx"));
        assert!(PathFilter::new(&[], &[]).keeps("anything"));
    }
}
