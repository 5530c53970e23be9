//! The p4lite software switch: table state and the control plane, extern
//! implementations, the reference interpreter, and the [`switch::Switch`]
//! that runs packets through a compiled (JIT) or interpreted pipeline.
//!
//! Time is a parameter: every packet carries its timestamp, the capture time
//! in replay and a monotonic clock reading taken by the live driver
//! (`live`) when the frame arrives. Nothing on the data path reads a clock
//! itself, so every replay is reproducible.

pub mod control;
pub mod ctl;
pub mod externs;
pub mod host;
pub mod interp;
pub mod ipvs;
pub mod live;
pub mod replay;
pub mod stf;
pub mod switch;
pub mod tables;
