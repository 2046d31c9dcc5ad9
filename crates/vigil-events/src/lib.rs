//! vigil's public event schema: Tetragon's JSON export format (proto3 JSON
//! with snake_case names, empty fields omitted), the `exec_id` scheme, and
//! the compact one-line rendering. Independent of the kernel wire format.

pub mod caps;
pub mod compact;
pub mod container;
pub mod exec_id;
pub mod schema;
pub mod timestamp;

pub use schema::*;
