//! Integration tests of ciclo-domain. One binary for the crate; each module is one area.
//! Tests may read fixture files; the library itself does no IO.

mod analytics;
