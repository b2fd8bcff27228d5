//! usbredir transport (see ARCHITECTURE.md).
