//! FAT32 sizing: what a tree needs and the smallest volume that holds it.
//!
//! The layout itself (reserved sectors, FAT size, cluster count) comes from hadris-fat's planner,
//! which picks Microsoft's default cluster size for the volume size (4 KiB from 256 MiB to 8 GiB,
//! 32 KiB above 32 GiB, ...). This module only searches that planner for the minimum, so the
//! minimum it reports is exactly what `stick::create` then accepts.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hadris_fat_raw::layout::{self, Layout};
use hadris_fat_raw::{FatKind, MAX_DIR_ENTRIES};
use hadris_fs::{FileType, Tree, TreeEntry};

use crate::error::{Error, Result};

/// FAT32 addresses the disk in these.
pub const SECTOR: u64 = 512;

/// Cluster sizes the planner can pick for FAT32 with 512-byte sectors (1 to 64 sectors).
const CLUSTER_SIZES: [u64; 7] = [512, 1024, 2048, 4096, 8192, 16384, 32768];

/// The largest FAT32 file: the directory entry's size field is 32 bits (FAT spec, "FAT 32 Byte
/// Directory Entry Structure", DIR_FileSize).
pub const MAX_FILE: u64 = u32::MAX as u64;

/// Clusters a tree needs, for each cluster size the planner may pick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    clusters: [u64; CLUSTER_SIZES.len()],
}

impl Needs {
    /// An empty volume: just the root directory, with its label entry.
    pub fn empty() -> Self {
        let mut needs = Self { clusters: [0; CLUSTER_SIZES.len()] };
        needs.add_dir(1);
        needs
    }

    /// Clusters needed when clusters are `cluster` bytes.
    pub fn clusters(&self, cluster: u64) -> u64 {
        CLUSTER_SIZES.iter().position(|&c| c == cluster).map_or(u64::MAX, |i| self.clusters[i])
    }

    fn add_dir(&mut self, entries: u64) {
        for (need, cluster) in self.clusters.iter_mut().zip(CLUSTER_SIZES) {
            *need = need.saturating_add((entries * 32).div_ceil(cluster).max(1));
        }
    }

    fn add_file(&mut self, len: u64) {
        for (need, cluster) in self.clusters.iter_mut().zip(CLUSTER_SIZES) {
            *need = need.saturating_add(len.div_ceil(cluster));
        }
    }

    /// Walks `tree` (whose host copy is at `root`, for messages), checks that every name and
    /// file fits FAT, and counts the clusters it needs. Hard links are counted once per name,
    /// since FAT stores each as a separate copy. Symlinks and special files are not stored.
    pub fn of_tree(tree: &Tree, root: &Path) -> Result<Self> {
        let mut needs = Self { clusters: [0; CLUSTER_SIZES.len()] };
        let mut pending: Vec<(TreeEntry<'_>, PathBuf, u64)> = vec![(tree.root(), root.to_path_buf(), 1)];
        while let Some((dir, dir_path, base_entries)) = pending.pop() {
            let mut entries = base_entries;
            let mut folded: HashMap<String, String> = HashMap::new();
            for (name, child) in dir.children() {
                let kind = child.node().file_type();
                if !matches!(kind, FileType::Dir | FileType::File) {
                    continue;
                }
                let path = dir_path.join(OsStr::from_bytes(name.as_bytes()));
                let text = long_name(name.as_bytes(), &path)?;
                if let Some(other) = folded.insert(text.to_uppercase(), text.to_owned()) {
                    return Err(unrepresentable(
                        &path,
                        format!("differs from {other:?} only in letter case, which FAT does not tell apart"),
                    ));
                }
                // Long names take one 32-byte slot per 13 UTF-16 units plus the short entry
                // (FAT spec, "FAT Long Directory Entries"); counting the long slots even for
                // names that fit 8.3 over-estimates by at most one slot per name.
                entries += 1 + (text.encode_utf16().count() as u64).div_ceil(13);
                if entries > u64::from(MAX_DIR_ENTRIES) {
                    return Err(unrepresentable(
                        &dir_path,
                        format!(
                            "too many entries for one FAT directory (at most {MAX_DIR_ENTRIES} 32-byte slots; long names take several)"
                        ),
                    ));
                }
                match kind {
                    FileType::Dir => pending.push((child, path, 2)),
                    _ => {
                        let len = child.node().content().map_or(0, |c| c.len());
                        if len > MAX_FILE {
                            return Err(unrepresentable(
                                &path,
                                format!(
                                    "is {len} bytes; FAT32 files are at most 4 GiB minus one byte ({MAX_FILE} bytes)"
                                ),
                            ));
                        }
                        needs.add_file(len);
                    }
                }
            }
            needs.add_dir(entries);
        }
        Ok(needs)
    }
}

fn unrepresentable(path: &Path, reason: String) -> Error {
    Error::Unrepresentable { path: path.display().to_string(), reason }
}

/// The name as FAT long-name text, or why it cannot be one.
fn long_name<'a>(name: &'a [u8], path: &Path) -> Result<&'a str> {
    let text = std::str::from_utf8(name)
        .map_err(|_| unrepresentable(path, "name is not valid UTF-8; FAT long names are UTF-16".into()))?;
    if let Some(bad) = text.chars().find(|&c| c <= '\u{1f}' || "\"*/:<>?\\|".contains(c)) {
        return Err(unrepresentable(path, format!("name contains {bad:?}, which FAT names cannot hold")));
    }
    if text.ends_with(['.', ' ']) {
        return Err(unrepresentable(path, "name ends with a dot or a space, which FAT names cannot".into()));
    }
    if text.encode_utf16().count() > hadris_fat_raw::lfn::MAX_UNITS {
        return Err(unrepresentable(
            path,
            "name is longer than 255 UTF-16 units, the FAT long-name limit".into(),
        ));
    }
    debug_assert!(hadris_fat_raw::short_name::is_valid_long_name(text));
    Ok(text)
}

