//! Reading the source directory of an image into a tree, after checking that everything in it
//! can be read.
//!
//! File contents are not read here: the tree only records each file's path and length, and the
//! image writer streams the bytes when it reaches the file. That keeps memory independent of the
//! image size. Unreadable entries are all collected first, so the user gets one error naming
//! every one of them instead of a failure halfway through a multi-gigabyte write.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hadris_fs::host::{self, OnError, TreeOptions};
use hadris_fs::{DateTime, FileType, PathError, SetAttr, Tree, TreeEntry};

use crate::error::{Error, Problem, Result, io_reason};

/// A source tree and what it holds.
pub(crate) struct Source {
    pub(crate) tree: Tree,
    pub(crate) stats: Stats,
}

/// Counts of a source tree's nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Regular files.
    pub files: u64,
    /// Directories, the root excluded.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Sum of the file lengths (hard-linked files counted once per name).
    pub bytes: u64,
}

/// Reads `root` as a tree: symlinks kept as symlinks, Unix modes, owners and times kept.
///
/// `output` (the image being written) is left out when it lies inside `root`, so building an
/// image into its own source directory never packs an older copy of the image.
pub(crate) fn read(root: &Path, output: &Path) -> Result<Source> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(Error::SourceNotDir { path: root.to_path_buf() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::SourceMissing { path: root.to_path_buf() });
        }
        Err(e) => return Err(Error::io(root, "cannot access the source directory", e)),
    }
    // Walked from its canonical path so the exclusion filter, which sees the walked paths,
    // can compare them with the canonical output path.
    let walk_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut options = TreeOptions::new().with_on_error(OnError::Skip);
    if let Some(output) = canonical_output(output).filter(|o| o.starts_with(&walk_root)) {
        options = options.with_exclude(move |path| path == output);
    }
    let (tree, skipped) = host::read_tree(&walk_root, &options)
        .map_err(|e| Error::backend(format!("reading {}", root.display()), e))?;
    let mut problems: Vec<Problem> = skipped.iter().map(|e| problem(root, e)).collect();
    let stats = walk(root, &tree, &mut problems);
    if !problems.is_empty() {
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        problems.dedup_by(|a, b| a.path == b.path);
        return Err(Error::Unreadable { problems });
    }
    Ok(Source { tree, stats })
}

/// A copy of `tree` for FAT: every hard-link name becomes a file of its own with the same
/// content (the FAT writer would otherwise skip the extra names), and every time becomes
/// `to_local(unix seconds)`, since FAT stores local wall-clock time (FAT spec, "Date and Time
/// Formats") and the writer encodes the times it is given as they are.
pub(crate) fn for_fat(tree: &Tree, to_local: &dyn Fn(i64) -> i64) -> Result<Tree> {
    let fail = |e: PathError| Error::backend("copying the source tree", e);
    let local = |node: &hadris_fs::Node| node.clone().with_attrs(local_times(*node.attrs(), to_local));
    let mut out = Tree::new();
    out.replace("/", local(tree.root().node())).map_err(fail)?;
    let mut pending: Vec<(TreeEntry<'_>, Vec<u8>)> = vec![(tree.root(), Vec::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for (name, child) in dir.children() {
            let mut path = prefix.clone();
            path.push(b'/');
            path.extend_from_slice(name.as_bytes());
            // Cloning the node (not linking the path) gives each name its own node; the
            // content is shared, read once per name when written.
            out.insert(&path, local(child.node())).map_err(fail)?;
            if child.node().file_type() == FileType::Dir {
                pending.push((child, path));
            }
        }
    }
    Ok(out)
}

/// The system time zone's wall-clock time at `unix_seconds`, as seconds since 1970 "local".
pub(crate) fn system_local(unix_seconds: i64) -> i64 {
    thread_local! {
        static ZONE: jiff::tz::TimeZone = jiff::tz::TimeZone::system();
    }
    let offset = jiff::Timestamp::from_second(unix_seconds)
        .map_or(0, |ts| ZONE.with(|zone| zone.to_offset(ts).seconds()));
    unix_seconds.saturating_add(i64::from(offset))
}

/// `attrs` with every time `t` replaced by `to_local(t)`.
fn local_times(attrs: SetAttr, to_local: &dyn Fn(i64) -> i64) -> SetAttr {
    let shift = |t: DateTime| DateTime::new(to_local(t.unix_seconds()), t.nanoseconds()).unwrap_or(t);
    let mut attrs = attrs;
    if let Some(t) = attrs.modified() {
        attrs = attrs.with_modified(shift(t));
    }
    if let Some(t) = attrs.accessed() {
        attrs = attrs.with_accessed(shift(t));
    }
    if let Some(t) = attrs.created() {
        attrs = attrs.with_created(shift(t));
    }
    attrs
}

/// `output` with its directory resolved (the file itself need not exist).
fn canonical_output(output: &Path) -> Option<PathBuf> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(output.file_name()?))
}

/// The host path of a tree path below `root` (tree paths are the host's name bytes).
pub(crate) fn host_path(root: &Path, tree_path: &[u8]) -> PathBuf {
    let relative = tree_path.strip_prefix(b"/").unwrap_or(tree_path);
    if relative.is_empty() { root.to_path_buf() } else { root.join(OsStr::from_bytes(relative)) }
}

