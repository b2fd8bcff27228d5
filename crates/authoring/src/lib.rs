//! Image authoring: ISO 9660 (Joliet, Rock Ridge) and FAT32 stick images.
