//! Image sizes as users type them: `512M`, `2G`, `2GiB`, `1048576`.
//!
//! Every unit is a power of 1024, as qemu-img and the partitioning tools read them. `GB`-style
//! suffixes are refused rather than guessed: dd reads them as powers of 1000, qemu-img as 1024.

use crate::error::{Error, Result};

/// Images are whole 512-byte sectors: the MBR and FAT both address the disk in them.
pub const SECTOR: u64 = 512;

const UNITS: [(&str, u32); 5] = [("", 0), ("K", 10), ("M", 20), ("G", 30), ("T", 40)];

/// Parses a size such as `512M`, `2G`, `2GiB`, `64k` or `1048576` (bytes) into bytes.
///
/// The result is a non-zero multiple of 512.
pub fn parse(text: &str) -> Result<u64> {
    let bad = |reason: &str| Error::InvalidSize { text: text.to_owned(), reason: reason.to_owned() };
    let trimmed = text.trim();
    let digits_end = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad("expected a number with an optional unit, such as 512M, 2G or 2GiB"));
    }
    let unit = unit.trim_start();
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        "T" | "TIB" => 40,
        "KB" | "MB" | "GB" | "TB" => {
            let letter = &unit[..1];
            return Err(bad(&format!(
                "ambiguous unit {unit:?}: write {digits}{letter} or {digits}{letter}iB (1024-based), or a byte count"
            )));
        }
        _ => return Err(bad("unknown unit (use K, M, G, T or KiB, MiB, GiB, TiB)")),
    };
    let number: u64 = digits.parse().map_err(|_| bad("number too large"))?;
    let bytes = number.checked_mul(1u64 << shift).ok_or_else(|| bad("too large"))?;
    if bytes == 0 {
        return Err(bad("must be greater than zero"));
    }
    if !bytes.is_multiple_of(SECTOR) {
        return Err(bad("must be a multiple of 512 bytes (one sector)"));
    }
    Ok(bytes)
}

/// Formats a byte count the way `parse` reads it back when it is a whole number of units, and as
/// bytes with an approximate MiB figure otherwise.
pub fn format(bytes: u64) -> String {
    for (name, shift) in UNITS.iter().rev() {
        if *shift > 0 && bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {name}iB", bytes >> shift);
        }
    }
    if bytes >= 1 << 20 {
        format!("{bytes} bytes (~{:.1} MiB)", bytes as f64 / f64::from(1 << 20))
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("512M").unwrap(), 512 << 20);
        assert_eq!(parse("2G").unwrap(), 2 << 30);
        assert_eq!(parse("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse("2gib").unwrap(), 2 << 30);
        assert_eq!(parse("64k").unwrap(), 64 << 10);
        assert_eq!(parse("1T").unwrap(), 1 << 40);
        assert_eq!(parse("1048576").unwrap(), 1 << 20);
        assert_eq!(parse("1048576B").unwrap(), 1 << 20);
        assert_eq!(parse(" 100 MiB ").unwrap(), 100 << 20);
    }

    #[test]
    fn refuses_ambiguous_and_broken_forms() {
        for (text, needle) in [
            ("2GB", "ambiguous unit"),
            ("2mb", "ambiguous unit"),
            ("", "expected a number"),
            ("G", "expected a number"),
            ("-1G", "expected a number"),
            ("1.5G", "unknown unit"),
            ("2X", "unknown unit"),
            ("2iB", "unknown unit"),
            ("0", "greater than zero"),
            ("0G", "greater than zero"),
            ("1000", "multiple of 512"),
            ("99999999999999999999", "number too large"),
            ("16777216T", "too large"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn formats_whole_units_and_odd_sizes() {
        assert_eq!(format(34 << 20), "34 MiB");
        assert_eq!(format(2 << 30), "2 GiB");
        assert_eq!(format(1536), "1536 bytes"); // 1.5 KiB is not a whole unit
        assert_eq!(format(512), "512 bytes");
        assert_eq!(format((1 << 20) + 512), "1049088 bytes (~1.0 MiB)");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,12}") {
            let _ = parse(&s);
        }

        #[test]
        fn whole_units_round_trip(n in 1u64..4096, unit in 1usize..4) {
            let (name, shift) = UNITS[unit];
            let bytes = n << shift;
            prop_assert_eq!(parse(&format!("{n}{name}")).unwrap(), bytes);
            let shown = format(bytes).replace(' ', "");
            prop_assert_eq!(parse(&shown).unwrap(), bytes);
        }
    }
}
