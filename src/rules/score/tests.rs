//! Unit tests of the key reader and the matcher.
