//! The IPVS connection table (spec section 2): connection entries, the TCP
//! state machine, idle timers, active/inactive accounting, persistence
//! templates, port reuse, and a bounded size with an eviction policy.
//!
//! # Using it from the data path
//! Per packet, in the kernel's order (`ip_vs_in()` / `ip_vs_out()`):
//! 1. Client → VIP: [`ConnTable::lookup_in`]. A hit has already advanced the
//!    TCP state and re-armed the idle timer. A miss says why (no entry, or
//!    an old entry was expired by port reuse / `expire_nodest_conn`); then,
//!    if [`ConnTable::may_create`] allows it, the caller finds the service
//!    and schedules:
//!    - persistent service: [`TemplateKey::for_packet`] →
//!      [`ConnTable::template_lookup`] (validity check included); if none,
//!      run the scheduler and [`ConnTable::template_insert`]; the conn then
//!      goes to the template's dest with `control` set;
//!    - then [`ConnTable::insert`], which binds the dest, links and re-arms
//!      the template, and applies the creating packet's transition.
//!
//!    [`InLookup::Drop`] means "drop silently" (dest deleted, default
//!    `expire_nodest_conn = 0`; the entry is left untouched).
//! 2. Real server → client (NAT): [`ConnTable::lookup_out`].
//!
//! Every entry point takes the packet time in nanoseconds and first runs
//! every timer due at or before it ([`ConnTable::expire`] does only that):
//! expiry is driven by packet time, never by the wall clock, and is exact to
//! the millisecond, so dest counters are right whenever a scheduler reads
//! them. Timestamps that go backwards are treated as the latest one seen.
//!
//! # Semantics kept from the kernel (spec 2.1–2.9)
//! - New conns: flags = forwarding method | `INACTIVE` | `NOOUTPUT` (non-NAT);
//!   state NONE, timeout 3 s until the first transition; bound to their dest
//!   (`inactconns++`). The creating packet's transition is applied by
//!   `insert`. After every packet the timer is re-armed to now + the
//!   timeout of the state reached; the timeout table is read at that moment
//!   (so `--set` affects a conn at its next packet).
//! - TCP transitions and the active set {ES, SS, SR, SA} follow
//!   [`tcp`]; UDP (and any other protocol) has one state and the UDP timeout,
//!   and a reply marks its template ASSURED; TCP reaching ESTABLISHED does.
//! - Templates: key `(proto, client & netmask, 0, vaddr|fwmark, vport)`;
//!   timer = persistence timeout, re-armed only when a new conn is linked;
//!   at expiry a template that still controls conns is postponed by 60 s
//!   (and keeps 60 s as its timeout from then on, as the kernel does); an
//!   invalid template (dest deleted, or weight 0 with
//!   `expire_quiescent_template`) is re-keyed with `vport = dport = 0xFFFF`
//!   so it never matches again, and left to its timer.
//! - Port reuse (`conn_reuse_mode`, default 1): a SYN that hits an
//!   uncontrolled conn in TIME_WAIT or CLOSE (bit 2: also FIN_WAIT with
//!   NOOUTPUT) expires it and is treated as new. With `expire_nodest_conn`,
//!   a SYN hitting a conn whose dest has weight 0 does the same whatever
//!   `conn_reuse_mode` says (spec 2.8; kernel 5.16+, "ipvs: Fix reuse
//!   connection if RS weight is 0"), and any packet of a conn whose dest
//!   was deleted expires it and is treated as new.
//! - An in-lookup with client port 0 never matches (the kernel reserves
//!   port 0 for `NO_CPORT` entries, which are not modelled).
//! - "Expire now" is not instantaneous in the kernel: the timer fires after
//!   the current packet. So an entry expired by a lookup is unhashed at once
//!   (no later lookup finds it) but stays bound to its dest until the end of
//!   the next [`ConnTable::insert`] or the next lookup: the scheduler that
//!   picks the replacement still counts it, and the new conn is bound before
//!   the old one is unbound (this order matters for the OVERLOAD hysteresis).
//!
//! # Bounded size and eviction
//! With `max_conns > 0` (templates count too), an insert into a full table
//! first makes room, in this order; each step is counted in [`ConnStats`]:
//! 1. entries already expired: every due timer has run before any insert,
//!    and entries expired by lookups ("expire now", above) are reaped here
//!    (both counted as `expired`);
//! 2. the least recently active **transient** conn (TCP in any state but
//!    ESTABLISHED, UDP); `evicted_transient`;
//! 3. only if [`ConnConfig::evict_established`] (default off, like
//!    netfilter conntrack's early drop): the least recently active
//!    ESTABLISHED conn; `evicted_established`;
//! 4. otherwise the insert is refused (`refused`) and the caller drops the
//!    packet.
//!
//! Templates are never chosen for eviction; but evicting a conn that was its
//! template's last one frees the template too when it is not ASSURED (the
//! kernel does the same when it drops entries under memory pressure),
//! counted in `evicted_templates`. "Least recently active" is exact: each
//! class is kept in FIFO queues ordered by last re-arm (see `store`).
//!
//! # Memory
//! 48 bytes per entry (arena slack below one 4 KiB page, and at most 1/8
//! once the arena is on huge pages) plus 4–8 bytes of hash index (up to
//! 9.2 in an index of 2^17 heads or more, which doubles at 7/8 load), so at
//! most 64 bytes per conn with the queue table. Measured by
//! [`ConnTable::memory_bytes`] (the arena's written pages, the other arrays'
//! capacities; not allocator samples) in the tests: 56.6 bytes per conn at
//! one million conns, 56.1 right after the index doubled at 65 537, 60.0
//! just past the arena's move to huge pages, 61.7 at 300.

mod store;
mod sync;
pub mod tcp;

#[cfg(test)]
mod model_tests;

use std::fmt;
use std::net::Ipv4Addr;

use super::service::{DestId, FwdMethod, Services};
pub use store::{flag, MAX_TIMEOUT_S};
use store::{Class, Entry, Store, NIL, REBASE_AT_MS};
pub use sync::{SyncApplied, SyncPolicy, TEMPLATE_SYNC_TIMEOUT_S};
use tcp::{Direction, TcpState, DEFAULT_TCP_TIMEOUTS, DEFAULT_UDP_TIMEOUT, INITIAL_TIMEOUT, TCP_STATE_COUNT};

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// The FTP control port, which persistence treats specially (spec 2.6).
pub const FTP_PORT: u16 = 21;
/// Template state bit: a controlled conn was established / got a reply.
pub const TEMPLATE_ASSURED: u8 = 1;
/// The [`ConnTable`] queue cache slot of the initial (3 s) timeout.
const INITIAL_SLOT: usize = TCP_STATE_COUNT + 1;

/// Seconds a template's expiry is postponed while it controls conns.
pub const TEMPLATE_POSTPONE_S: u32 = 60;

/// What the table needs from the service model: the accounting hooks it
/// calls on bind, state change and unbind, and the two dest properties it
/// checks. Implemented by [`Services`]; tests use simple mocks.
pub trait DestAccounting {
    /// A new normal conn was bound to `d` (INACTIVE).
    fn conn_bound(&mut self, d: DestId);
    /// A conn was bound to `d` already active or inactive (a synchronised
    /// conn on a backup director).
    fn conn_bound_as(&mut self, d: DestId, active: bool) {
        self.conn_bound(d);
        if active {
            self.conn_activated(d);
        }
    }
    /// A conn of `d` entered an active TCP state.
    fn conn_activated(&mut self, d: DestId);
    /// A conn of `d` left the active TCP states.
    fn conn_deactivated(&mut self, d: DestId);
    /// A normal conn of `d` went away; `active` = it was counted active.
    fn conn_unbound(&mut self, d: DestId, active: bool);
    /// A persistence template was bound to `d`.
    fn template_bound(&mut self, d: DestId);
    /// A persistence template of `d` went away.
    fn template_unbound(&mut self, d: DestId);
    /// False once `d` was deleted from its service (in the trash).
    fn dest_available(&self, d: DestId) -> bool;
    /// The current weight of `d`.
    fn dest_weight(&self, d: DestId) -> u32;
}

impl DestAccounting for Services {
    fn conn_bound(&mut self, d: DestId) {
        Services::conn_bound(self, d)
    }
    fn conn_bound_as(&mut self, d: DestId, active: bool) {
        Services::conn_bound_as(self, d, active)
    }
    fn conn_activated(&mut self, d: DestId) {
        Services::conn_activated(self, d)
    }
    fn conn_deactivated(&mut self, d: DestId) {
        Services::conn_deactivated(self, d)
    }
    fn conn_unbound(&mut self, d: DestId, active: bool) {
        Services::conn_unbound(self, d, active)
    }
    fn template_bound(&mut self, d: DestId) {
        Services::template_bound(self, d)
    }
    fn template_unbound(&mut self, d: DestId) {
        Services::template_unbound(self, d)
    }
    fn dest_available(&self, d: DestId) -> bool {
        self.try_dest(d).is_some_and(|x| x.available)
    }
    fn dest_weight(&self, d: DestId) -> u32 {
        self.try_dest(d).map_or(0, |x| x.weight)
    }
}

/// Index of an entry. Valid until the entry goes away (the slot is then
/// reused), so hold it only within the processing of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

impl ConnId {
    /// The id of a one-packet conn, which is never stored.
    pub const NONE: ConnId = ConnId(u32::MAX);
}

/// Sysctls and limits of the table (spec 2.9) and its eviction policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnConfig {
    /// Idle timeout per TCP state, seconds (`ipvsadm --set` changes ES and FIN_WAIT).
    pub tcp_timeouts: [u32; TCP_STATE_COUNT],
    /// UDP (and other protocols') timeout, seconds.
    pub udp_timeout: u32,
    /// `secure_tcp`: use the DoS transition tables.
    pub secure_tcp: bool,
    /// `sloppy_tcp`: any non-RST TCP packet may create a conn.
    pub sloppy_tcp: bool,
    /// `conn_reuse_mode` bitmask (0 = a SYN reuses the old conn, unless
    /// `expire_nodest_conn` and the old conn's dest has weight 0).
    pub conn_reuse_mode: u8,
    /// `expire_nodest_conn`.
    pub expire_nodest_conn: bool,
    /// `expire_quiescent_template`.
    pub expire_quiescent_template: bool,
    /// Maximum number of entries (conns and templates); 0 = unbounded.
    pub max_conns: u32,
    /// Whether a full table may evict ESTABLISHED conns (else it refuses).
    pub evict_established: bool,
}

impl Default for ConnConfig {
    fn default() -> ConnConfig {
        ConnConfig {
            tcp_timeouts: DEFAULT_TCP_TIMEOUTS,
            udp_timeout: DEFAULT_UDP_TIMEOUT,
            secure_tcp: false,
            sloppy_tcp: false,
            conn_reuse_mode: 1,
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            max_conns: 0,
            evict_established: false,
        }
    }
}

/// Counters of the table's operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Conns created (including one-packet conns).
    pub inserts: u64,
    /// Templates created.
    pub templates: u64,
    /// `lookup_in` + `lookup_out` calls.
    pub lookups: u64,
    /// Lookups that found a conn (including [`InLookup::Drop`]).
    pub hits: u64,
    /// Lookups that did not (including entries expired by the lookup).
    pub misses: u64,
    /// Template lookups.
    pub template_lookups: u64,
    /// Template lookups that returned a valid template.
    pub template_hits: u64,
    /// Templates invalidated by the validity check.
    pub templates_invalidated: u64,
    /// Entries removed by their timer, or by an "expire now" of a lookup
    /// (port reuse, `expire_nodest_conn`; those are also counted below).
    pub expired: u64,
    /// Template expiries postponed because they still controlled conns.
    pub postponed: u64,
    /// Conns expired by port reuse (`conn_reuse_mode`).
    pub reused: u64,
    /// Conns expired on a packet by `expire_nodest_conn`.
    pub nodest_expired: u64,
    /// Packets of conns whose dest is unavailable, dropped.
    pub nodest_dropped: u64,
    /// Entries removed by `flush_unavailable` or `clear`.
    pub flushed: u64,
    /// Transient conns evicted from a full table.
    pub evicted_transient: u64,
    /// ESTABLISHED conns evicted from a full table.
    pub evicted_established: u64,
    /// Non-ASSURED templates freed with their last evicted conn.
    pub evicted_templates: u64,
    /// Inserts refused because nothing could be evicted.
    pub refused: u64,
    /// One-packet conns (created and expired by the same packet).
    pub one_packet: u64,
    /// Conns and templates created from sync records (backup).
    pub sync_created: u64,
    /// Conns and templates updated from sync records (backup).
    pub sync_updated: u64,
    /// Sync records ignored as the stale expiry notice of a replaced conn.
    pub sync_stale: u64,
}

/// Entries per state, for listings and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// TCP conns by state number.
    pub tcp: [u32; TCP_STATE_COUNT],
    /// UDP conns.
    pub udp: u32,
    /// Conns of other protocols.
    pub other: u32,
    /// Templates (assured or not).
    pub templates: u32,
    /// Templates in state ASSURED.
    pub assured_templates: u32,
}

/// A packet's addresses and ports as seen on the wire (IPv4, host order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// IP protocol number.
    pub proto: u8,
    /// Source address.
    pub saddr: u32,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub daddr: u32,
    /// Destination port.
    pub dport: u16,
}

impl Tuple {
    /// A tuple from `Ipv4Addr`s.
    pub fn new(proto: u8, saddr: Ipv4Addr, sport: u16, daddr: Ipv4Addr, dport: u16) -> Tuple {
        Tuple { proto, saddr: saddr.into(), sport, daddr: daddr.into(), dport }
    }
}

/// A conn to create after scheduling (spec 2.2 `ip_vs_conn_new()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewConn {
    /// IP protocol number.
    pub proto: u8,
    /// Client address.
    pub caddr: u32,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: u32,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: u32,
    /// Real server port ([`conn_dport`] computes it).
    pub dport: u16,
    /// The dest it is bound to.
    pub dest: DestId,
    /// Forwarding method (the dest's at creation time).
    pub fwd: FwdMethod,
    /// The controlling template (persistent services).
    pub control: Option<ConnId>,
    /// One-packet scheduling (`-o`; honoured for UDP only, as in the kernel).
    pub one_packet: bool,
}

impl NewConn {
    /// The conn of inbound packet `t` to real server `daddr:dport` of `dest`.
    pub fn for_packet(t: &Tuple, dest: DestId, daddr: u32, dport: u16, fwd: FwdMethod) -> NewConn {
        NewConn {
            proto: t.proto,
            caddr: t.saddr,
            cport: t.sport,
            vaddr: t.daddr,
            vport: t.dport,
            daddr,
            dport,
            dest,
            fwd,
            control: None,
            one_packet: false,
        }
    }
}