fn problem(root: &Path, err: &PathError) -> Problem {
    let path = match (err.host_path(), err.path()) {
        (Some(host), _) => host.to_path_buf(),
        (None, Some(tree)) => host_path(root, tree),
        (None, None) => root.to_path_buf(),
    };
    let reason = match err.raw_os_error() {
        Some(code) => io_reason(&std::io::Error::from_raw_os_error(code)),
        None => err.message().to_owned(),
    };
    Problem { path, reason }
}

/// Counts the nodes and opens every regular file once, so unreadable files fail now.
fn walk(root: &Path, tree: &Tree, problems: &mut Vec<Problem>) -> Stats {
    let mut stats = Stats::default();
    let mut pending: Vec<(TreeEntry<'_>, PathBuf)> = vec![(tree.root(), root.to_path_buf())];
    while let Some((dir, dir_path)) = pending.pop() {
        for (name, child) in dir.children() {
            let path = dir_path.join(OsStr::from_bytes(name.as_bytes()));
            let node = child.node();
            match node.file_type() {
                FileType::Dir => {
                    stats.dirs += 1;
                    pending.push((child, path));
                }
                FileType::File => {
                    stats.files += 1;
                    stats.bytes += node.content().map_or(0, |c| c.len());
                    if let Err(e) = std::fs::File::open(&path) {
                        problems.push(Problem { path, reason: io_reason(&e) });
                    }
                }
                FileType::Symlink => stats.symlinks += 1,
                _ => {}
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn running_as_root() -> bool {
        // Root reads files whatever their mode, so permission tests would not fail as expected.
        std::fs::read_to_string("/proc/self/status")
            .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
            .unwrap_or(false)
    }

    #[test]
    fn counts_nodes_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), b"12345").unwrap();
        std::fs::write(dir.path().join("g"), b"xy").unwrap();
        std::os::unix::fs::symlink("g", dir.path().join("l")).unwrap();
        let src = read(dir.path(), Path::new("/nonexistent/out")).unwrap();
        assert_eq!(src.stats, Stats { files: 2, dirs: 2, symlinks: 1, bytes: 7 });
    }

    #[test]
    fn hard_links_become_separate_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/a"), b"data").unwrap();
        std::fs::hard_link(dir.path().join("d/a"), dir.path().join("b")).unwrap();
        let src = read(dir.path(), Path::new("/nonexistent/out")).unwrap();
        let linked = src.tree.entry("/b").unwrap();
        assert_eq!(linked.links(), 2);
        let copy = for_fat(&src.tree, &|s| s).unwrap();
        for path in ["/b", "/d/a"] {
            let entry = copy.entry(path).unwrap();
            assert_eq!(entry.links(), 1, "{path}");
            assert_eq!(entry.node().content().unwrap().len(), 4);
        }
        assert_eq!(copy.entry("/d").unwrap().node().file_type(), FileType::Dir);
    }

    #[test]
    fn fat_times_are_local_wall_clock() {
        let utc = DateTime::new(1_700_000_000, 5).unwrap();
        let attrs = SetAttr::new().with_modified(utc).with_accessed(utc);
        let east = local_times(attrs, &|s| s + 7200);
        assert_eq!(east.modified().unwrap().unix_seconds(), 1_700_000_000 + 7200);
        assert_eq!(east.modified().unwrap().nanoseconds(), 5);
        assert_eq!(east.accessed().unwrap().unix_seconds(), 1_700_000_000 + 7200);
        assert!(east.created().is_none(), "unset times stay unset");
        let west = local_times(attrs, &|s| s - 18_000);
        assert_eq!(west.modified().unwrap().unix_seconds(), 1_700_000_000 - 18_000);

        let mut tree = Tree::new();
        tree.insert("/f", hadris_fs::Node::file(hadris_fs::Content::bytes(&b"x"[..])).with_attrs(attrs))
            .unwrap();
        let fat = for_fat(&tree, &|s| s + 3600).unwrap();
        assert_eq!(fat.get("/f").unwrap().attrs().modified().unwrap().unix_seconds(), 1_700_003_600);
    }

    #[test]
    fn the_output_inside_the_source_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.iso"), b"previous image").unwrap();
        std::fs::write(dir.path().join("keep"), b"k").unwrap();
        // Given relative to a subdirectory, so the comparison must resolve both paths.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let src = read(&sub.join(".."), &dir.path().join("old.iso")).unwrap();
        assert!(src.tree.get("/old.iso").is_none());
        assert!(src.tree.get("/keep").is_some());
        assert_eq!(src.stats.files, 1);
    }

    #[test]
    fn missing_and_non_directory_sources() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert_eq!(
            read(&missing, &missing).err().unwrap().to_string(),
            format!("{}: source directory not found", missing.display())
        );
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(
            read(&file, &file).err().unwrap().to_string(),
            format!("{}: not a directory", file.display())
        );
    }

    #[test]
    fn names_every_unreadable_entry() {
        if running_as_root() {
            eprintln!("skipped: running as root, permission bits do not stop reads");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret.txt");
        std::fs::write(&secret, b"x").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
        let closed = dir.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::write(closed.join("inner"), b"x").unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o000)).unwrap();
        let err = read(dir.path(), &dir.path().join("out.iso")).err().unwrap().to_string();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(err.starts_with("cannot read 2 entries of the source: "), "{err}");
        assert!(err.contains(&format!("{} (permission denied)", secret.display())), "{err}");
        assert!(err.contains(&format!("{} (permission denied)", closed.display())), "{err}");
    }
}
