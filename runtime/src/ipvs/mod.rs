//! IPVS (Linux Virtual Server) model: virtual services and their real
//! servers ("dests"), the eight classic schedulers, and the connection table.
//!
//! The behaviour follows `/work/shared/ipvs-spec.md` (and, where it is
//! silent, the Linux `net/netfilter/ipvs` sources):
//! - [`service`]: services, dests in kernel list order (newest first), the
//!   dest trash, connection accounting and the threshold hysteresis, and the
//!   exact points at which scheduler hooks run.
//! - [`sched`]: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, plus a deliberately
//!   naive reference model used by the randomized equivalence tests.
//! - [`conn`]: the connection table.
//! - [`director`]: the per-switch director state the IPVS externs share, and
//!   the translation of `lb.conf` into table entries.
//! - [`health`]: keepalived-style health checks of real servers and
//!   load-driven weights (live mode).
//! - [`sync`]: connection synchronisation, the master and backup sync
//!   daemons (`ipvsadm --start-daemon`, spec section 5).
//!
//! Time is always a parameter (seconds); nothing here reads the wall clock,
//! except the live health monitor's thread ([`health::start`]).

pub mod admin;
pub mod conn;
pub mod director;
pub mod health;
pub mod sched;
pub mod service;
pub mod sync;