/// The key of a persistence template (spec 2.6 step 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    /// Packet protocol, or 0 (`IPPROTO_IP`) for fwmark services.
    pub proto: u8,
    /// Client address & netmask.
    pub caddr: u32,
    /// VIP, or the fwmark for fwmark services.
    pub vaddr: u32,
    /// Service port, or 0 (FTP, port-zero and fwmark services).
    pub vport: u16,
}

impl TemplateKey {
    /// The template key of a packet `caddr → vaddr:dport` of `proto` for a
    /// persistent service with port `svc_port`, netmask `netmask` and, for
    /// fwmark services, `fwmark` (`ip_vs_sched_persist()`).
    pub fn for_packet(
        proto: u8,
        caddr: u32,
        netmask: u32,
        vaddr: u32,
        dport: u16,
        svc_port: u16,
        fwmark: Option<u32>,
    ) -> TemplateKey {
        let snet = caddr & netmask;
        if dport == svc_port {
            // Note: a fwmark service (port 0) hit on port 0 lands here too,
            // keyed by VIP and protocol, exactly like the kernel.
            let vport = if svc_port != FTP_PORT { dport } else { 0 };
            TemplateKey { proto, caddr: snet, vaddr, vport }
        } else if let Some(mark) = fwmark {
            TemplateKey { proto: 0, caddr: snet, vaddr: mark, vport: 0 }
        } else {
            TemplateKey { proto, caddr: snet, vaddr, vport: 0 }
        }
    }
}

/// The real-server port of a new template (spec 2.6 step 3): the dest's
/// port when the packet hit the (non-FTP) service port, else 0.
pub fn template_dport(pkt_dport: u16, svc_port: u16, dest_port: u16) -> u16 {
    if pkt_dport == svc_port && svc_port != FTP_PORT {
        dest_port
    } else {
        0
    }
}

/// The real-server port of a new conn (spec 2.2 / 2.6 step 4): the packet's
/// port, replaced by the dest's when it hit the service port and the dest
/// has a port (fwmark services' dests may have none).
pub fn conn_dport(pkt_dport: u16, svc_port: u16, dest_port: u16) -> u16 {
    if pkt_dport == svc_port && dest_port != 0 {
        dest_port
    } else {
        pkt_dport
    }
}

/// A snapshot of one entry (what a lookup returns and `iter` lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    /// Its id ([`ConnId::NONE`] for a one-packet conn).
    pub id: ConnId,
    /// IP protocol number (0 for fwmark templates).
    pub proto: u8,
    /// Client address (templates: client network).
    pub caddr: u32,
    /// Client port (templates: 0).
    pub cport: u16,
    /// Virtual address (fwmark templates: the fwmark).
    pub vaddr: u32,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: u32,
    /// Real server port.
    pub dport: u16,
    /// `IP_VS_CONN_F_*` bits ([`flag`]).
    pub flags: u16,
    /// TCP state number, 0 for UDP, template NONE 0 / ASSURED 1.
    pub state: u8,
    /// The bound dest.
    pub dest: Option<DestId>,
    /// The controlling template (normal conns).
    pub control: Option<ConnId>,
    /// Number of conns a template controls.
    pub n_control: u32,
    /// Current timeout in seconds.
    pub timeout_s: u32,
    /// Deadline: packet time in milliseconds.
    pub expires_ms: u64,
}

impl Conn {
    /// True for a persistence template.
    pub fn is_template(&self) -> bool {
        self.flags & flag::TEMPLATE != 0
    }

    /// True if counted in the dest's `activeconns`.
    pub fn is_active(&self) -> bool {
        !self.is_template() && self.flags & flag::INACTIVE == 0
    }

    /// The forwarding method.
    pub fn fwd(&self) -> FwdMethod {
        fwd_of(self.flags)
    }

    /// The TCP state, for TCP conns.
    pub fn tcp_state(&self) -> Option<TcpState> {
        if self.is_template() || self.proto != PROTO_TCP {
            None
        } else {
            TcpState::from_u8(self.state)
        }
    }

    /// The state name `ipvsadm -Lnc` prints (`ip_vs_state_name()`).
    pub fn state_name(&self) -> &'static str {
        if self.is_template() {
            return if self.state & TEMPLATE_ASSURED != 0 { "ASSURED" } else { "NONE" };
        }
        match self.proto {
            PROTO_TCP => TcpState::from_u8(self.state).map_or("ERR!", TcpState::name),
            PROTO_UDP => "UDP",
            0 => "NONE",
            _ => "ERR!",
        }
    }

    /// Whole seconds until the deadline (what `/proc/net/ip_vs_conn` shows).
    pub fn remaining_secs(&self, now_ns: u64) -> u64 {
        self.expires_ms.saturating_sub(now_ns / 1_000_000) / 1000
    }

    /// One `ipvsadm -Lnc` row (numeric; spec 4.2), without newline.
    pub fn lnc_row(&self, now_ns: u64) -> String {
        let secs = self.remaining_secs(now_ns);
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let ep = |a: u32, p: u16| format!("{}:{}", Ipv4Addr::from(a), p);
        format!(
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            ProtoName(self.proto).to_string(),
            expire,
            self.state_name(),
            ep(self.caddr, self.cport),
            ep(self.vaddr, self.vport),
            ep(self.daddr, self.dport)
        )
    }
}

/// The kernel's protocol name (`ip_vs_proto_name()`): `TCP`, `UDP`,
/// `SCTP`, `IP` for 0, else `IP_<n>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtoName(pub u8);

impl fmt::Display for ProtoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("IP"),
            PROTO_TCP => f.write_str("TCP"),
            PROTO_UDP => f.write_str("UDP"),
            132 => f.write_str("SCTP"),
            n => write!(f, "IP_{n}"),
        }
    }
}

/// Why [`ConnTable::lookup_in`] found no usable conn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// No entry for the packet.
    NotFound,
    /// A SYN hit a closing conn; it was expired (`conn_reuse_mode`).
    PortReuse,
    /// A SYN hit a conn whose dest has weight 0; it was expired
    /// (`expire_nodest_conn`).
    DestQuiesced,
    /// The conn's dest was deleted; it was expired (`expire_nodest_conn`).
    DestUnavailable,
}

/// Result of [`ConnTable::lookup_in`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InLookup {
    /// The conn, after this packet's transition and timer re-arm.
    Hit(Conn),
    /// No conn; the packet may be scheduled as new (see [`ConnTable::may_create`]).
    Miss(Miss),
    /// The conn's dest was deleted and `expire_nodest_conn` is off: drop the
    /// packet silently; the conn's state and timer were not touched.
    Drop(Conn),
}

/// Result of [`ConnTable::lookup_in_brief`]: the same outcome as
/// [`InLookup`], with only the fields the data path needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InBrief {
    /// A hit, after this packet's transition and timer re-arm.
    Hit(HitBrief),
    /// No conn (as [`InLookup::Miss`]).
    Miss(Miss),
    /// Drop silently (as [`InLookup::Drop`]).
    Drop,
}

/// What [`ConnTable::lookup_in_brief`] returns for a hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HitBrief {
    /// The forwarding method.
    pub fwd: FwdMethod,
    /// Real server address.
    pub daddr: u32,
    /// Real server port.
    pub dport: u16,
    /// The bound dest.
    pub dest: Option<DestId>,
}

/// Inbound lookup outcome by entry index (internal).
enum RawIn {
    Hit(u32),
    Miss(Miss),
    Drop(u32),
}

/// Why an insert failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The table is full and nothing could be evicted.
    Full,
    /// `control` does not name a live template.
    NoSuchTemplate,
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsertError::Full => f.write_str("connection table full"),
            InsertError::NoSuchTemplate => f.write_str("no such persistence template"),
        }
    }
}

impl std::error::Error for InsertError {}

/// A timeout outside `0..=MAX_TIMEOUT_S` (the kernel answers EINVAL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutRange(pub u32);

impl fmt::Display for TimeoutRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timeout {} s out of range (max {MAX_TIMEOUT_S})", self.0)
    }
}

impl std::error::Error for TimeoutRange {}

/// How an entry leaves the table (decides what else goes and what is counted).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Removal {
    /// Its timer (or an "expire now") fired.
    Expired,
    /// Evicted from a full table: a non-ASSURED template left without
    /// conns goes too (unless it is `protect`ed).
    Evicted,
    /// Deleted by a flush.
    Flushed,
}

/// The connection table. See the module docs.
#[derive(Clone, Debug)]
pub struct ConnTable {
    store: Store,
    cfg: ConnConfig,
    stats: ConnStats,
    /// Absolute ms that relative time 0 stands for.
    base_ms: u64,
    /// Relative ms of the latest operation.
    now_rel: u32,
    /// Latest absolute ms seen (time never goes backwards).
    last_ms: u64,
    /// Entries expired "now" by a lookup, unhashed, awaiting unbinding.
    doomed: Vec<u32>,
    /// Cached queue ids: TCP states, then UDP, then the initial timeout
    /// ([`INITIAL_SLOT`]); validated before use.
    qcache: [u16; TCP_STATE_COUNT + 2],
    /// A master sync daemon's bookkeeping, while one runs (`sync` module).
    sync: Option<Box<sync::SyncTrack>>,
}

impl Default for ConnTable {
    fn default() -> ConnTable {
        ConnTable::new(ConnConfig::default())
    }
}