/// The FAT32 layout hadris-fat plans for a volume of `volume` bytes, if it can be FAT32 at all.
pub fn plan(volume: u64) -> Option<Layout> {
    layout::plan(&layout::Request::new(SECTOR as u32, volume / SECTOR).with_kind(FatKind::Fat32)).ok()
}

fn holds(volume: u64, needs: &Needs) -> bool {
    plan(volume).is_some_and(|l| u64::from(l.clusters()) >= needs.clusters(u64::from(l.cluster_size())))
}

/// The end (inclusive, whole sectors) of the band of volume sizes starting at `low` that get the
/// same default cluster size, capped at `limit`.
fn band_end(low: u64, limit: u64) -> u64 {
    let cluster = |bytes| layout::default_cluster_sectors(FatKind::Fat32, bytes);
    let first = cluster(low);
    if cluster(limit) == first {
        return limit;
    }
    // The default only grows with the size: cluster(lo) == first, cluster(hi) != first.
    let (mut lo, mut hi) = (low, limit);
    while hi - lo > SECTOR {
        let mid = lo + (hi - lo) / SECTOR / 2 * SECTOR;
        if cluster(mid) == first { lo = mid } else { hi = mid }
    }
    lo
}

/// The smallest FAT32 volume, in whole sectors, that holds `needs`, at most `limit` bytes.
///
/// Within a band of sizes sharing one cluster size, a larger volume has at least as many
/// clusters and the need is fixed, so the first size that holds is found by binary search in the
/// first band that holds at its end.
pub fn min_volume(needs: &Needs, limit: u64) -> Option<u64> {
    let limit = limit / SECTOR * SECTOR;
    let mut low = SECTOR;
    while low <= limit {
        let end = band_end(low, limit);
        if holds(end, needs) {
            let (mut lo, mut hi) = (low / SECTOR, end / SECTOR);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if holds(mid * SECTOR, needs) { hi = mid } else { lo = mid + 1 }
            }
            return Some(lo * SECTOR);
        }
        low = end + SECTOR;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn windows_cluster_sizes() {
        // Microsoft's defaults for FAT32 (KB140365), with the band edges hadris-fat uses:
        // 4 KiB up to about 8 GiB, 8 KiB to 16, 16 KiB to 32, 32 KiB above.
        assert_eq!(plan(512 * MIB).unwrap().cluster_size(), 4096);
        assert_eq!(plan(8 << 30).unwrap().cluster_size(), 4096);
        assert_eq!(plan(10 << 30).unwrap().cluster_size(), 8192);
        assert_eq!(plan(20 << 30).unwrap().cluster_size(), 16384);
        assert_eq!(plan(64 << 30).unwrap().cluster_size(), 32768);
        assert_eq!(plan(40 * MIB).unwrap().cluster_size(), 512);
        assert!(plan(16 * MIB).is_none(), "too few clusters for FAT32");
    }

    #[test]
    fn minimum_for_an_empty_volume_is_just_above_65524_clusters() {
        let min = min_volume(&Needs::empty(), 1 << 41).unwrap();
        let layout = plan(min).unwrap();
        assert_eq!(layout.cluster_size(), 512);
        assert!(layout.clusters() >= 65525, "{}", layout.clusters());
        assert!(plan(min - SECTOR).is_none());
        // 32 reserved + 2 FATs of 512 sectors + 65525 clusters, give or take the planner's
        // FAT-size rounding.
        assert!((66_581 * SECTOR..66_700 * SECTOR).contains(&min), "{min}");
    }

    #[test]
    fn minimum_grows_with_content_and_holds_it() {
        let mut needs = Needs::empty();
        needs.add_file(100 * MIB);
        let min = min_volume(&needs, 1 << 41).unwrap();
        assert!(holds(min, &needs));
        assert!(!holds(min - SECTOR, &needs));
        assert!(min > 100 * MIB);
        assert_eq!(min_volume(&needs, 50 * MIB), None);
    }

    #[test]
    fn names_fat_cannot_hold_are_refused() {
        let p = Path::new("/s/x");
        assert!(long_name("ok name ünicode.txt".as_bytes(), p).is_ok());
        for (name, needle) in [
            (&b"a:b"[..], "contains ':'"),
            (b"q?", "contains '?'"),
            (b"trail.", "ends with a dot"),
            (b"\xff\xfe", "not valid UTF-8"),
        ] {
            let err = long_name(name, p).unwrap_err().to_string();
            assert!(err.starts_with("/s/x: ") && err.contains(needle), "{err}");
        }
        let long = "x".repeat(256);
        assert!(long_name(long.as_bytes(), p).unwrap_err().to_string().contains("255"));
    }

    #[test]
    fn counts_clusters_per_size() {
        let mut n = Needs { clusters: [0; 7] };
        n.add_file(5000);
        n.add_dir(3);
        assert_eq!(n.clusters(512), 10 + 1);
        assert_eq!(n.clusters(4096), 2 + 1);
        assert_eq!(n.clusters(32768), 1 + 1);
        assert_eq!(n.clusters(1000), u64::MAX);
    }
}
