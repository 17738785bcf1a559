//! Integration tests of cityos-engine.