impl ConnTable {
    /// An empty table.
    pub fn new(mut cfg: ConnConfig) -> ConnTable {
        clamp_timeouts(&mut cfg);
        ConnTable {
            store: Store::new(),
            cfg,
            stats: ConnStats::default(),
            base_ms: 0,
            now_rel: 0,
            last_ms: 0,
            doomed: Vec::new(),
            qcache: [u16::MAX; TCP_STATE_COUNT + 2],
            sync: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ConnConfig {
        &self.cfg
    }

    /// Replaces the configuration (sysctls, timeouts, limits). Timeouts take
    /// effect at each conn's next packet; a lower `max_conns` at the next
    /// insert; timeouts above [`MAX_TIMEOUT_S`] are clamped.
    pub fn set_config(&mut self, mut cfg: ConnConfig) {
        clamp_timeouts(&mut cfg);
        self.cfg = cfg;
    }

    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP
    /// timeouts in seconds; 0 leaves a value unchanged.
    pub fn set_timeouts(&mut self, tcp: u32, tcpfin: u32, udp: u32) -> Result<(), TimeoutRange> {
        for t in [tcp, tcpfin, udp] {
            if t > MAX_TIMEOUT_S {
                return Err(TimeoutRange(t));
            }
        }
        if tcp != 0 {
            self.cfg.tcp_timeouts[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.cfg.tcp_timeouts[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.cfg.udp_timeout = udp;
        }
        Ok(())
    }

    /// `ipvsadm --timeout`: the (tcp, tcpfin, udp) timeouts in seconds.
    pub fn timeouts(&self) -> (u32, u32, u32) {
        (
            self.cfg.tcp_timeouts[TcpState::Established as usize],
            self.cfg.tcp_timeouts[TcpState::FinWait as usize],
            self.cfg.udp_timeout,
        )
    }

    /// Counters.
    pub fn stats(&self) -> &ConnStats {
        &self.stats
    }

    /// Number of entries held (conns and templates, including conns expired
    /// by a lookup and not yet unbound).
    pub fn len(&self) -> usize {
        self.store.len as usize
    }

    /// True if the table holds nothing.
    pub fn is_empty(&self) -> bool {
        self.store.len == 0
    }

    /// Bytes held by the table's arrays (capacities, not allocator samples).
    pub fn memory_bytes(&self) -> usize {
        self.store.memory_bytes() + self.doomed.capacity() * std::mem::size_of::<u32>()
    }

    /// Whether a packet without a conn may create one (spec 2.7): TCP needs
    /// SYN (any non-RST with `sloppy_tcp`) and never RST; UDP always; other
    /// protocols are not load balanced.
    pub fn may_create(&self, proto: u8, tcp_flags: u8) -> bool {
        match proto {
            PROTO_TCP => tcp_flags & tcp::flags::RST == 0 && (tcp_flags & tcp::flags::SYN != 0 || self.cfg.sloppy_tcp),
            PROTO_UDP => true,
            _ => false,
        }
    }

    // ---- data path ---------------------------------------------------------

    /// Client → VIP packet `t` with TCP flags `tcp_flags` (ignored for UDP)
    /// at `now_ns`: finds its conn, applies port reuse and the dest checks,
    /// advances the state and re-arms the timer. See [`InLookup`].
    pub fn lookup_in<H: DestAccounting>(&mut self, h: &mut H, t: &Tuple, tcp_flags: u8, now_ns: u64) -> InLookup {
        match self.lookup_in_raw(h, t, tcp_flags, now_ns) {
            RawIn::Hit(i) => InLookup::Hit(self.view(i)),
            RawIn::Miss(m) => InLookup::Miss(m),
            RawIn::Drop(i) => InLookup::Drop(self.view(i)),
        }
    }

    /// [`ConnTable::lookup_in`] with the same effects, returning only what
    /// the data path rewrites with (no full [`Conn`] snapshot is built).
    pub fn lookup_in_brief<H: DestAccounting>(&mut self, h: &mut H, t: &Tuple, tcp_flags: u8, now_ns: u64) -> InBrief {
        match self.lookup_in_raw(h, t, tcp_flags, now_ns) {
            RawIn::Hit(i) => {
                let e = &self.store.entries[i as usize];
                InBrief::Hit(HitBrief {
                    fwd: fwd_of(e.flags),
                    daddr: e.daddr,
                    dport: e.dport,
                    dest: (e.dest != NIL).then_some(DestId(e.dest)),
                })
            }
            RawIn::Miss(m) => InBrief::Miss(m),
            RawIn::Drop(_) => InBrief::Drop,
        }
    }

    /// The body of both inbound lookups: the entry index of a hit or drop.
    #[inline(always)]
    fn lookup_in_raw<H: DestAccounting>(&mut self, h: &mut H, t: &Tuple, tcp_flags: u8, now_ns: u64) -> RawIn {
        self.advance(h, now_ns, true);
        self.stats.lookups += 1;
        let Some(i) = self.find_in(t) else {
            self.stats.misses += 1;
            return RawIn::Miss(Miss::NotFound);
        };
        let dest_raw = self.store.entries[i as usize].dest;
        let dest = (dest_raw != NIL).then_some(DestId(dest_raw));
        if t.proto == PROTO_TCP && tcp_flags & tcp::flags::SYN != 0 {
            let e = self.store.entries[i as usize];
            // The quiesced rule does not depend on conn_reuse_mode.
            let quiesced = self.cfg.expire_nodest_conn && dest.is_some_and(|d| h.dest_weight(d) == 0);
            if quiesced || (self.cfg.conn_reuse_mode != 0 && self.new_conn_expected(&e)) {
                self.doom(i);
                self.stats.misses += 1;
                return if quiesced {
                    self.stats.nodest_expired += 1;
                    RawIn::Miss(Miss::DestQuiesced)
                } else {
                    self.stats.reused += 1;
                    RawIn::Miss(Miss::PortReuse)
                };
            }
        }
        if dest.is_some_and(|d| !h.dest_available(d)) {
            if self.cfg.expire_nodest_conn {
                self.doom(i);
                self.stats.misses += 1;
                self.stats.nodest_expired += 1;
                return RawIn::Miss(Miss::DestUnavailable);
            }
            self.stats.hits += 1;
            self.stats.nodest_dropped += 1;
            return RawIn::Drop(i);
        }
        self.stats.hits += 1;
        let (q, exp) = self.transition(h, i, Direction::Input, tcp_flags);
        self.store.rearm(i, q, exp);
        if self.sync.is_some() {
            self.sync_inbound(i);
        }
        RawIn::Hit(i)
    }

    /// A hint that a lookup of the conn whose client is `caddr:cport`
    /// (protocol `proto`) comes soon: warms the caches for it (the
    /// `conn_table.prefetch` extern, run by the switch's hint pass).
    /// Changes nothing a lookup, a listing or the statistics can see.
    pub fn prefetch(&mut self, proto: u8, caddr: u32, cport: u16) {
        self.store.prefetch_key(proto, caddr, cport);
    }

    /// Whether the last hint was for the conn whose client is `caddr:cport`
    /// (or one sharing its hash chain), for tests of who hints what.
    pub fn last_hint_is(&self, proto: u8, caddr: u32, cport: u16) -> bool {
        self.store.last_hint_is(proto, caddr, cport)
    }

    /// Prefetch hints taken so far ([`ConnTable::prefetch`]).
    pub fn prefetch_hints(&self) -> u64 {
        self.store.hints
    }

    /// Server → client packet `t` (a NAT reply from `daddr:dport`, or a
    /// DR/TUN reply from `vaddr:vport`): finds the conn, applies the OUTPUT
    /// transition (clearing NOOUTPUT) and re-arms the timer.
    pub fn lookup_out<H: DestAccounting>(&mut self, h: &mut H, t: &Tuple, tcp_flags: u8, now_ns: u64) -> Option<Conn> {
        self.advance(h, now_ns, true);
        self.stats.lookups += 1;
        let Some(i) = self.find_out(t) else {
            self.stats.misses += 1;
            return None;
        };
        self.stats.hits += 1;
        let (q, exp) = self.transition(h, i, Direction::Output, tcp_flags);
        self.store.rearm(i, q, exp);
        Some(self.view(i))
    }

    /// The conn of the inbound packet `t` an ICMP error quotes (kernel:
    /// `ip_vs_in_icmp`): runs the timers due at `now_ns` and counts the
    /// lookup, but neither advances the TCP state, re-arms the timer, nor
    /// drops or expires the conn of an unavailable dest (the error is still
    /// forwarded; only its statistics are skipped, by the caller).
    pub fn related_in<H: DestAccounting>(&mut self, h: &mut H, t: &Tuple, now_ns: u64) -> Option<Conn> {
        self.advance(h, now_ns, true);
        self.related(self.find_in(t))
    }

    /// [`ConnTable::related_in`] for an ICMP error quoting a packet that
    /// went to the real server (kernel: `ip_vs_out_icmp`); NOOUTPUT stays.
    pub fn related_out<H: DestAccounting>(&mut self, h: &mut H, t: &Tuple, now_ns: u64) -> Option<Conn> {
        self.advance(h, now_ns, true);
        self.related(self.find_out(t))
    }

    /// Counts a related lookup's hit or miss.
    fn related(&mut self, found: Option<u32>) -> Option<Conn> {
        self.stats.lookups += 1;
        match found {
            Some(i) => {
                self.stats.hits += 1;
                Some(self.view(i))
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// The conn inbound packet `t` belongs to, without side effects (ICMP
    /// errors use this: they neither change state nor re-arm timers).
    pub fn find_in_conn(&self, t: &Tuple) -> Option<Conn> {
        self.find_in(t).map(|i| self.view(i))
    }

    /// The conn reply packet `t` belongs to, without side effects.
    pub fn find_out_conn(&self, t: &Tuple) -> Option<Conn> {
        self.find_out(t).map(|i| self.view(i))
    }

    /// Creates conn `c` for the packet that was just scheduled (TCP flags
    /// `tcp_flags`) at `now_ns`: binds the dest (INACTIVE), links and
    /// re-arms the template, applies the packet's INPUT transition and arms
    /// the timer. A one-packet UDP conn is bound and unbound at once and not
    /// stored. A full table evicts or refuses (module docs); on refusal the
    /// template is still re-armed, as in the kernel.
    pub fn insert<H: DestAccounting>(
        &mut self,
        h: &mut H,
        c: &NewConn,
        tcp_flags: u8,
        now_ns: u64,
    ) -> Result<Conn, InsertError> {
        self.advance(h, now_ns, false);
        let ctl = match c.control {
            None => NIL,
            Some(ConnId(t)) if self.is_template(t) => t,
            Some(_) => return Err(InsertError::NoSuchTemplate),
        };
        let one_packet = c.one_packet && c.proto == PROTO_UDP;
        if !one_packet && !self.make_room(h, ctl) {
            self.stats.refused += 1;
            if ctl != NIL {
                self.rearm_template(ctl);
            }
            self.reap_doomed(h);
            return Err(InsertError::Full);
        }
        let mut flags = fwd_bits(c.fwd) | flag::INACTIVE;
        if c.fwd != FwdMethod::Masq {
            flags |= flag::NOOUTPUT;
        }
        h.conn_bound(c.dest);
        self.stats.inserts += 1;
        if one_packet {
            // UDP has no state to advance; the conn expires right after
            // the packet, which leaves the counters as they were.
            if ctl != NIL {
                self.rearm_template(ctl);
                if self.sync.is_some() {
                    self.sync_template(ctl);
                }
            }
            h.conn_unbound(c.dest, false);
            self.stats.one_packet += 1;
            self.reap_doomed(h);
            let udp = self.cfg.udp_timeout;
            return Ok(Conn {
                id: ConnId::NONE,
                proto: c.proto,
                caddr: c.caddr,
                cport: c.cport,
                vaddr: c.vaddr,
                vport: c.vport,
                daddr: c.daddr,
                dport: c.dport,
                flags: flags | flag::ONE_PACKET,
                state: 0,
                dest: Some(c.dest),
                control: (ctl != NIL).then_some(ConnId(ctl)),
                n_control: 0,
                timeout_s: udp,
                expires_ms: self.base_ms + u64::from(self.now_rel),
            });
        }
        let i = self.store.alloc(Entry {
            caddr: c.caddr,
            vaddr: c.vaddr,
            daddr: c.daddr,
            expires: 0,
            link: ctl,
            dest: c.dest.0,
            hnext: NIL,
            qprev: NIL,
            qnext: NIL,
            cport: c.cport,
            vport: c.vport,
            dport: c.dport,
            flags,
            proto: c.proto,
            state: TcpState::None as u8,
            queue: 0,
        });
        self.store.hash(i);
        if ctl != NIL {
            self.store.entries[ctl as usize].link += 1;
            self.rearm_template(ctl);
        }
        // The kernel arms the new conn with the initial 3 s timeout, then
        // the creating packet's transition re-arms it. The entry goes
        // straight to its final queue (the tail of the queue, as the two
        // steps would leave it); while the transition picks that queue, the
        // initial queue counts it, so no queue is recycled differently.
        let q0 = self.queue_cached(INITIAL_SLOT, INITIAL_TIMEOUT, Class::Transient);
        self.store.queues[usize::from(q0)].len += 1;
        let (q, exp) = self.transition(h, i, Direction::Input, tcp_flags);
        self.store.queues[usize::from(q0)].len -= 1;
        self.store.push(i, q, exp);
        if self.sync.is_some() {
            self.sync_reset(i);
            self.sync_inbound(i);
        }
        // The kernel binds the new conn before the timers of conns expired
        // by the lookup fire.
        self.reap_doomed(h);
        Ok(self.view(i))
    }

    // ---- persistence ---------------------------------------------------------

    /// Finds the template for `key` (`ip_vs_ct_in_get()`) and checks it
    /// (`ip_vs_check_template()`): a template whose dest is unavailable, or
    /// has weight 0 with `expire_quiescent_template`, is invalidated
    /// (re-keyed to `vport = dport = 0xFFFF`) and `None` is returned. Its
    /// timer is not touched either way; linking a conn re-arms it.
    pub fn template_lookup<H: DestAccounting>(&mut self, h: &mut H, key: &TemplateKey, now_ns: u64) -> Option<Conn> {
        self.advance(h, now_ns, false);
        self.stats.template_lookups += 1;
        let p = self.find_template(key)?;
        let e = self.store.entries[p as usize];
        let valid = e.dest != NIL && {
            let d = DestId(e.dest);
            h.dest_available(d) && !(self.cfg.expire_quiescent_template && h.dest_weight(d) == 0)
        };
        if !valid {
            if e.vport != 0xFFFF {
                // Re-hash like the kernel: the template moves to the head
                // of its chain with ports that no lookup uses.
                self.store.unhash(p);
                let t = &mut self.store.entries[p as usize];
                t.vport = 0xFFFF;
                t.dport = 0xFFFF;
                t.cport = 0;
                self.store.hash(p);
                self.stats.templates_invalidated += 1;
            }
            return None;
        }
        self.stats.template_hits += 1;
        Some(self.view(p))
    }

    /// Creates a template for `key` pointing at `dest` (`daddr:dport`, see
    /// [`template_dport`]) with the service's persistence timeout
    /// `timeout_s`; it is bound to the dest (`persistconns++`). A full table
    /// evicts or refuses as for conns.
    #[allow(clippy::too_many_arguments)]
    pub fn template_insert<H: DestAccounting>(
        &mut self,
        h: &mut H,
        key: &TemplateKey,
        daddr: u32,
        dport: u16,
        dest: DestId,
        fwd: FwdMethod,
        timeout_s: u32,
        now_ns: u64,
    ) -> Result<Conn, InsertError> {
        self.advance(h, now_ns, false);
        if !self.make_room(h, NIL) {
            self.stats.refused += 1;
            return Err(InsertError::Full);
        }
        let mut flags = fwd_bits(fwd) | flag::INACTIVE | flag::TEMPLATE;
        if fwd != FwdMethod::Masq {
            flags |= flag::NOOUTPUT;
        }
        let i = self.store.alloc(Entry {
            caddr: key.caddr,
            vaddr: key.vaddr,
            daddr,
            expires: 0,
            link: 0,
            dest: dest.0,
            hnext: NIL,
            qprev: NIL,
            qnext: NIL,
            cport: 0,
            vport: key.vport,
            dport,
            flags,
            proto: key.proto,
            state: 0,
            queue: 0,
        });
        self.store.hash(i);
        h.template_bound(dest);
        let timeout = timeout_s.min(MAX_TIMEOUT_S);
        let q = self.store.queue_for(timeout, Class::Template);
        self.store.push(i, q, self.deadline(timeout));
        if self.sync.is_some() {
            self.sync_reset(i);
        }
        self.stats.templates += 1;
        Ok(self.view(i))
    }

    // ---- time and control plane ----------------------------------------------

    /// Runs every timer due at or before `now_ns` (and unbinds conns expired
    /// by earlier lookups).
    pub fn expire<H: DestAccounting>(&mut self, h: &mut H, now_ns: u64) {
        self.advance(h, now_ns, true);
    }

    /// True if [`ConnTable::expire`] at `now_ns` would only move the
    /// clock: no conn awaits unbinding, no timer is due, no rebase. (A
    /// later call at an earlier time then acts at the latest time seen
    /// only if the caller passes that time: the director does.)
    #[inline]
    pub fn quiet_at(&self, now_ns: u64) -> bool {
        let rel = (now_ns / 1_000_000).max(self.last_ms).saturating_sub(self.base_ms);
        self.doomed.is_empty() && rel < u64::from(self.store.next_due) && rel < REBASE_AT_MS
    }

    /// The background job of `expire_nodest_conn` (spec 2.8): removes every
    /// conn and template whose dest is no longer available. The kernel
    /// queues it when a dest is deleted while the sysctl is on; the caller
    /// decides when to run it (it scans the whole table).
    pub fn flush_unavailable<H: DestAccounting>(&mut self, h: &mut H, now_ns: u64) {
        self.advance(h, now_ns, true);
        for templates in [false, true] {
            let victims: Vec<u32> = (0..self.store.entries.len() as u32)
                .filter(|&i| {
                    let e = &self.store.entries[i as usize];
                    e.flags & flag::FREE == 0
                        && (e.flags & flag::TEMPLATE != 0) == templates
                        && e.dest != NIL
                        && !h.dest_available(DestId(e.dest))
                        // Templates go once their conns are gone (just above).
                        && !(templates && e.link > 0)
                })
                .collect();
            for i in victims {
                self.remove(h, i, Removal::Flushed, NIL);
            }
        }
    }

    /// Removes every entry, unbinding each (conns first, then templates).
    pub fn clear<H: DestAccounting>(&mut self, h: &mut H) {
        self.reap_doomed(h);
        for templates in [false, true] {
            for i in 0..self.store.entries.len() as u32 {
                let e = &self.store.entries[i as usize];
                if e.flags & flag::FREE == 0 && (e.flags & flag::TEMPLATE != 0) == templates {
                    self.remove(h, i, Removal::Flushed, NIL);
                }
            }
        }
        self.store.clear();
    }

    // ---- inspection ------------------------------------------------------------

    /// The entry `id`, if it exists.
    pub fn get(&self, id: ConnId) -> Option<Conn> {
        self.store.is_live(id.0).then(|| self.view(id.0))
    }

    /// Every entry (conns and templates) in arena order, for `ipvsadm -Lnc`.
    /// Conns already expired by a lookup are left out.
    pub fn iter(&self) -> impl Iterator<Item = Conn> + '_ {
        (0..self.store.entries.len() as u32)
            .filter(|&i| {
                let f = self.store.entries[i as usize].flags;
                f & flag::FREE == 0 && f & flag::HASHED != 0
            })
            .map(|i| self.view(i))
    }

    /// Entries per state (over [`ConnTable::iter`]).
    pub fn state_counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for e in self.iter() {
            if e.is_template() {
                c.templates += 1;
                if e.state & TEMPLATE_ASSURED != 0 {
                    c.assured_templates += 1;
                }
            } else {
                match e.proto {
                    PROTO_TCP => c.tcp[usize::from(e.state).min(TCP_STATE_COUNT - 1)] += 1,
                    PROTO_UDP => c.udp += 1,
                    _ => c.other += 1,
                }
            }
        }
        c
    }

    /// The `ipvsadm -Lnc` output (header and one row per entry) at `now_ns`.
    pub fn lnc_listing(&self, now_ns: u64) -> String {
        let mut out = String::from("IPVS connection entries\n");
        out.push_str(&format!("pro expire {:<11} {:<18} {:<18} {}\n", "state", "source", "virtual", "destination"));
        for c in self.iter() {
            out.push_str(&c.lnc_row(now_ns));
            out.push('\n');
        }
        out
    }

    // ---- internals ---------------------------------------------------------------

    fn view(&self, i: u32) -> Conn {
        let e = &self.store.entries[i as usize];
        let template = e.flags & flag::TEMPLATE != 0;
        Conn {
            id: ConnId(i),
            proto: e.proto,
            caddr: e.caddr,
            cport: e.cport,
            vaddr: e.vaddr,
            vport: e.vport,
            daddr: e.daddr,
            dport: e.dport,
            flags: e.flags,
            state: e.state,
            dest: (e.dest != NIL).then_some(DestId(e.dest)),
            control: (!template && e.link != NIL).then_some(ConnId(e.link)),
            n_control: if template { e.link } else { 0 },
            timeout_s: self.store.queues[usize::from(e.queue)].timeout_s,
            expires_ms: self.base_ms + u64::from(e.expires),
        }
    }

    fn is_template(&self, i: u32) -> bool {
        self.store.is_live(i) && self.store.entries[i as usize].flags & flag::TEMPLATE != 0
    }

    /// Relative deadline `timeout_s` from now.
    fn deadline(&self, timeout_s: u32) -> u32 {
        self.now_rel + timeout_s.min(MAX_TIMEOUT_S) * 1000
    }

    #[inline(always)]
    fn find_in(&self, t: &Tuple) -> Option<u32> {
        if t.sport == 0 {
            return None;
        }
        let mut p = self.store.chain(t.proto, t.saddr, t.sport);
        while p != NIL {
            let e = &self.store.entries[p as usize];
            if e.caddr == t.saddr
                && e.cport == t.sport
                && e.vaddr == t.daddr
                && e.vport == t.dport
                && e.proto == t.proto
                && e.flags & flag::TEMPLATE == 0
            {
                return Some(p);
            }
            p = e.hnext;
        }
        None
    }

    fn find_out(&self, t: &Tuple) -> Option<u32> {
        let mut p = self.store.chain(t.proto, t.daddr, t.dport);
        while p != NIL {
            let e = &self.store.entries[p as usize];
            if e.caddr == t.daddr && e.cport == t.dport && e.proto == t.proto && e.flags & flag::TEMPLATE == 0 {
                let (a, port) =
                    if e.flags & flag::FWD_MASK == flag::MASQ { (e.daddr, e.dport) } else { (e.vaddr, e.vport) };
                if a == t.saddr && port == t.sport {
                    return Some(p);
                }
            }
            p = e.hnext;
        }
        None
    }

    /// `is_new_conn_expected()`: a SYN may replace this conn.
    fn new_conn_expected(&self, e: &Entry) -> bool {
        if e.link != NIL || e.proto != PROTO_TCP {
            return false;
        }
        let s = TcpState::from_u8(e.state);
        s == Some(TcpState::TimeWait)
            || s == Some(TcpState::Close)
            || (self.cfg.conn_reuse_mode & 2 != 0 && s == Some(TcpState::FinWait) && e.flags & flag::NOOUTPUT != 0)
    }

    /// Applies one packet's transition to entry `i` (`set_tcp_state()` /
    /// `udp_state_transition()`) and returns the queue and deadline to arm.
    #[inline(always)]
    fn transition<H: DestAccounting>(&mut self, h: &mut H, i: u32, dir: Direction, tcp_flags: u8) -> (u16, u32) {
        let secure = self.cfg.secure_tcp;
        let e = &mut self.store.entries[i as usize];
        let (slot, timeout, class, assure) = if e.proto == PROTO_TCP {
            let mut d = dir;
            if e.flags & flag::NOOUTPUT != 0 {
                if dir == Direction::Output {
                    e.flags &= !flag::NOOUTPUT;
                } else {
                    d = Direction::InputOnly;
                }
            }
            let old = TcpState::from_u8(e.state).unwrap_or(TcpState::None);
            let new = tcp::next_state(old, d, tcp_flags, secure);
            let mut assure = false;
            if new != old {
                if e.dest != NIL {
                    let inactive = e.flags & flag::INACTIVE != 0;
                    if !inactive && !new.is_active() {
                        h.conn_deactivated(DestId(e.dest));
                        e.flags |= flag::INACTIVE;
                    } else if inactive && new.is_active() {
                        h.conn_activated(DestId(e.dest));
                        e.flags &= !flag::INACTIVE;
                    }
                }
                assure = new == TcpState::Established;
            }
            e.state = new as u8;
            let class = if new == TcpState::Established { Class::Established } else { Class::Transient };
            (new as usize, self.cfg.tcp_timeouts[new as usize], class, assure)
        } else {
            (TCP_STATE_COUNT, self.cfg.udp_timeout, Class::Transient, dir == Direction::Output)
        };
        let link = e.link;
        if assure && link != NIL {
            let t = &mut self.store.entries[link as usize];
            if t.flags & flag::TEMPLATE != 0 {
                t.state |= TEMPLATE_ASSURED;
            }
        }
        let q = self.queue_cached(slot, timeout, class);
        (q, self.deadline(timeout))
    }

    /// The queue for a TCP state (`slot` < 11) or UDP (`slot` 11), through
    /// a cache that is checked before use (queues get recycled).
    fn queue_cached(&mut self, slot: usize, timeout: u32, class: Class) -> u16 {
        let q = self.qcache[slot];
        if let Some(queue) = self.store.queues.get(usize::from(q)) {
            if queue.timeout_s == timeout && queue.class == class {
                return q;
            }
        }
        let q = self.store.queue_for(timeout, class);
        self.qcache[slot] = q;
        q
    }

    /// Re-arms template `t` to now + its timeout (`ip_vs_conn_put(ct)`).
    fn rearm_template(&mut self, t: u32) {
        let q = self.store.entries[t as usize].queue;
        let timeout = self.store.queues[usize::from(q)].timeout_s;
        let exp = self.deadline(timeout);
        self.store.rearm(t, q, exp);
    }

    /// "Expire now": unhash at once, unbind later (module docs).
    fn doom(&mut self, i: u32) {
        self.store.unhash(i);
        self.doomed.push(i);
    }

    fn reap_doomed<H: DestAccounting>(&mut self, h: &mut H) {
        while let Some(i) = self.doomed.pop() {
            self.remove(h, i, Removal::Expired, NIL);
        }
    }

    /// Moves the clock to `now_ns` and runs due timers in deadline order;
    /// `reap` also unbinds doomed entries first.
    #[inline(always)]
    fn advance<H: DestAccounting>(&mut self, h: &mut H, now_ns: u64, reap: bool) {
        let now_ms = (now_ns / 1_000_000).max(self.last_ms);
        // The usual case, inline: nothing doomed, nothing due, no rebase;
        // the slow path below does exactly this too when nothing is to do.
        let rel = now_ms.wrapping_sub(self.base_ms);
        if now_ms >= self.base_ms
            && rel < u64::from(self.store.next_due)
            && rel < REBASE_AT_MS
            && (!reap || self.doomed.is_empty())
        {
            self.last_ms = now_ms;
            self.now_rel = rel as u32;
            return;
        }
        self.advance_slow(h, now_ns, reap);
    }

    /// [`ConnTable::advance`] when something may be due (out of line).
    #[inline(never)]
    fn advance_slow<H: DestAccounting>(&mut self, h: &mut H, now_ns: u64, reap: bool) {
        let now_ms = (now_ns / 1_000_000).max(self.last_ms);
        self.last_ms = now_ms;
        if reap {
            self.reap_doomed(h);
        }
        let mut rel = now_ms.saturating_sub(self.base_ms);
        // `next_due` is a lower bound of every deadline: the usual case
        // (nothing due) needs no look at the queues.
        if u64::from(self.store.next_due) <= rel {
            while let Some(i) = self.store.earliest_due(rel) {
                self.fire(h, i);
            }
        }
        if rel >= REBASE_AT_MS {
            // Every deadline left is later than `rel`, so below 2^32.
            if self.store.len > 0 {
                self.store.rebase(rel as u32);
            }
            self.base_ms += rel;
            rel = 0;
        }
        self.now_rel = rel as u32;
    }

    /// The timer of entry `i` fired at its deadline (`ip_vs_conn_expire()`).
    fn fire<H: DestAccounting>(&mut self, h: &mut H, i: u32) {
        let e = self.store.entries[i as usize];
        if e.flags & flag::TEMPLATE != 0 && e.link > 0 {
            // Still controls conns: try again 60 s after the deadline, and
            // keep 60 s as the template's timeout (kernel: cp->timeout = 60*HZ).
            let q = self.store.queue_for(TEMPLATE_POSTPONE_S, Class::Template);
            self.store.unqueue(i);
            self.store.push(i, q, e.expires + TEMPLATE_POSTPONE_S * 1000);
            self.stats.postponed += 1;
            return;
        }
        if e.flags & flag::HASHED == 0 {
            if let Some(p) = self.doomed.iter().position(|&d| d == i) {
                self.doomed.swap_remove(p);
            }
        }
        self.store.prefetch_after(i);
        self.remove(h, i, Removal::Expired, NIL);
    }

    /// Makes room for one more entry (module docs, "Bounded size"); false
    /// if nothing may be evicted. `protect` is a template that must survive.
    fn make_room<H: DestAccounting>(&mut self, h: &mut H, protect: u32) -> bool {
        let max = self.cfg.max_conns;
        if max == 0 || self.store.len < max {
            return true;
        }
        self.reap_doomed(h);
        while self.store.len >= max {
            let victim = match self.store.oldest_of(Class::Transient) {
                Some(i) => Some((i, false)),
                None if self.cfg.evict_established => self.store.oldest_of(Class::Established).map(|i| (i, true)),
                None => None,
            };
            let Some((i, established)) = victim else {
                return false;
            };
            if established {
                self.stats.evicted_established += 1;
            } else {
                self.stats.evicted_transient += 1;
            }
            self.remove(h, i, Removal::Evicted, protect);
        }
        true
    }

    /// Unlinks and frees entry `i`, unbinding it from its dest and its
    /// template (`ip_vs_conn_expire()` / `ip_vs_conn_del()`).
    fn remove<H: DestAccounting>(&mut self, h: &mut H, i: u32, how: Removal, protect: u32) {
        let e = self.store.entries[i as usize];
        self.store.unhash(i);
        self.store.unqueue(i);
        match how {
            Removal::Expired => self.stats.expired += 1,
            Removal::Flushed => self.stats.flushed += 1,
            Removal::Evicted => {}
        }
        if e.flags & flag::TEMPLATE != 0 {
            if e.dest != NIL {
                h.template_unbound(DestId(e.dest));
            }
        } else {
            if e.link != NIL {
                let t = &mut self.store.entries[e.link as usize];
                t.link = t.link.saturating_sub(1);
                let drop_it =
                    how == Removal::Evicted && t.link == 0 && t.state & TEMPLATE_ASSURED == 0 && e.link != protect;
                if drop_it {
                    self.stats.evicted_templates += 1;
                    self.remove(h, e.link, Removal::Evicted, protect);
                }
            }
            if e.dest != NIL {
                h.conn_unbound(DestId(e.dest), e.flags & flag::INACTIVE == 0);
            }
        }
        self.store.free(i);
    }
}

/// The forwarding method named by an entry's flag bits.
#[inline]
fn fwd_of(flags: u16) -> FwdMethod {
    match flags & flag::FWD_MASK {
        flag::MASQ => FwdMethod::Masq,
        flag::TUNNEL => FwdMethod::Tunnel,
        _ => FwdMethod::Route,
    }
}

/// The kernel's forwarding-method bits for `fwd`.
fn fwd_bits(fwd: FwdMethod) -> u16 {
    match fwd {
        FwdMethod::Masq => flag::MASQ,
        FwdMethod::Tunnel => flag::TUNNEL,
        FwdMethod::Route => flag::DROUTE,
    }
}

fn clamp_timeouts(cfg: &mut ConnConfig) {
    for t in cfg.tcp_timeouts.iter_mut() {
        *t = (*t).min(MAX_TIMEOUT_S);
    }
    cfg.udp_timeout = cfg.udp_timeout.min(MAX_TIMEOUT_S);
}

#[cfg(test)]
mod tests {
    use super::tcp::flags::{ACK, FIN, PSH, RST, SYN};
    use super::*;
    use crate::ipvs::sched::{PacketInfo, SchedKind};
    use crate::ipvs::service::{DestConfig, IpvsConfig, Protocol, ServiceConfig, ServiceId};
    use crate::ipvs::sync::msg::SyncConn;

    const SEC: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;
    /// A packet-capture-like epoch, so that rebasing is exercised from the start.
    const T0: u64 = 1_700_000_000 * SEC;

    fn ip(s: &str) -> u32 {
        s.parse::<Ipv4Addr>().map(u32::from).unwrap_or(0)
    }

    const CLIENT: &str = "203.0.113.7";
    const VIP: &str = "198.51.100.10";

    /// A director with one TCP service on VIP:80 and real servers.
    struct Lb {
        svcs: Services,
        t: ConnTable,
        svc: ServiceId,
        dests: Vec<DestId>,
    }

    impl Lb {
        fn new(fwd: FwdMethod, rs: &[&str], cfg: ConnConfig) -> Lb {
            Lb::with_service(ServiceConfig::new(Protocol::Tcp, VIP.parse().unwrap(), 80, SchedKind::Rr), fwd, rs, cfg)
        }

        fn with_service(sc: ServiceConfig, fwd: FwdMethod, rs: &[&str], cfg: ConnConfig) -> Lb {
            let mut svcs = Services::new(IpvsConfig::default());
            let svc = svcs.add_service(&sc).unwrap();
            let dests = rs
                .iter()
                .map(|a| {
                    let mut dc = DestConfig::new(a.parse().unwrap(), 8080, 1);
                    dc.fwd = fwd;
                    svcs.add_dest(svc, &dc).unwrap()
                })
                .collect();
            Lb { svcs, t: ConnTable::new(cfg), svc, dests }
        }

        /// The kernel's inbound path, as the lb program will drive it.
        fn pkt_in(&mut self, saddr: &str, sport: u16, flags: u8, now: u64) -> Option<Conn> {
            let svc_port = self.svcs.service(self.svc).unwrap().key.port;
            let t = Tuple { proto: PROTO_TCP, saddr: ip(saddr), sport, daddr: ip(VIP), dport: svc_port };
            match self.t.lookup_in(&mut self.svcs, &t, flags, now) {
                InLookup::Hit(c) => return Some(c),
                InLookup::Drop(_) => return None,
                InLookup::Miss(_) => {}
            }
            if !self.t.may_create(t.proto, flags) {
                return None;
            }
            let svc = self.svcs.service(self.svc).unwrap().clone();
            let info = PacketInfo {
                saddr: saddr.parse().unwrap(),
                sport,
                daddr: VIP.parse().unwrap(),
                dport: t.dport,
                proto: t.proto,
            };
            let mut control = None;
            let d = if let Some(timeout) = svc.persistent {
                let key = TemplateKey::for_packet(
                    t.proto,
                    t.saddr,
                    u32::from(svc.netmask),
                    t.daddr,
                    t.dport,
                    svc.key.port,
                    None,
                );
                let tpl = match self.t.template_lookup(&mut self.svcs, &key, now) {
                    Some(tpl) => tpl,
                    None => {
                        let d = self.svcs.schedule(self.svc, &info, now / MS)?;
                        let dest = self.svcs.dest(d).clone();
                        let dport = template_dport(t.dport, svc.key.port, dest.port);
                        self.t
                            .template_insert(
                                &mut self.svcs,
                                &key,
                                u32::from(dest.addr),
                                dport,
                                d,
                                dest.fwd,
                                timeout,
                                now,
                            )
                            .ok()?
                    }
                };
                control = Some(tpl.id);
                tpl.dest?
            } else {
                self.svcs.schedule(self.svc, &info, now / MS)?
            };
            let dest = self.svcs.dest(d).clone();
            let mut nc = NewConn::for_packet(
                &t,
                d,
                u32::from(dest.addr),
                conn_dport(t.dport, svc.key.port, dest.port),
                dest.fwd,
            );
            nc.control = control;
            self.t.insert(&mut self.svcs, &nc, flags, now).ok()
        }

        /// A reply from the conn's real server (NAT) to the client.
        fn pkt_out(&mut self, c: &Conn, flags: u8, now: u64) -> Option<Conn> {
            let t = Tuple { proto: c.proto, saddr: c.daddr, sport: c.dport, daddr: c.caddr, dport: c.cport };
            self.t.lookup_out(&mut self.svcs, &t, flags, now)
        }

        /// (activeconns, inactconns, persistconns) of dest `i`.
        fn counts(&self, i: usize) -> (u32, u32, u32) {
            let d = self.svcs.dest(self.dests[i]);
            (d.activeconns, d.inactconns, d.persistconns)
        }
    }

    fn state(c: &Conn) -> TcpState {
        c.tcp_state().unwrap()
    }

    #[test]
    fn v20_nat_flow_states_timeouts_and_counts() {
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21"], ConnConfig::default());
        let c = lb.pkt_in(CLIENT, 40000, SYN, T0).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::SynRecv, 60, (1, 0, 0)));
        assert_eq!(c.flags & flag::NOOUTPUT, 0, "NAT conns see their replies");
        assert_eq!((c.daddr, c.dport), (ip("10.1.1.21"), 8080));
        assert_eq!(c.remaining_secs(T0), 60);
        let c = lb.pkt_out(&c, SYN | ACK, T0 + 10 * MS).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::SynRecv, 60, (1, 0, 0)));
        let c = lb.pkt_in(CLIENT, 40000, ACK, T0 + 20 * MS).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::Established, 900, (1, 0, 0)));
        let c = lb.pkt_in(CLIENT, 40000, FIN | ACK, T0 + 5 * SEC).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::CloseWait, 60, (0, 1, 0)));
        let c = lb.pkt_out(&c, FIN | ACK, T0 + 6 * SEC).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::TimeWait, 120, (0, 1, 0)));
        let c = lb.pkt_in(CLIENT, 40000, ACK, T0 + 7 * SEC).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::TimeWait, 120, (0, 1, 0)));
        // TIME_WAIT lasts 120 s from the last packet, to the millisecond.
        lb.t.expire(&mut lb.svcs, T0 + 127 * SEC - MS);
        assert_eq!(lb.t.len(), 1);
        lb.t.expire(&mut lb.svcs, T0 + 127 * SEC);
        assert_eq!((lb.t.len(), lb.counts(0)), (0, (0, 0, 0)));
        let st = lb.t.stats();
        assert_eq!((st.inserts, st.expired, st.hits, st.lookups), (1, 1, 5, 6));
    }

    #[test]
    fn v21_dr_flow_uses_input_only() {
        let mut lb = Lb::new(FwdMethod::Route, &["10.1.1.21"], ConnConfig::default());
        let steps = [
            (SYN, TcpState::SynRecv, 60, (1, 0, 0)),
            (ACK, TcpState::Established, 900, (1, 0, 0)),
            (PSH | ACK, TcpState::Established, 900, (1, 0, 0)),
            (FIN | ACK, TcpState::FinWait, 120, (0, 1, 0)),
            (ACK, TcpState::FinWait, 120, (0, 1, 0)),
        ];
        for (k, (f, st, timeout, counts)) in steps.into_iter().enumerate() {
            let c = lb.pkt_in(CLIENT, 40000, f, T0 + k as u64 * SEC).unwrap();
            assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (st, timeout, counts), "step {k}");
            assert_ne!(c.flags & flag::NOOUTPUT, 0);
            assert_eq!(c.fwd(), FwdMethod::Route);
        }
        // A DR reply that happens to traverse the director is matched by
        // its VIP source, clears NOOUTPUT and uses the OUTPUT table.
        let t = Tuple { proto: PROTO_TCP, saddr: ip(VIP), sport: 80, daddr: ip(CLIENT), dport: 40000 };
        let c = lb.t.lookup_out(&mut lb.svcs, &t, ACK, T0 + 10 * SEC).unwrap();
        assert_eq!((state(&c), c.flags & flag::NOOUTPUT), (TcpState::FinWait, 0));
        // From the real server's address it is not a reply of this DR conn.
        let t = Tuple { saddr: ip("10.1.1.21"), sport: 8080, ..t };
        assert!(lb.t.lookup_out(&mut lb.svcs, &t, ACK, T0 + 11 * SEC).is_none());
        // With NOOUTPUT gone, an input FIN in FIN_WAIT now uses INPUT: TIME_WAIT.
        let c = lb.pkt_in(CLIENT, 40000, FIN | ACK, T0 + 12 * SEC).unwrap();
        assert_eq!(state(&c), TcpState::TimeWait);
    }

    #[test]
    fn rst_paths() {
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21"], ConnConfig::default());
        // RST without a conn never creates one.
        assert!(lb.pkt_in(CLIENT, 1, RST, T0).is_none());
        assert!(!lb.t.may_create(PROTO_TCP, RST | SYN));
        assert_eq!(lb.t.len(), 0);
        // RST from the client in ESTABLISHED: CLOSE, 10 s, inactive.
        lb.pkt_in(CLIENT, 2, SYN, T0).unwrap();
        lb.pkt_in(CLIENT, 2, ACK, T0 + MS).unwrap();
        let c = lb.pkt_in(CLIENT, 2, RST | ACK, T0 + 2 * MS).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::Close, 10, (0, 1, 0)));
        // RST in SYN_RECV (client side) keeps SYN_RECV; from the server: CLOSE.
        let c = lb.pkt_in(CLIENT, 3, SYN, T0 + 3 * MS).unwrap();
        let c2 = lb.pkt_in(CLIENT, 3, RST, T0 + 4 * MS).unwrap();
        assert_eq!((state(&c2), lb.counts(0)), (TcpState::SynRecv, (1, 1, 0)));
        let c3 = lb.pkt_out(&c, RST, T0 + 5 * MS).unwrap();
        assert_eq!((state(&c3), c3.timeout_s, lb.counts(0)), (TcpState::Close, 10, (0, 2, 0)));
        // A segment with none of the four flags closes the conn.
        let c = lb.pkt_in(CLIENT, 4, SYN, T0 + 6 * MS).unwrap();
        let c = lb.pkt_out(&c, PSH, T0 + 7 * MS).unwrap();
        assert_eq!(state(&c), TcpState::Close);
        // CLOSE lasts 10 s.
        lb.t.expire(&mut lb.svcs, T0 + 7 * MS + 10 * SEC - MS);
        assert_eq!(lb.t.state_counts().tcp[TcpState::Close as usize], 1, "the earlier CLOSE conns expired");
        lb.t.expire(&mut lb.svcs, T0 + 60 * SEC);
        assert_eq!((lb.t.len(), lb.counts(0)), (0, (0, 0, 0)));
    }

    #[test]
    fn sloppy_tcp_and_client_port_zero() {
        let cfg = ConnConfig { sloppy_tcp: true, ..ConnConfig::default() };
        let mut lb = Lb::new(FwdMethod::Route, &["10.1.1.21"], cfg);
        let c = lb.pkt_in(CLIENT, 5, ACK, T0).unwrap();
        assert_eq!((state(&c), lb.counts(0)), (TcpState::Established, (1, 0, 0)));
        assert!(lb.t.may_create(PROTO_TCP, ACK) && !lb.t.may_create(PROTO_TCP, ACK | RST));
        assert!(lb.t.may_create(PROTO_UDP, 0) && !lb.t.may_create(1, 0));
        // Client port 0 never matches an in-lookup (kernel NO_CPORT rule):
        // each SYN creates another conn.
        let strict = ConnTable::default();
        assert!(!strict.may_create(PROTO_TCP, ACK));
        lb.pkt_in(CLIENT, 0, SYN, T0 + SEC).unwrap();
        lb.pkt_in(CLIENT, 0, SYN, T0 + 2 * SEC).unwrap();
        assert_eq!(lb.t.len(), 3);
    }

    #[test]
    fn udp_conns_are_inactive_with_their_own_timeout() {
        let sc = ServiceConfig::new(Protocol::Udp, VIP.parse().unwrap(), 53, SchedKind::Rr);
        let mut lb = Lb::with_service(sc, FwdMethod::Masq, &["10.1.1.31"], ConnConfig::default());
        let t = Tuple { proto: PROTO_UDP, saddr: ip(CLIENT), sport: 5353, daddr: ip(VIP), dport: 53 };
        assert_eq!(lb.t.lookup_in(&mut lb.svcs, &t, 0, T0), InLookup::Miss(Miss::NotFound));
        let nc = NewConn::for_packet(&t, lb.dests[0], ip("10.1.1.31"), 53, FwdMethod::Masq);
        let c = lb.t.insert(&mut lb.svcs, &nc, 0, T0).unwrap();
        assert_eq!((c.state_name(), c.timeout_s, lb.counts(0)), ("UDP", 300, (0, 1, 0)));
        // Every packet, either way, re-arms to 300 s; never active.
        let InLookup::Hit(c) = lb.t.lookup_in(&mut lb.svcs, &t, 0, T0 + 100 * SEC) else { panic!() };
        assert_eq!(c.expires_ms, (T0 + 400 * SEC) / MS);
        let c = lb.pkt_out(&c, 0, T0 + 200 * SEC).unwrap();
        assert_eq!((c.expires_ms, lb.counts(0)), ((T0 + 500 * SEC) / MS, (0, 1, 0)));
        // --set 0 0 30: only UDP changes, and only from the next packet on.
        lb.t.set_timeouts(0, 0, 30).unwrap();
        assert_eq!(lb.t.timeouts(), (900, 120, 30));
        assert_eq!(lb.t.get(c.id).unwrap().timeout_s, 300);
        let InLookup::Hit(c) = lb.t.lookup_in(&mut lb.svcs, &t, 0, T0 + 201 * SEC) else { panic!() };
        assert_eq!(c.timeout_s, 30);
        lb.t.expire(&mut lb.svcs, T0 + 231 * SEC);
        assert_eq!((lb.t.len(), lb.counts(0)), (0, (0, 0, 0)));
        assert_eq!(lb.t.set_timeouts(MAX_TIMEOUT_S + 1, 0, 0), Err(TimeoutRange(MAX_TIMEOUT_S + 1)));
    }

    #[test]
    fn one_packet_udp_conns_are_not_stored() {
        let sc = ServiceConfig::new(Protocol::Udp, VIP.parse().unwrap(), 53, SchedKind::Rr);
        let mut lb = Lb::with_service(sc, FwdMethod::Route, &["10.1.1.31"], ConnConfig::default());
        let t = Tuple { proto: PROTO_UDP, saddr: ip(CLIENT), sport: 5353, daddr: ip(VIP), dport: 53 };
        let nc =
            NewConn { one_packet: true, ..NewConn::for_packet(&t, lb.dests[0], ip("10.1.1.31"), 53, FwdMethod::Route) };
        let c = lb.t.insert(&mut lb.svcs, &nc, 0, T0).unwrap();
        assert_eq!(c.id, ConnId::NONE);
        assert_ne!(c.flags & flag::ONE_PACKET, 0);
        assert_eq!((lb.t.len(), lb.counts(0), lb.t.stats().one_packet), (0, (0, 0, 0), 1));
    }

    #[test]
    fn expiry_across_long_gaps_and_rebases() {
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21"], ConnConfig::default());
        lb.pkt_in(CLIENT, 1, SYN, T0).unwrap();
        lb.pkt_in(CLIENT, 1, ACK, T0 + SEC).unwrap();
        // An idle ESTABLISHED conn is gone 900 s after its last packet, even
        // if the next timestamp is days later; a later packet is a miss.
        let later = T0 + 20 * 86400 * SEC;
        assert!(lb.pkt_in(CLIENT, 1, ACK, later).is_none());
        assert_eq!((lb.t.len(), lb.counts(0)), (0, (0, 0, 0)));
        // Rebase with live entries: a conn armed just before the relative
        // clock passes 2^30 ms keeps its absolute deadline.
        lb.pkt_in(CLIENT, 2, SYN, later + SEC).unwrap();
        let c = lb.pkt_in(CLIENT, 2, ACK, later + 2 * SEC).unwrap();
        let deadline = c.expires_ms;
        let mut now = later + 2 * SEC;
        for _ in 0..30 {
            // Keep it alive with a packet every 800 s for ~6.7 h...
            now += 800 * SEC;
            let c = lb.pkt_in(CLIENT, 2, ACK, now).unwrap();
            assert_eq!(c.expires_ms, now / MS + 900_000);
        }
        // ...then jump 13 days (past the rebase point) twice.
        for _ in 0..2 {
            now += 13 * 86400 * SEC;
            let c = lb.pkt_in(CLIENT, 3, SYN, now).unwrap();
            assert_eq!(c.expires_ms, now / MS + 60_000);
        }
        assert!(deadline < now / MS);
        assert_eq!(lb.t.len(), 1);
        // Timestamps going backwards count as the latest one.
        let c = lb.pkt_in(CLIENT, 3, ACK, now - 3600 * SEC).unwrap();
        assert_eq!(c.expires_ms, now / MS + 900_000);
        // Timestamps over 2^32 ms apart with nothing live.
        lb.t.expire(&mut lb.svcs, now + 100 * 86400 * SEC);
        assert!(lb.t.is_empty());
        let c = lb.pkt_in(CLIENT, 4, SYN, now + 100 * 86400 * SEC + 5 * MS).unwrap();
        assert_eq!(c.expires_ms, (now + 100 * 86400 * SEC + 5 * MS) / MS + 60_000);
    }

    fn persistent(port: u16, timeout: u32, mask: &str) -> ServiceConfig {
        let mut sc = ServiceConfig::new(Protocol::Tcp, VIP.parse().unwrap(), port, SchedKind::Rr);
        sc.persistent = Some(timeout);
        sc.netmask = mask.parse().unwrap();
        sc
    }

    #[test]
    fn v27_template_key_and_listing() {
        let mask = u32::from("255.255.255.0".parse::<Ipv4Addr>().unwrap());
        let k = TemplateKey::for_packet(PROTO_TCP, ip(CLIENT), mask, ip(VIP), 443, 443, None);
        assert_eq!(k, TemplateKey { proto: PROTO_TCP, caddr: ip("203.0.113.0"), vaddr: ip(VIP), vport: 443 });
        // FTP and port-zero services key with vport 0; fwmark services with
        // protocol IP and the mark; template dports follow the same rule.
        assert_eq!(TemplateKey::for_packet(PROTO_TCP, ip(CLIENT), !0, ip(VIP), 21, 21, None).vport, 0);
        assert_eq!(TemplateKey::for_packet(PROTO_TCP, ip(CLIENT), !0, ip(VIP), 8443, 0, None).vport, 0);
        let fw = TemplateKey::for_packet(PROTO_TCP, ip(CLIENT), !0, ip(VIP), 443, 0, Some(7));
        assert_eq!(fw, TemplateKey { proto: 0, caddr: ip(CLIENT), vaddr: 7, vport: 0 });
        assert_eq!(
            (template_dport(443, 443, 8443), template_dport(21, 21, 21), template_dport(80, 0, 80)),
            (8443, 0, 0)
        );
        assert_eq!((conn_dport(443, 443, 8443), conn_dport(8000, 0, 80), conn_dport(443, 443, 0)), (8443, 8000, 443));

        let mut lb = Lb::with_service(
            persistent(443, 360, "255.255.255.0"),
            FwdMethod::Masq,
            &["10.1.1.21"],
            ConnConfig::default(),
        );
        lb.pkt_in(CLIENT, 40000, SYN, T0).unwrap();
        let tpl = lb.t.iter().find(|c| c.is_template()).unwrap();
        assert_eq!((tpl.caddr, tpl.cport, tpl.vport, tpl.dport, tpl.timeout_s), (ip("203.0.113.0"), 0, 443, 8080, 360));
        let listing = lb.t.lnc_listing(T0 + SEC);
        let want = "IPVS connection entries\n\
                    pro expire state       source             virtual            destination\n\
                    TCP 05:59  NONE        203.0.113.0:0      198.51.100.10:443  10.1.1.21:8080\n\
                    TCP 00:59  SYN_RECV    203.0.113.7:40000  198.51.100.10:443  10.1.1.21:8080\n";
        assert_eq!(listing, want);
        assert_eq!(ProtoName(0).to_string(), "IP");
        assert_eq!(ProtoName(50).to_string(), "IP_50");
    }

    #[test]
    fn persistence_reuses_template_and_restarts_its_timer_per_conn() {
        let mut lb = Lb::with_service(
            persistent(443, 360, "255.255.255.0"),
            FwdMethod::Masq,
            &["10.1.1.21", "10.1.1.22"],
            ConnConfig::default(),
        );
        // rr would alternate; the /24 template pins both clients to one dest.
        let a = lb.pkt_in("203.0.113.7", 1000, SYN, T0).unwrap();
        let tpl = a.control.unwrap();
        assert_eq!(lb.t.get(tpl).unwrap().state_name(), "NONE");
        lb.pkt_in("203.0.113.7", 1000, ACK, T0 + SEC).unwrap(); // a: ES until T0+901
                                                                // The template is ASSURED once a controlled conn is established.
        assert_eq!(lb.t.get(tpl).unwrap().state_name(), "ASSURED");
        let b = lb.pkt_in("203.0.113.99", 2000, SYN, T0 + 100 * SEC).unwrap(); // b: SR until T0+160
        assert_eq!((b.dest, b.control), (a.dest, Some(tpl)));
        let t = lb.t.get(tpl).unwrap();
        // Its timer restarted at the second conn, not at the first's packets.
        assert_eq!((t.n_control, t.expires_ms), (2, (T0 + 460 * SEC) / MS));
        lb.pkt_in("203.0.113.7", 1000, ACK, T0 + 200 * SEC).unwrap(); // a: ES until T0+1100
        let t = lb.t.get(tpl).unwrap();
        assert_eq!((t.n_control, t.expires_ms), (1, (T0 + 460 * SEC) / MS));
        let i = lb.dests.iter().position(|&d| Some(d) == a.dest).unwrap();
        assert_eq!(lb.counts(i), (1, 0, 1));
        // At its deadline it still controls a conn: postponed by 60 s, with
        // 60 s as its timeout from then on.
        lb.t.expire(&mut lb.svcs, T0 + 460 * SEC);
        let t = lb.t.get(tpl).unwrap();
        assert_eq!((t.expires_ms, t.timeout_s, lb.t.stats().postponed), ((T0 + 520 * SEC) / MS, 60, 1));
        // A new conn of the same network re-arms it, with 60 s.
        lb.pkt_in("203.0.113.8", 3000, SYN, T0 + 500 * SEC).unwrap(); // SR until T0+560
        assert_eq!(lb.t.get(tpl).unwrap().expires_ms, (T0 + 560 * SEC) / MS);
        // Postponed every 60 s (560, 620, ... 1040) while a lives; at 1100
        // a expires first and the template, due at the same instant, goes.
        lb.t.expire(&mut lb.svcs, T0 + 1100 * SEC - MS);
        assert_eq!((lb.t.len(), lb.t.stats().postponed), (2, 10));
        lb.t.expire(&mut lb.svcs, T0 + 1100 * SEC);
        assert_eq!((lb.t.len(), lb.counts(i)), (0, (0, 0, 0)));
    }

    #[test]
    fn template_becomes_invalid_when_its_dest_goes() {
        let mut lb = Lb::with_service(
            persistent(443, 360, "255.255.255.255"),
            FwdMethod::Route,
            &["10.1.1.21", "10.1.1.22"],
            ConnConfig::default(),
        );
        let a = lb.pkt_in(CLIENT, 1000, SYN, T0).unwrap();
        let old_tpl = a.control.unwrap();
        let i = lb.dests.iter().position(|&d| Some(d) == a.dest).unwrap();
        let addr = lb.svcs.dest(lb.dests[i]).addr;
        lb.svcs.delete_dest(lb.svc, addr, 8080).unwrap();
        // The old conn's packets are dropped (expire_nodest_conn = 0), untouched.
        let t = Tuple { proto: PROTO_TCP, saddr: ip(CLIENT), sport: 1000, daddr: ip(VIP), dport: 443 };
        let InLookup::Drop(c) = lb.t.lookup_in(&mut lb.svcs, &t, ACK, T0 + SEC) else { panic!() };
        assert_eq!((state(&c), c.expires_ms), (TcpState::SynRecv, (T0 + 60 * SEC) / MS));
        // A new conn of the client: the template is invalidated and a new
        // one made for the other dest.
        let b = lb.pkt_in(CLIENT, 1001, SYN, T0 + 2 * SEC).unwrap();
        assert_ne!(b.dest, a.dest);
        assert_ne!(b.control, Some(old_tpl));
        let old = lb.t.get(old_tpl).unwrap();
        assert_eq!((old.vport, old.dport, old.cport), (0xFFFF, 0xFFFF, 0));
        assert_eq!(lb.t.stats().templates_invalidated, 1);
        // It expires on its own timer (postponed while the old conn lives).
        lb.t.expire(&mut lb.svcs, T0 + 420 * SEC);
        assert!(lb.t.get(old_tpl).is_none());
        assert_eq!(lb.counts(i), (0, 0, 0));
    }

    #[test]
    fn quiescent_template_only_with_the_sysctl() {
        for expire_q in [false, true] {
            let cfg = ConnConfig { expire_quiescent_template: expire_q, ..ConnConfig::default() };
            let mut lb = Lb::with_service(
                persistent(443, 360, "255.255.255.255"),
                FwdMethod::Route,
                &["10.1.1.21", "10.1.1.22"],
                cfg,
            );
            let a = lb.pkt_in(CLIENT, 1000, SYN, T0).unwrap();
            let d = a.dest.unwrap();
            let mut dc = DestConfig::new(lb.svcs.dest(d).addr, 8080, 0);
            dc.fwd = FwdMethod::Route;
            lb.svcs.edit_dest(lb.svc, &dc).unwrap();
            let b = lb.pkt_in(CLIENT, 1001, SYN, T0 + SEC).unwrap();
            assert_eq!(b.dest == a.dest, !expire_q);
        }
    }

    #[test]
    fn port_reuse_modes() {
        // Mode 1: a SYN on a TIME_WAIT conn expires it and makes a new one.
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21", "10.1.1.22"], ConnConfig::default());
        let c = lb.pkt_in(CLIENT, 1000, SYN, T0).unwrap();
        lb.pkt_in(CLIENT, 1000, ACK, T0 + MS).unwrap();
        lb.pkt_in(CLIENT, 1000, FIN | ACK, T0 + 2 * MS).unwrap();
        let tw = lb.pkt_out(&c, FIN | ACK, T0 + 3 * MS).unwrap();
        assert_eq!(state(&tw), TcpState::TimeWait);
        let n = lb.pkt_in(CLIENT, 1000, SYN, T0 + 4 * MS).unwrap();
        assert_eq!(state(&n), TcpState::SynRecv);
        assert_ne!(n.dest, c.dest, "rr scheduled the SYN again");
        assert_eq!((lb.t.len(), lb.t.stats().reused), (1, 1));
        let (old, new) = (c.dest.unwrap(), n.dest.unwrap());
        assert_eq!(lb.svcs.dest(old).inactconns + lb.svcs.dest(old).activeconns, 0);
        assert_eq!((lb.svcs.dest(new).activeconns, lb.svcs.dest(new).inactconns), (1, 0));

        // Mode 0: the SYN reuses the TIME_WAIT conn (INPUT syn: TW → SR).
        let cfg = ConnConfig { conn_reuse_mode: 0, ..ConnConfig::default() };
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21", "10.1.1.22"], cfg);
        let c = lb.pkt_in(CLIENT, 1000, SYN, T0).unwrap();
        lb.pkt_in(CLIENT, 1000, FIN, T0 + MS).unwrap();
        lb.pkt_out(&c, FIN, T0 + 2 * MS).unwrap();
        let n = lb.pkt_in(CLIENT, 1000, SYN, T0 + 3 * MS).unwrap();
        assert_eq!((n.id, n.dest, state(&n)), (c.id, c.dest, TcpState::SynRecv));

        // Bit 2: FIN_WAIT with NOOUTPUT (DR) is reusable too; mode 1 is not.
        for (mode, reused) in [(1, false), (3, true)] {
            let cfg = ConnConfig { conn_reuse_mode: mode, ..ConnConfig::default() };
            let mut lb = Lb::new(FwdMethod::Route, &["10.1.1.21"], cfg);
            let c = lb.pkt_in(CLIENT, 1000, SYN, T0).unwrap();
            lb.pkt_in(CLIENT, 1000, ACK, T0 + MS).unwrap();
            let fw = lb.pkt_in(CLIENT, 1000, FIN | ACK, T0 + 2 * MS).unwrap();
            assert_eq!(state(&fw), TcpState::FinWait);
            let n = lb.pkt_in(CLIENT, 1000, SYN, T0 + 3 * MS).unwrap();
            assert_eq!((n.id != c.id || lb.t.stats().reused > 0, state(&n)), (reused, TcpState::SynRecv));
        }

        // Controlled conns are never reused (persistence).
        let mut lb = Lb::with_service(
            persistent(80, 360, "255.255.255.255"),
            FwdMethod::Masq,
            &["10.1.1.21"],
            ConnConfig::default(),
        );
        let c = lb.pkt_in(CLIENT, 1000, SYN, T0).unwrap();
        lb.pkt_in(CLIENT, 1000, RST, T0 + MS).unwrap();
        let c2 = lb.pkt_out(&c, RST, T0 + 2 * MS).unwrap();
        assert_eq!(state(&c2), TcpState::Close);
        let n = lb.pkt_in(CLIENT, 1000, SYN, T0 + 3 * MS).unwrap();
        assert_eq!((n.id, lb.t.stats().reused), (c.id, 0));
    }

    /// Records the order of accounting calls.
    #[derive(Default)]
    struct Log {
        calls: Vec<String>,
        weight: u32,
    }

    impl DestAccounting for Log {
        fn conn_bound(&mut self, d: DestId) {
            self.calls.push(format!("bound {}", d.0));
        }
        fn conn_activated(&mut self, d: DestId) {
            self.calls.push(format!("activated {}", d.0));
        }
        fn conn_deactivated(&mut self, d: DestId) {
            self.calls.push(format!("deactivated {}", d.0));
        }
        fn conn_unbound(&mut self, d: DestId, active: bool) {
            self.calls.push(format!("unbound {} {active}", d.0));
        }
        fn template_bound(&mut self, d: DestId) {
            self.calls.push(format!("tbound {}", d.0));
        }
        fn template_unbound(&mut self, d: DestId) {
            self.calls.push(format!("tunbound {}", d.0));
        }
        fn dest_available(&self, _: DestId) -> bool {
            true
        }
        fn dest_weight(&self, _: DestId) -> u32 {
            self.weight
        }
    }

    #[test]
    fn expired_by_lookup_is_unbound_after_the_new_conn_is_bound() {
        let mut h = Log { weight: 1, ..Log::default() };
        let mut t = ConnTable::default();
        let tup = Tuple { proto: PROTO_TCP, saddr: 1, sport: 1000, daddr: 2, dport: 80 };
        let nc = |d| NewConn::for_packet(&tup, DestId(d), 10, 80, FwdMethod::Masq);
        t.insert(&mut h, &nc(7), SYN, T0).unwrap();
        // SYN_RECV + client FIN: TIME_WAIT.
        let InLookup::Hit(c) = t.lookup_in(&mut h, &tup, FIN, T0 + MS) else { panic!() };
        assert_eq!(c.tcp_state(), Some(TcpState::TimeWait));
        h.calls.clear();
        assert_eq!(t.lookup_in(&mut h, &tup, SYN, T0 + 2 * MS), InLookup::Miss(Miss::PortReuse));
        // Still bound while the scheduler runs; not found any more.
        assert!(h.calls.is_empty());
        assert_eq!(t.find_in_conn(&tup), None);
        assert_eq!(t.iter().count(), 0);
        t.insert(&mut h, &nc(8), SYN, T0 + 2 * MS).unwrap();
        assert_eq!(h.calls, ["bound 8", "activated 8", "unbound 7 false"]);
        // Without an insert, the next lookup unbinds it.
        let mut t2 = t.clone();
        let InLookup::Hit(_) = t2.lookup_in(&mut h, &tup, FIN, T0 + 3 * MS) else { panic!() };
        h.calls.clear();
        t2.lookup_in(&mut h, &tup, SYN, T0 + 4 * MS);
        assert!(h.calls.is_empty());
        t2.expire(&mut h, T0 + 4 * MS);
        assert_eq!(h.calls, ["unbound 8 false"]);
        // expire_nodest_conn: a SYN on a conn whose dest has weight 0.
        let mut t3 = ConnTable::new(ConnConfig { expire_nodest_conn: true, ..ConnConfig::default() });
        t3.insert(&mut h, &nc(9), SYN, T0).unwrap();
        h.weight = 0;
        let InLookup::Hit(_) = t3.lookup_in(&mut h, &tup, ACK, T0 + MS) else { panic!() };
        assert_eq!(t3.lookup_in(&mut h, &tup, SYN, T0 + 2 * MS), InLookup::Miss(Miss::DestQuiesced));
        assert_eq!(t3.stats().nodest_expired, 1);
    }

    /// `expire_nodest_conn` reschedules a SYN that hits a conn of a
    /// quiesced (weight 0) dest even with `conn_reuse_mode = 0` (spec 2.8;
    /// kernel 5.16+): mode 0 only turns off the TIME_WAIT/CLOSE reuse.
    #[test]
    fn quiesced_dest_reschedules_a_syn_whatever_conn_reuse_mode() {
        let tup = Tuple { proto: PROTO_TCP, saddr: 1, sport: 1000, daddr: 2, dport: 80 };
        let nc = NewConn::for_packet(&tup, DestId(3), 10, 80, FwdMethod::Masq);
        for (nodest, weight, want) in [(true, 0, Some(Miss::DestQuiesced)), (true, 1, None), (false, 0, None)] {
            let mut h = Log { weight: 1, ..Log::default() };
            let cfg = ConnConfig { conn_reuse_mode: 0, expire_nodest_conn: nodest, ..ConnConfig::default() };
            let mut t = ConnTable::new(cfg);
            t.insert(&mut h, &nc, SYN, T0).unwrap();
            h.weight = weight;
            let got = match t.lookup_in(&mut h, &tup, SYN, T0 + MS) {
                InLookup::Miss(m) => Some(m),
                InLookup::Hit(c) => {
                    assert_eq!(c.id, ConnId(0), "the old conn is reused");
                    None
                }
                InLookup::Drop(_) => panic!("dropped"),
            };
            assert_eq!(got, want, "expire_nodest_conn {nodest}, weight {weight}");
        }
    }

    #[test]
    fn expire_nodest_conn_and_flush() {
        let cfg = ConnConfig { expire_nodest_conn: true, ..ConnConfig::default() };
        let mut lb = Lb::with_service(
            persistent(443, 360, "255.255.255.255"),
            FwdMethod::Masq,
            &["10.1.1.21", "10.1.1.22"],
            cfg,
        );
        let a = lb.pkt_in(CLIENT, 1000, SYN, T0).unwrap();
        lb.pkt_in("203.0.113.8", 1000, SYN, T0 + MS).unwrap();
        let i = lb.dests.iter().position(|&d| Some(d) == a.dest).unwrap();
        let addr = lb.svcs.dest(lb.dests[i]).addr;
        lb.svcs.delete_dest(lb.svc, addr, 8080).unwrap();
        // The conn is expired and the ACK handled as if there was none.
        let t = Tuple { proto: PROTO_TCP, saddr: ip(CLIENT), sport: 1000, daddr: ip(VIP), dport: 443 };
        assert_eq!(lb.t.lookup_in(&mut lb.svcs, &t, ACK, T0 + SEC), InLookup::Miss(Miss::DestUnavailable));
        lb.t.expire(&mut lb.svcs, T0 + SEC);
        assert_eq!(lb.counts(i), (0, 0, 1));
        // The background flush removes the rest of that dest (its template).
        lb.t.flush_unavailable(&mut lb.svcs, T0 + 2 * SEC);
        assert_eq!(lb.counts(i), (0, 0, 0));
        assert_eq!(lb.t.len(), 2, "the other dest's conn and template stay");
        assert_eq!(lb.t.stats().flushed, 1);
    }

    #[test]
    fn eviction_order_and_counters() {
        let cfg = ConnConfig { max_conns: 4, ..ConnConfig::default() };
        let mut h = Log { weight: 1, ..Log::default() };
        let mut t = ConnTable::new(cfg);
        let tup = |p: u16, proto: u8| Tuple { proto, saddr: 1, sport: p, daddr: 2, dport: 80 };
        let ins = |t: &mut ConnTable, h: &mut Log, p: u16, proto: u8, f: u8, now: u64| {
            t.insert(h, &NewConn::for_packet(&tup(p, proto), DestId(u32::from(p)), 10, 80, FwdMethod::Masq), f, now)
        };
        let est = |t: &mut ConnTable, h: &mut Log, p: u16, now: u64| {
            let InLookup::Hit(c) = t.lookup_in(h, &tup(p, PROTO_TCP), ACK, now) else { panic!() };
            assert_eq!(c.tcp_state(), Some(TcpState::Established));
        };
        // 1, 2 established; 3 SYN_RECV; 4 UDP. Activity order: 3, 1, 4, 2.
        ins(&mut t, &mut h, 3, PROTO_TCP, SYN, T0).unwrap();
        ins(&mut t, &mut h, 1, PROTO_TCP, SYN, T0 + MS).unwrap();
        ins(&mut t, &mut h, 2, PROTO_TCP, SYN, T0 + 2 * MS).unwrap();
        est(&mut t, &mut h, 1, T0 + 3 * MS);
        ins(&mut t, &mut h, 4, PROTO_UDP, 0, T0 + 4 * MS).unwrap();
        est(&mut t, &mut h, 2, T0 + 5 * MS);
        // Full: the oldest transient (3, SYN_RECV) goes first, then 4 (UDP).
        ins(&mut t, &mut h, 5, PROTO_TCP, SYN, T0 + 6 * MS).unwrap();
        assert!(t.find_in_conn(&tup(3, PROTO_TCP)).is_none());
        est(&mut t, &mut h, 5, T0 + 7 * MS);
        ins(&mut t, &mut h, 6, PROTO_TCP, ACK | PSH, T0 + 8 * MS).unwrap(); // sloppy-style ACK: ES at once
        assert!(t.find_in_conn(&tup(4, PROTO_UDP)).is_none());
        assert_eq!(t.stats().evicted_transient, 2);
        // Only ESTABLISHED left: refused by default, nothing changes.
        h.calls.clear();
        assert_eq!(ins(&mut t, &mut h, 7, PROTO_TCP, SYN, T0 + 9 * MS), Err(InsertError::Full));
        assert!(h.calls.is_empty());
        assert_eq!((t.len(), t.stats().refused), (4, 1));
        // Allowed: the least recently active ESTABLISHED conn (1) goes.
        t.set_config(ConnConfig { evict_established: true, ..t.config().clone() });
        ins(&mut t, &mut h, 7, PROTO_TCP, SYN, T0 + 10 * MS).unwrap();
        assert!(t.find_in_conn(&tup(1, PROTO_TCP)).is_none());
        assert_eq!(h.calls, ["unbound 1 true", "bound 7", "activated 7"]);
        // An already expired entry is never evicted: it expired first.
        t.expire(&mut h, T0 + 70 * SEC);
        assert_eq!((t.len(), t.stats().expired, t.stats().evicted_established), (3, 1, 1));
        let st = t.stats();
        assert_eq!((st.inserts, st.evicted_transient, st.refused), (7, 2, 1));
    }

    #[test]
    fn eviction_frees_unassured_templates_but_never_picks_them() {
        let cfg = ConnConfig { max_conns: 3, ..ConnConfig::default() };
        let mut h = Log { weight: 1, ..Log::default() };
        let mut t = ConnTable::new(cfg);
        let key = TemplateKey { proto: PROTO_TCP, caddr: 1, vaddr: 2, vport: 443 };
        let tpl = t.template_insert(&mut h, &key, 10, 443, DestId(0), FwdMethod::Masq, 360, T0).unwrap();
        let tup = |p: u16| Tuple { proto: PROTO_TCP, saddr: 1, sport: p, daddr: 2, dport: 443 };
        let nc = |p: u16| NewConn {
            control: Some(tpl.id),
            ..NewConn::for_packet(&tup(p), DestId(0), 10, 443, FwdMethod::Masq)
        };
        t.insert(&mut h, &nc(1), SYN, T0 + MS).unwrap();
        // A second template makes the table full.
        let key2 = TemplateKey { caddr: 5, ..key };
        t.template_insert(&mut h, &key2, 10, 443, DestId(1), FwdMethod::Masq, 360, T0 + 2 * MS).unwrap();
        // Inserting conn 2 of the first template evicts conn 1; the template
        // (not ASSURED, now without conns) is protected because it is in use.
        t.insert(&mut h, &nc(2), SYN, T0 + 3 * MS).unwrap();
        assert_eq!(t.get(tpl.id).unwrap().n_control, 1);
        assert_eq!(t.stats().evicted_templates, 0);
        // A conn of another client evicts conn 2 and frees its template too.
        let other = Tuple { proto: PROTO_TCP, saddr: 9, sport: 9, daddr: 2, dport: 80 };
        h.calls.clear();
        t.insert(&mut h, &NewConn::for_packet(&other, DestId(3), 10, 80, FwdMethod::Masq), SYN, T0 + 4 * MS).unwrap();
        assert_eq!(h.calls, ["tunbound 0", "unbound 0 true", "bound 3", "activated 3"]);
        assert_eq!((t.len(), t.stats().evicted_templates, t.stats().evicted_transient), (2, 1, 2));
        // Only templates and a refused insert left when nothing else is transient.
        let InLookup::Hit(_) = t.lookup_in(&mut h, &other, ACK, T0 + 5 * MS) else { panic!() };
        t.template_insert(
            &mut h,
            &TemplateKey { caddr: 6, ..key },
            10,
            443,
            DestId(1),
            FwdMethod::Masq,
            360,
            T0 + 6 * MS,
        )
        .unwrap();
        let r = t.template_insert(
            &mut h,
            &TemplateKey { caddr: 7, ..key },
            10,
            443,
            DestId(1),
            FwdMethod::Masq,
            360,
            T0 + 7 * MS,
        );
        assert_eq!((r.map(|c| c.id), t.stats().refused), (Err(InsertError::Full), 1));
    }

    #[test]
    fn secure_tcp_needs_the_server_to_establish() {
        let cfg = ConnConfig { secure_tcp: true, ..ConnConfig::default() };
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21"], cfg);
        let c = lb.pkt_in(CLIENT, 1, SYN, T0).unwrap();
        let c = lb.pkt_out(&c, SYN | ACK, T0 + MS).unwrap();
        assert_eq!((state(&c), c.timeout_s, lb.counts(0)), (TcpState::SynAck, 120, (1, 0, 0)));
        let c = lb.pkt_in(CLIENT, 1, ACK, T0 + 2 * MS).unwrap();
        assert_eq!(state(&c), TcpState::SynAck);
        let c = lb.pkt_out(&c, ACK, T0 + 3 * MS).unwrap();
        assert_eq!(state(&c), TcpState::Established);
    }

    #[test]
    fn state_counts_and_lookup_counters() {
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21"], ConnConfig::default());
        lb.pkt_in(CLIENT, 1, SYN, T0).unwrap();
        lb.pkt_in(CLIENT, 2, SYN, T0).unwrap();
        lb.pkt_in(CLIENT, 2, ACK, T0).unwrap();
        let sc = lb.t.state_counts();
        assert_eq!((sc.tcp[TcpState::SynRecv as usize], sc.tcp[TcpState::Established as usize], sc.udp), (1, 1, 0));
        let st = lb.t.stats();
        assert_eq!((st.lookups, st.hits, st.misses, st.inserts), (3, 1, 2, 2));
        assert!(lb.t.get(ConnId(12345)).is_none());
        let bogus = NewConn {
            control: Some(ConnId(0)),
            ..NewConn::for_packet(
                &Tuple { proto: 6, saddr: 1, sport: 1, daddr: 2, dport: 3 },
                lb.dests[0],
                1,
                1,
                FwdMethod::Masq,
            )
        };
        assert_eq!(lb.t.insert(&mut lb.svcs, &bogus, SYN, T0), Err(InsertError::NoSuchTemplate));
        let mut svcs = lb.svcs.clone();
        lb.t.clear(&mut svcs);
        assert!(lb.t.is_empty());
        assert_eq!(svcs.dest(lb.dests[0]).activeconns, 0);
    }

    /// Bytes per conn at `n` entries, from the table's capacities.
    fn bytes_per_conn(n: u32) -> f64 {
        let mut h = Log { weight: 1, ..Log::default() };
        let mut t = ConnTable::default();
        for k in 0..n {
            let tup = Tuple {
                proto: PROTO_TCP,
                saddr: 0x0a00_0000 | (k >> 14),
                sport: (k & 0x3fff) as u16 + 1,
                daddr: 2,
                dport: 80,
            };
            t.insert(&mut h, &NewConn::for_packet(&tup, DestId(0), 10, 80, FwdMethod::Masq), SYN, T0).unwrap();
            h.calls.clear();
        }
        assert_eq!(t.len(), n as usize);
        t.memory_bytes() as f64 / f64::from(n)
    }

    /// Prefetch hints, before, between and after inserts that grow the arena
    /// and double the index (so the hint ring holds stale buckets), change
    /// no lookup, statistic or dest accounting: a table given hints and one
    /// given none stay equal.
    #[test]
    fn prefetch_hints_change_nothing() {
        let tup = |k: u32| Tuple {
            proto: PROTO_TCP,
            saddr: 0x0a00_0000 | (k >> 8),
            sport: (k & 0xff) as u16 + 1,
            daddr: 2,
            dport: 80,
        };
        let (mut hinted, mut plain) = (ConnTable::default(), ConnTable::default());
        let (mut h1, mut h2) = (Log { weight: 1, ..Log::default() }, Log { weight: 1, ..Log::default() });
        hinted.prefetch(PROTO_TCP, 1, 1);
        for k in 0..3000 {
            let t = tup(k);
            hinted.prefetch(t.proto, t.saddr, t.sport);
            hinted.prefetch(PROTO_UDP, !k, k as u16);
            let new = NewConn::for_packet(&t, DestId(0), 10, 80, FwdMethod::Masq);
            let now = T0 + u64::from(k) * 1_000_000;
            assert_eq!(hinted.insert(&mut h1, &new, SYN, now).is_ok(), plain.insert(&mut h2, &new, SYN, now).is_ok());
            let back = tup(k / 2);
            hinted.prefetch(back.proto, back.saddr, back.sport);
            let a = hinted.lookup_in_brief(&mut h1, &back, ACK, now);
            let b = plain.lookup_in_brief(&mut h2, &back, ACK, now);
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "lookup of {k}");
        }
        assert_eq!(hinted.prefetch_hints(), 1 + 3 * 3000);
        assert_eq!(plain.prefetch_hints(), 0);
        assert_eq!(format!("{:?}", hinted.stats()), format!("{:?}", plain.stats()));
        assert_eq!((hinted.len(), hinted.memory_bytes()), (plain.len(), plain.memory_bytes()));
        assert_eq!(h1.calls, h2.calls, "dest accounting");
    }

    #[test]
    fn memory_per_conn_at_one_million() {
        let b = bytes_per_conn(1_000_000);
        eprintln!("bytes per conn at 1M entries: {b:.2}");
        assert!(b <= 64.0, "{b} bytes per conn");
    }

    #[test]
    fn memory_per_conn_at_awkward_sizes() {
        // Right after the index doubled (4097, 65 537, and at 7/8 load
        // 114 689 and 458 753), just past a 4 KiB page (300) and just past
        // the arena's move to huge pages (349 526, at most 2 MiB of slack):
        // 48 + 8 (small tables) or 48 + 6 + 6 bytes plus the queue table.
        for n in [300, 4097, 65_537, 70_000, 114_689, 349_526, 458_753] {
            let b = bytes_per_conn(n);
            eprintln!("bytes per conn at {n} entries: {b:.2}");
            assert!(b <= 64.0, "{b} bytes per conn at {n}");
        }
    }

    // ---- connection synchronisation (conn/sync.rs) ----------------------------

    /// The conns a master chose since the last call: (caddr, state, template).
    fn taken(lb: &mut Lb) -> Vec<(u32, u8, bool)> {
        let mut v = Vec::new();
        lb.t.take_sync(&mut v);
        v.iter().map(|c| (c.caddr, c.state, c.is_template())).collect()
    }

    #[test]
    fn master_sends_at_the_threshold_every_period_and_on_closing_states() {
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21"], ConnConfig::default());
        lb.t.set_sync_master(Some(SyncPolicy::default()));
        let es = TcpState::Established as u8;
        let c = lb.pkt_in(CLIENT, 40000, SYN, T0).unwrap();
        lb.pkt_out(&c, SYN | ACK, T0 + MS).unwrap();
        // Inbound packet 2 reaches ESTABLISHED: a change, but ESTABLISHED
        // waits for the count (2 % 50 != 3).
        lb.pkt_in(CLIENT, 40000, ACK, T0 + 2 * MS).unwrap();
        assert_eq!(taken(&mut lb), vec![]);
        lb.pkt_in(CLIENT, 40000, ACK | PSH, T0 + 3 * MS).unwrap();
        assert_eq!(taken(&mut lb), vec![(ip(CLIENT), es, false)], "the 3rd inbound packet");
        for n in 4..=52 {
            lb.pkt_in(CLIENT, 40000, ACK | PSH, T0 + n * MS).unwrap();
        }
        assert_eq!(taken(&mut lb), vec![], "packets 4 to 52");
        lb.pkt_in(CLIENT, 40000, ACK | PSH, T0 + 53 * MS).unwrap();
        let mut sent = Vec::new();
        lb.t.take_sync(&mut sent);
        assert_eq!(sent.len(), 1, "the 53rd");
        assert_eq!((sent[0].timeout_s, sent[0].flags & flag::INACTIVE, sent[0].daddr), (900, 0, ip("10.1.1.21")));
        // CLOSE_WAIT is sent at once (packet 54), and again TIME_WAIT,
        // reached by an inbound packet after the reply's FIN (packet 55);
        // a second packet in TIME_WAIT waits for the count.
        let c = lb.pkt_in(CLIENT, 40000, FIN | ACK, T0 + 54 * MS).unwrap();
        assert_eq!(taken(&mut lb), vec![(ip(CLIENT), TcpState::CloseWait as u8, false)]);
        lb.pkt_out(&c, FIN | ACK, T0 + 55 * MS).unwrap();
        assert_eq!(taken(&mut lb), vec![], "replies are not counted");
        lb.pkt_in(CLIENT, 40000, ACK, T0 + 56 * MS).unwrap();
        assert_eq!(taken(&mut lb), vec![(ip(CLIENT), TcpState::TimeWait as u8, false)]);
        lb.pkt_in(CLIENT, 40000, ACK, T0 + 57 * MS).unwrap();
        assert_eq!(taken(&mut lb), vec![]);
        // Stopping forgets everything; without a master nothing is chosen.
        lb.t.set_sync_master(None);
        lb.pkt_in(CLIENT, 40001, SYN, T0 + 60 * MS).unwrap();
        assert!(!lb.t.sync_pending());
    }

    #[test]
    fn period_zero_sends_once_and_persist_mode_only_templates() {
        let mut lb = Lb::new(FwdMethod::Route, &["10.1.1.21"], ConnConfig::default());
        lb.t.set_sync_master(Some(SyncPolicy { threshold: 2, period: 0, persist_mode: false }));
        for n in 0..300 {
            lb.pkt_in(CLIENT, 40000, if n == 0 { SYN } else { ACK }, T0 + n * MS).unwrap();
        }
        // DR: SYN -> SYN_RECV, ACK -> ESTABLISHED at packet 2 = the threshold.
        assert_eq!(taken(&mut lb), vec![(ip(CLIENT), TcpState::Established as u8, false)]);

        let mut lb = Lb::with_service(
            persistent(80, 360, "255.255.255.255"),
            FwdMethod::Route,
            &["10.1.1.21"],
            ConnConfig::default(),
        );
        lb.t.set_sync_master(Some(SyncPolicy { persist_mode: true, ..SyncPolicy::default() }));
        for n in 0..5 {
            lb.pkt_in(CLIENT, 40000, if n == 0 { SYN } else { ACK }, T0 + n * MS).unwrap();
        }
        // Every inbound packet offers the template; the conn never goes.
        // (It becomes ASSURED when its conn reaches ESTABLISHED, packet 2.)
        let assured = (ip(CLIENT), TEMPLATE_ASSURED, true);
        assert_eq!(taken(&mut lb), vec![(ip(CLIENT), 0, true), assured, assured, assured, assured]);
    }

    #[test]
    fn a_sent_conn_is_followed_by_its_template_and_both_are_counted_apart() {
        let mut lb = Lb::with_service(
            persistent(80, 360, "255.255.255.255"),
            FwdMethod::Masq,
            &["10.1.1.21"],
            ConnConfig::default(),
        );
        lb.t.set_sync_master(Some(SyncPolicy::default()));
        let c = lb.pkt_in(CLIENT, 40000, SYN, T0).unwrap();
        lb.pkt_out(&c, SYN | ACK, T0 + MS).unwrap();
        lb.pkt_in(CLIENT, 40000, ACK, T0 + 2 * MS).unwrap();
        lb.pkt_in(CLIENT, 40000, ACK, T0 + 3 * MS).unwrap();
        let mut sent = Vec::new();
        lb.t.take_sync(&mut sent);
        let kinds: Vec<bool> = sent.iter().map(Conn::is_template).collect();
        // One template per inbound packet; the conn at the 3rd, before its template.
        assert_eq!(kinds, vec![true, true, false, true]);
        let tpl = sent[3];
        assert_eq!((tpl.cport, tpl.vport, tpl.timeout_s, tpl.state), (0, 80, 360, TEMPLATE_ASSURED));
    }

    /// A received record of conn `caddr:cport` -> VIP:80 -> `daddr:8080`.
    fn record(caddr: &str, cport: u16, daddr: &str, state: TcpState, flags: u32, timeout_s: u32) -> SyncConn {
        SyncConn {
            proto: PROTO_TCP,
            flags,
            state: state as u16,
            cport,
            vport: 80,
            dport: 8080,
            fwmark: 0,
            timeout_s,
            caddr: ip(caddr),
            vaddr: ip(VIP),
            daddr: ip(daddr),
            seq: None,
        }
    }

    #[test]
    fn backup_creates_updates_replaces_and_ignores_stale_records() {
        use crate::ipvs::sync::msg::conn_flag::{INACTIVE, NOOUTPUT};
        let mut lb = Lb::new(FwdMethod::Masq, &["10.1.1.21", "10.1.1.22"], ConnConfig::default());
        let (a, b) = (lb.dests[0], lb.dests[1]);
        let rs_a = "10.1.1.21";
        let dest_a = Some((a, FwdMethod::Masq));
        // The master's method (DR, with NOOUTPUT) gives way to the dest's.
        let r = record(CLIENT, 40000, rs_a, TcpState::Established, 3 | NOOUTPUT, 900);
        assert_eq!(lb.t.sync_apply(&mut lb.svcs, &r, dest_a, T0), SyncApplied::Created);
        let c = lb.t.find_in_conn(&Tuple::new(PROTO_TCP, CLIENT.parse().unwrap(), 40000, VIP.parse().unwrap(), 80));
        let c = c.expect("the synced conn is found by a client packet");
        assert_eq!(
            (c.fwd(), c.flags & flag::NOOUTPUT, c.timeout_s, state(&c)),
            (FwdMethod::Masq, 0, 900, TcpState::Established)
        );
        assert_eq!((lb.counts(0), c.control), ((1, 0, 0), None));
        // The same conn, now INACTIVE in FIN_WAIT, 120 s.
        let r = record(CLIENT, 40000, rs_a, TcpState::FinWait, INACTIVE, 120);
        assert_eq!(lb.t.sync_apply(&mut lb.svcs, &r, dest_a, T0 + SEC), SyncApplied::Updated);
        assert_eq!(lb.counts(0), (0, 1, 0));
        assert_eq!(lb.t.len(), 1);
        // It expires 120 s after the record, not at the old 900 s.
        lb.t.expire(&mut lb.svcs, T0 + 121 * SEC - MS);
        assert_eq!(lb.t.len(), 1);
        lb.t.expire(&mut lb.svcs, T0 + 121 * SEC);
        assert_eq!((lb.t.len(), lb.counts(0)), (0, (0, 0, 0)));

        // A conn to another real server replaces it (active record) ...
        let r = record(CLIENT, 40001, rs_a, TcpState::Established, 0, 900);
        lb.t.sync_apply(&mut lb.svcs, &r, dest_a, T0 + 200 * SEC);
        let r2 = record(CLIENT, 40001, "10.1.1.22", TcpState::SynRecv, 0, 60);
        assert_eq!(
            lb.t.sync_apply(&mut lb.svcs, &r2, Some((b, FwdMethod::Masq)), T0 + 201 * SEC),
            SyncApplied::Created
        );
        assert_eq!((lb.t.len(), lb.counts(0), lb.counts(1)), (1, (0, 0, 0), (1, 0, 0)));
        // ... and the old conn's INACTIVE expiry notice is then stale.
        let late = record(CLIENT, 40001, rs_a, TcpState::Close, INACTIVE, 10);
        assert_eq!(lb.t.sync_apply(&mut lb.svcs, &late, dest_a, T0 + 202 * SEC), SyncApplied::Stale);
        assert_eq!((lb.t.len(), lb.counts(1), lb.t.stats().sync_stale), (1, (1, 0, 0), 1));

        // No dest here: the conn is kept unbound, then bound by a later
        // record once the real server exists; version 0 records carry no
        // timeout: the state's.
        let r = record("203.0.113.9", 5000, "10.1.1.99", TcpState::Established, 0, 0);
        assert_eq!(lb.t.sync_apply(&mut lb.svcs, &r, None, T0 + 203 * SEC), SyncApplied::Created);
        let t = Tuple::new(PROTO_TCP, "203.0.113.9".parse().unwrap(), 5000, VIP.parse().unwrap(), 80);
        let c = lb.t.find_in_conn(&t).unwrap();
        assert_eq!((c.dest, c.timeout_s), (None, 900));
        lb.t.sync_apply(&mut lb.svcs, &r, dest_a, T0 + 204 * SEC);
        assert_eq!((lb.t.find_in_conn(&t).unwrap().dest, lb.counts(0)), (Some(a), (1, 0, 0)));
    }

    #[test]
    fn backup_templates_and_a_full_table() {
        use crate::ipvs::sync::msg::conn_flag::TEMPLATE;
        let cfg = ConnConfig { max_conns: 1, ..ConnConfig::default() };
        let mut lb = Lb::new(FwdMethod::Route, &["10.1.1.21"], cfg);
        let a = lb.dests[0];
        let mut r = record(CLIENT, 0, "10.1.1.21", TcpState::None, TEMPLATE, 360);
        r.dport = 80;
        r.state = u16::from(TEMPLATE_ASSURED);
        assert_eq!(lb.t.sync_apply(&mut lb.svcs, &r, Some((a, FwdMethod::Route)), T0), SyncApplied::Created);
        assert_eq!(lb.counts(0), (0, 0, 1));
        let key = TemplateKey { proto: PROTO_TCP, caddr: ip(CLIENT), vaddr: ip(VIP), vport: 80 };
        let tpl = lb.t.template_lookup(&mut lb.svcs, &key, T0).expect("the synced template is found");
        assert_eq!((tpl.timeout_s, tpl.state, tpl.fwd()), (360, TEMPLATE_ASSURED, FwdMethod::Route));
        // The same template again: an update, not a second entry.
        assert_eq!(lb.t.sync_apply(&mut lb.svcs, &r, Some((a, FwdMethod::Route)), T0 + SEC), SyncApplied::Updated);
        // Full (templates are never evicted): the conn is refused.
        let c = record(CLIENT, 40000, "10.1.1.21", TcpState::Established, 0, 900);
        assert_eq!(lb.t.sync_apply(&mut lb.svcs, &c, Some((a, FwdMethod::Route)), T0 + SEC), SyncApplied::Full);
        assert_eq!((lb.t.len(), lb.t.stats().refused), (1, 1));
    }
}
