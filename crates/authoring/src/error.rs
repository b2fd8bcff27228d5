//! One error type for every authoring operation. Messages name the path and the problem so the
//! CLI can print them on one line as they are.

use std::fmt;
use std::path::PathBuf;

/// Everything `iso::create`, `iso::list` and `stick::create` can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The source directory does not exist.
    #[error("{}: source directory not found", path.display())]
    SourceMissing {
        /// The source path given.
        path: PathBuf,
    },

    /// The source path exists but is not a directory.
    #[error("{}: not a directory", path.display())]
    SourceNotDir {
        /// The source path given.
        path: PathBuf,
    },

    /// Files or directories below the source that cannot be read; all of them are collected
    /// before failing so the user can fix them in one go.
    #[error("cannot read {} of the source: {}", plural(problems.len(), "entry", "entries"), ListProblems(problems))]
    Unreadable {
        /// Every entry that could not be read.
        problems: Vec<Problem>,
    },

    /// The output file exists and overwriting was not asked for.
    #[error("{}: already exists (use --force to overwrite)", path.display())]
    OutputExists {
        /// The output path.
        path: PathBuf,
    },

    /// The directory the output would be created in does not exist.
    #[error("{}: directory of the output does not exist", dir.display())]
    OutputDirMissing {
        /// That directory.
        dir: PathBuf,
    },

    /// A file operation on the output, its temporary file or an image being listed failed.
    #[error("{}: {what}", path.display())]
    Io {
        /// The file operated on.
        path: PathBuf,
        /// What was being done (e.g. "cannot sync").
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// An image size that cannot be parsed or is not a non-zero multiple of 512 bytes.
    #[error("invalid size {text:?}: {reason}")]
    InvalidSize {
        /// The size as given.
        text: String,
        /// Why it is refused.
        reason: String,
    },

    /// A volume label the format cannot store (ISO 9660 volume identifier: 32 printable
    /// ASCII characters; FAT BS_VolLab: 11 short-name characters).
    #[error("invalid label {label:?}: {reason}")]
    InvalidLabel {
        /// The label as given.
        label: String,
        /// Which rule it breaks.
        reason: &'static str,
    },

    /// A `--fs` value other than the filesystems this crate writes.
    #[error("unsupported filesystem {fs:?} (supported: fat32)")]
    UnsupportedFs {
        /// The value given.
        fs: String,
    },

    /// An option that only means something inside a filesystem was given without `--fs`.
    #[error("{option} needs --fs (an unformatted image has no filesystem to hold it)")]
    NeedsFs {
        /// The option, e.g. `--label`.
        option: &'static str,
    },

    /// The image is smaller than the smallest FAT32 volume (65525 clusters) holding the content.
    #[error("size {} is too small for {what}: the minimum is {}", crate::size::format(*size), crate::size::format(*minimum))]
    TooSmall {
        /// Requested image size in bytes.
        size: u64,
        /// Smallest size that works, in bytes (whole MiB).
        minimum: u64,
        /// What had to fit (FAT32, with the copied tree if any).
        what: String,
    },

    /// The image is larger than an MBR partition table can address (32-bit sector numbers).
    #[error("size {} is too large for an MBR-partitioned image: the maximum is {}", crate::size::format(*size), crate::size::format(*maximum))]
    TooLarge {
        /// Requested image size in bytes.
        size: u64,
        /// Largest size allowed, in bytes.
        maximum: u64,
    },

    /// The content to copy needs more than the largest FAT32 image allowed.
    #[error("{what} does not fit a FAT32 image of at most {}", crate::size::format(*maximum))]
    ContentTooLarge {
        /// The content that does not fit.
        what: String,
        /// Largest image size allowed, in bytes.
        maximum: u64,
    },

    /// A source entry the image format cannot store: its name, a letter-case clash, a directory
    /// with too many entries or a file too large.
    #[error("{path}: {reason}")]
    Unrepresentable {
        /// The entry, relative to the source tree.
        path: String,
        /// What the format cannot hold.
        reason: String,
    },

    /// An El Torito boot image that is missing, empty, not a regular file or has a bad load size.
    #[error("boot image {path}: {reason}")]
    Boot {
        /// The boot image path inside the source tree.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The underlying image library refused or failed; `context` says which step.
    #[error("{context}: {message}")]
    Backend {
        /// The step that failed.
        context: String,
        /// The library's message.
        message: String,
    },

    /// The operation was cancelled (Ctrl-C or `Cancel::cancel`); no output was written.
    #[error("interrupted; no output written")]
    Interrupted,
}

/// One unreadable entry of a source tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry.
    pub path: PathBuf,
    /// Why it cannot be read (e.g. "permission denied").
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

/// Result of an authoring operation.
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
