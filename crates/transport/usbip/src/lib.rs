//! USB/IP transport (see ARCHITECTURE.md).
