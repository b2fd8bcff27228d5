//! `vstick iso ls`: the ISO 9660 reader (authoring's `iso_list::list`) on
//! arbitrary images. It must answer with a listing or an error, never
//! panic, hang or allocate without bound.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn image_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("vstick-fuzz-iso-{}.iso", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = image_path();
    std::fs::write(path, data).expect("scratch image");
    if let Ok(listing) = vstick_authoring::list(path) {
        // Entries are absolute paths inside the image.
        for entry in &listing.entries {
            assert!(entry.path.starts_with('/'), "{entry:?}");
        }
    }
});
