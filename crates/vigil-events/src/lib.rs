//! Event schema.
