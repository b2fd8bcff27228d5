//! One error type for every authoring operation. Messages name the path and the problem so the
//! CLI can print them on one line as they are.

use std::fmt;
use std::path::PathBuf;

/// Everything `iso::create`, `iso::list` and `stick::create` can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{}: source directory not found", path.display())]
    SourceMissing { path: PathBuf },

    #[error("{}: not a directory", path.display())]
    SourceNotDir { path: PathBuf },

    /// Files or directories below the source that cannot be read; all of them are collected
    /// before failing so the user can fix them in one go.
    #[error("cannot read {} of the source: {}", plural(problems.len(), "entry", "entries"), ListProblems(problems))]
    Unreadable { problems: Vec<Problem> },

    #[error("{}: already exists (use --force to overwrite)", path.display())]
    OutputExists { path: PathBuf },

    #[error("{}: directory of the output does not exist", dir.display())]
    OutputDirMissing { dir: PathBuf },

    #[error("{}: {what}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid size {text:?}: {reason}")]
    InvalidSize { text: String, reason: String },

    #[error("invalid label {label:?}: {reason}")]
    InvalidLabel { label: String, reason: &'static str },

    #[error("unsupported filesystem {fs:?} (supported: fat32)")]
    UnsupportedFs { fs: String },

    #[error("{option} needs --fs (an unformatted image has no filesystem to hold it)")]
    NeedsFs { option: &'static str },

    #[error("size {} is too small for {what}: the minimum is {}", crate::size::format(*size), crate::size::format(*minimum))]
    TooSmall { size: u64, minimum: u64, what: String },

    #[error("size {} is too large for an MBR-partitioned image: the maximum is {}", crate::size::format(*size), crate::size::format(*maximum))]
    TooLarge { size: u64, maximum: u64 },

    #[error("{what} does not fit a FAT32 image of at most {}", crate::size::format(*maximum))]
    ContentTooLarge { what: String, maximum: u64 },

    #[error("{path}: {reason}")]
    Unrepresentable { path: String, reason: String },

    #[error("boot image {path}: {reason}")]
    Boot { path: String, reason: String },

    /// The underlying image library refused or failed; `context` says which step.
    #[error("{context}: {message}")]
    Backend { context: String, message: String },

    #[error("interrupted; no output written")]
    Interrupted,
}

/// One unreadable entry of a source tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub reason: String,
}

/// At most this many problems are spelled out; the rest are counted.
const SHOWN_PROBLEMS: usize = 8;

struct ListProblems<'a>(&'a [Problem]);

impl fmt::Display for ListProblems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().take(SHOWN_PROBLEMS).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} ({})", p.path.display(), p.reason)?;
        }
        if self.0.len() > SHOWN_PROBLEMS {
            write!(f, "; and {} more", self.0.len() - SHOWN_PROBLEMS)?;
        }
        Ok(())
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, what: &'static str, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), what, source }
    }

    /// Wraps an error of the hadris crates, whose `Display` already names the tree path.
    pub(crate) fn backend(context: impl Into<String>, err: impl fmt::Display) -> Self {
        Error::Backend { context: context.into(), message: err.to_string() }
    }
}

/// Short reason text for an I/O error (without the "(os error N)" tail).
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::NotFound => "vanished".into(),
        _ => {
            let text = err.to_string();
            match text.find(" (os error") {
                Some(cut) => text[..cut].to_lowercase(),
                None => text,
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_lists_paths_and_counts_the_rest() {
        let problems: Vec<Problem> = (0..10)
            .map(|i| Problem { path: PathBuf::from(format!("/s/f{i}")), reason: "permission denied".into() })
            .collect();
        let text = Error::Unreadable { problems }.to_string();
        assert!(text.starts_with("cannot read 10 entries of the source: /s/f0 (permission denied); /s/f1"));
        assert!(text.ends_with("; and 2 more"), "{text}");
        assert!(!text.contains("/s/f8"));
    }

    #[test]
    fn one_unreadable_entry_is_singular() {
        let problems = vec![Problem { path: PathBuf::from("/s/x"), reason: "permission denied".into() }];
        assert_eq!(
            Error::Unreadable { problems }.to_string(),
            "cannot read 1 entry of the source: /s/x (permission denied)"
        );
    }

    #[test]
    fn too_small_names_the_minimum() {
        let e = Error::TooSmall { size: 16 << 20, minimum: 34 << 20, what: "FAT32".into() };
        assert_eq!(e.to_string(), "size 16 MiB is too small for FAT32: the minimum is 34 MiB");
    }
}
