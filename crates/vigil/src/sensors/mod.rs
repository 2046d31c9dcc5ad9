//! Loading and attaching vigil's BPF programs, one module per sensor.
pub mod generic;
pub mod process;
