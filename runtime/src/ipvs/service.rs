//! Virtual services, their dests, connection accounting and the dest trash.
//!
//! # Model (spec sections 1.1, 1.3, 2.4, 2.8)
//! - Every dest object lives in one arena and is named by a [`DestId`] that
//!   stays valid while anything references the dest: its service's list, a
//!   connection or template (counted by the `*conns` fields), or a scheduler
//!   table (lblc/lblcr entries keep deleted dests alive, as in the kernel).
//! - A service keeps its dests in **kernel list order**: adding inserts at
//!   the front, so iteration order is newest first. Editing never moves a
//!   dest. Schedulers see exactly this order.
//! - Deleting a dest unlinks it, marks it unavailable and moves it to the
//!   trash. Re-adding the same `addr:port` to a service with the same key
//!   (protocol, VIP, port) revives the same object at the front, with its
//!   counters and connections. A trashed dest is freed by the trash timer
//!   (every 60 s) once it has been unreferenced for 120 s.
//! - Scheduler hooks run exactly where the kernel runs them: `add_dest`
//!   after the dest is linked (also for a revive), `del_dest` after it is
//!   unlinked, `upd_dest` after an edit, and `init_service` when a scheduler
//!   is bound (service add, or `-E` with a different scheduler; `-E` with
//!   the same scheduler keeps its state). Deleting a whole service runs no
//!   `del_dest` hooks (the scheduler is dropped first).
//!
//! # Time
//! Times are packet time in **milliseconds**, the connection table's clock
//! (the kernel's timers here run in jiffies; whole seconds put lblc/lblcr
//! expiry up to a second off). [`Services::advance`] sets the current time
//! and runs the timers that are due (dest trash, lblc/lblcr garbage
//! collection). Management operations use the time of the last `advance`
//! (timers they start are relative to it).
//!
//! # Errors
//! Management operations return [`IpvsError`], mirroring the kernel's errno
//! choices (`EEXIST`, `ESRCH`, `ENOENT`, `ERANGE`, `EINVAL`).

use std::fmt;
use std::net::Ipv4Addr;

use rustc_hash::FxHashMap;

use super::sched::{LeastRule, Packed, PackedDests, PacketInfo, SchedKind, Scheduler, SvcView};

/// Stable id of a dest object; survives the trash and a revive (spec 2.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u32);

/// Id of a virtual service. Never reused, so a trashed dest's `service`
/// never aliases a newer service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u32);

/// Packet forwarding method of a dest (`ipvsadm -m`, `-i`, `-g`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum FwdMethod {
    /// VS/NAT (`-m`, kernel flag 0).
    Masq,
    /// VS/TUN, IP-in-IP (`-i`, kernel flag 2).
    Tunnel,
    /// VS/DR, direct routing (`-g`, kernel flag 3): ipvsadm's default.
    #[default]
    Route,
}

impl FwdMethod {
    /// The name `ipvsadm -L` prints in the Forward column.
    pub fn list_name(self) -> &'static str {
        match self {
            FwdMethod::Masq => "Masq",
            FwdMethod::Tunnel => "Tunnel",
            FwdMethod::Route => "Route",
        }
    }
}

/// How a VS/TUN dest encapsulates (`ipvsadm --tun-type`, spec 3.2): the
/// kernel reads it from the dest for every packet it sends, so an edit
/// applies to the dest's existing connections too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Tunnel {
    /// IP-in-IP (`--tun-type ipip`, the default).
    #[default]
    Ipip,
    /// GUE (`--tun-type gue --tun-port PORT`, kernel 5.2+): outer IPv4,
    /// then a UDP header to `port` and a 4-byte GUE header (version 0,
    /// protocol 4), then the packet; the UDP checksum as `csum` says.
    Gue { port: u16, csum: GueCsum },
    /// GRE (`--tun-type gre`, kernel 5.3+): outer IPv4, then a GRE header
    /// (version 0, protocol 0x0800) with a checksum when `csum`
    /// (`--tun-csum`; `--tun-nocsum`, the default, has none).
    Gre { csum: bool },
}

/// A GUE tunnel's checksum option (the kernel's `IP_VS_TUNNEL_ENCAP_FLAG_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum GueCsum {
    /// `--tun-nocsum` (the default): UDP checksum 0.
    #[default]
    None,
    /// `--tun-csum`: a full UDP checksum.
    Csum,
    /// `--tun-remcsum`: remote checksum offload. The kernel adds its GUE
    /// option only to a packet whose own checksum is left to the NIC
    /// (`CHECKSUM_PARTIAL`, locally sent); a forwarded packet, the only kind
    /// a director sends, gets a full UDP checksum as with `Csum`.
    Remcsum,
}

impl GueCsum {
    /// ipvsadm's `tunflags[]` column text: `-c`, `+c`, `r+c`.
    fn info(self) -> &'static str {
        match self {
            GueCsum::None => "-c",
            GueCsum::Csum => "+c",
            GueCsum::Remcsum => "r+c",
        }
    }
}

impl Tunnel {
    /// ipvsadm's `--tun-info` column for a tunnel dest (`fwd_tun_info()`:
    /// the type, then for GUE the port, then `-c`, `+c` or `r+c` for the
    /// checksum flags).
    pub fn info(self) -> String {
        match self {
            Tunnel::Ipip => "ipip".into(),
            Tunnel::Gue { port, csum } => format!("gue:{port}:{}", csum.info()),
            Tunnel::Gre { csum: false } => "gre:-c".into(),
            Tunnel::Gre { csum: true } => "gre:+c".into(),
        }
    }

    /// ipvsadm's `-S` options for a tunnel dest (`print_tunnel_rule()`).
    pub fn save_options(self) -> String {
        match self {
            Tunnel::Ipip => " --tun-type ipip".into(),
            Tunnel::Gue { port, csum } => format!(
                " --tun-type gue --tun-port {port} {}",
                match csum {
                    GueCsum::None => "--tun-nocsum",
                    GueCsum::Csum => "--tun-csum",
                    GueCsum::Remcsum => "--tun-remcsum",
                }
            ),
            Tunnel::Gre { csum: false } => " --tun-type gre --tun-nocsum".into(),
            Tunnel::Gre { csum: true } => " --tun-type gre --tun-csum".into(),
        }
    }

    /// The UDP port the kernel's `ip_vs_find_tunnel` matches this tunnel
    /// by (`dest->tun_port`): GUE's `--tun-port`, 0 for the others.
    pub fn port(self) -> u16 {
        match self {
            Tunnel::Gue { port, .. } => port,
            Tunnel::Ipip | Tunnel::Gre { .. } => 0,
        }
    }
}

/// The connection overhead formula (spec 1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Overhead {
    /// `(active << 8) + (active + inactive)`: kernels from 2026 / 6.12.105+.
    #[default]
    Current,
    /// `(active << 8) + inactive`: kernels 2.6 .. early 2026.
    Classic,
}

/// Transport protocol of a (non-fwmark) virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// SCTP (132).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol with IP protocol number `n`, if IPVS services can use it.
    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name ipvsadm prints (`TCP`, `UDP`, `SCTP`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Identity of a virtual service: `<protocol, VIP, port>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Transport protocol.
    pub proto: Protocol,
    /// Virtual IP address.
    pub addr: Ipv4Addr,
    /// Virtual port (0 = "any port", persistent services only).
    pub port: u16,
}

/// Packet, byte and connection counters (kept per dest, per service and in
/// total; `ipvsadm -L --stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// New connections.
    pub conns: u64,
    /// Packets client → server.
    pub inpkts: u64,
    /// Packets server → client (seen only for NAT).
    pub outpkts: u64,
    /// Bytes (L3 length) client → server.
    pub inbytes: u64,
    /// Bytes server → client.
    pub outbytes: u64,
}

/// Service flag bit `IP_VS_SVC_F_SCHED1` (`-b flag-1`, sh: `sh-fallback`).
pub const SVC_F_SCHED1: u32 = 0x0008;
/// Service flag bit `IP_VS_SVC_F_SCHED2` (`-b flag-2`, sh: `sh-port`).
pub const SVC_F_SCHED2: u32 = 0x0010;
/// Service flag bit `IP_VS_SVC_F_SCHED3` (`-b flag-3`).
pub const SVC_F_SCHED3: u32 = 0x0020;
/// sh: fall back to another bucket when the hashed dest is unavailable.
pub const SVC_F_SH_FALLBACK: u32 = SVC_F_SCHED1;
/// sh: add the client's source port to the hash.
pub const SVC_F_SH_PORT: u32 = SVC_F_SCHED2;

/// `ipvsadm -p` without a value: 360 s (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// A trashed dest is freed after being unreferenced this long (ms).
pub const DEST_TRASH_PERIOD: u64 = 120 * 1000;
/// Period of the trash timer (`IP_VS_DEST_TRASH_PERIOD >> 1`).
pub const DEST_TRASH_CHECK_INTERVAL: u64 = DEST_TRASH_PERIOD / 2;

/// A virtual service definition, as `ipvsadm -A` / `-E` give it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// `<protocol, VIP, port>`; `-E` finds the service by it.
    pub key: ServiceKey,
    /// Scheduler (`-s`; ipvsadm's default is wlc).
    pub scheduler: SchedKind,
    /// Scheduler flag bits ([`SVC_F_SCHED1`] ...).
    pub sched_flags: u32,
    /// Persistence timeout in seconds (`-p`), `None` = not persistent.
    pub persistent: Option<u32>,
    /// Persistence netmask (`-M`, default /32).
    pub netmask: Ipv4Addr,
    /// One-packet scheduling (`-o`).
    pub one_packet: bool,
}

impl ServiceConfig {
    /// A non-persistent service with ipvsadm's defaults and scheduler `sched`.
    pub fn new(proto: Protocol, addr: Ipv4Addr, port: u16, scheduler: SchedKind) -> ServiceConfig {
        ServiceConfig {
            key: ServiceKey { proto, addr, port },
            scheduler,
            sched_flags: 0,
            persistent: None,
            netmask: Ipv4Addr::new(255, 255, 255, 255),
            one_packet: false,
        }
    }
}

/// A real server definition, as `ipvsadm -a` / `-e` give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestConfig {
    /// Real server address.
    pub addr: Ipv4Addr,
    /// Real server port.
    pub port: u16,
    /// Weight (`-w`; kernel range 0..=i32::MAX).
    pub weight: u32,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Upper connection threshold (`-x`, 0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`, 0 = derived from the upper one).
    pub l_threshold: u32,
    /// The encapsulation when `fwd` is [`FwdMethod::Tunnel`] (ipip otherwise).
    pub tunnel: Tunnel,
}

impl DestConfig {
    /// A dest with ipvsadm's defaults (direct routing, no thresholds).
    pub fn new(addr: Ipv4Addr, port: u16, weight: u32) -> DestConfig {
        DestConfig { addr, port, weight, fwd: FwdMethod::Route, u_threshold: 0, l_threshold: 0, tunnel: Tunnel::Ipip }
    }
}

/// A real server ("dest") of a virtual service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dest {
    /// Real server address.
    pub addr: Ipv4Addr,
    /// Real server port.
    pub port: u16,
    /// Scheduling weight; 0 = quiesced (no new connections).
    pub weight: u32,
    /// Forwarding method for new connections.
    pub fwd: FwdMethod,
    /// The encapsulation of a VS/TUN dest, read for every packet sent.
    pub tunnel: Tunnel,
    /// Upper connection threshold (0 = none).
    pub u_threshold: u32,
    /// Lower connection threshold (0 = `u - u/4`).
    pub l_threshold: u32,
    /// Normal connections in an active state.
    pub activeconns: u32,
    /// Normal connections in an inactive state (all UDP conns).
    pub inactconns: u32,
    /// Persistence templates bound to this dest.
    pub persistconns: u32,
    /// `IP_VS_DEST_F_OVERLOAD`: set by the connection thresholds (1.3).
    pub overload: bool,
    /// False once deleted from its service (in the trash).
    pub available: bool,
    /// The service the dest belongs (or last belonged) to.
    pub service: ServiceId,
    /// Traffic counters.
    pub stats: Stats,
    /// Key of the service, to match a revive after the service was re-created.
    svc_key: ServiceKey,
    /// When the trash timer first saw it unreferenced.
    idle_start: Option<u64>,
    /// Position in its service's list (and packed array), [`NO_SLOT`]
    /// while in the trash.
    slot: u32,
    /// Never reused, unlike a freed [`DestId`]: names this dest object
    /// for observers that outlive it (the rate estimator).
    serial: u64,
}

/// [`Dest`]'s `slot` while the dest is in no service's list.
const NO_SLOT: u32 = u32::MAX;

impl Dest {
    /// A number no other dest object ever had (a [`DestId`] is reused
    /// once its dest is freed): the kernel's `struct ip_vs_dest`, with its
    /// estimator, lives exactly as long as the object this names.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Active plus inactive normal connections (templates excluded).
    pub fn totalconns(&self) -> u32 {
        self.activeconns.wrapping_add(self.inactconns)
    }

    /// The connection overhead that lc/wlc/lblc/lblcr minimise (spec 1.2).
    #[inline]
    pub fn overhead(&self, mode: Overhead) -> u64 {
        let active = u64::from(self.activeconns);
        let inactive = u64::from(self.inactconns);
        match mode {
            Overhead::Current => (active << 8) + active + inactive,
            Overhead::Classic => (active << 8) + inactive,
        }
    }

    /// The lower threshold actually used: `l_threshold`, or `u − u/4`.
    pub fn effective_l_threshold(&self) -> u32 {
        if self.l_threshold != 0 {
            self.l_threshold
        } else {
            self.u_threshold - (self.u_threshold >> 2)
        }
    }

    /// References that keep a trashed dest from being freed (connections
    /// and templates; scheduler tables are asked separately).
    fn conn_refs(&self) -> u64 {
        u64::from(self.activeconns) + u64::from(self.inactconns) + u64::from(self.persistconns)
    }

    /// The set rule of 1.3, run after a connection or template is bound.
    fn overload_after_bind(&mut self) {
        if self.u_threshold != 0 && self.totalconns() >= self.u_threshold {
            self.overload = true;
        }
    }

    /// The clear rule of 1.3, run after a connection or template is unbound.
    fn overload_after_unbind(&mut self) {
        if self.u_threshold == 0 || self.totalconns() < self.effective_l_threshold() {
            self.overload = false;
        }
    }

    /// Re-evaluation after a threshold edit (current kernels, 1.3).
    fn overload_after_edit(&mut self) {
        if self.u_threshold == 0 {
            self.overload = false;
        } else if self.totalconns() >= self.u_threshold {
            self.overload = true;
        } else if self.totalconns() < self.effective_l_threshold() {
            self.overload = false;
        }
    }
}

/// All dest objects, live or trashed, indexed by [`DestId`].
#[derive(Clone, Debug, Default)]
pub struct DestArena {
    slots: Vec<Option<Dest>>,
    free: Vec<u32>,
    /// The serial the next inserted dest gets ([`Dest::serial`]).
    next_serial: u64,
}

impl DestArena {
    /// The dest named `d`. Panics if it was freed: holders of a `DestId`
    /// keep it referenced (connection counts), so that is a caller bug.
    #[inline]
    pub fn get(&self, d: DestId) -> &Dest {
        match self.slots.get(d.0 as usize) {
            Some(Some(dest)) => dest,
            _ => panic!("ipvs: use of freed dest id {}", d.0),
        }
    }

    /// The dest named `d`, if it still exists.
    pub fn try_get(&self, d: DestId) -> Option<&Dest> {
        self.slots.get(d.0 as usize).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, d: DestId) -> &mut Dest {
        match self.slots.get_mut(d.0 as usize) {
            Some(Some(dest)) => dest,
            _ => panic!("ipvs: use of freed dest id {}", d.0),
        }
    }

    fn insert(&mut self, mut dest: Dest) -> DestId {
        dest.serial = self.next_serial;
        self.next_serial += 1;
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(dest);
            DestId(i)
        } else {
            self.slots.push(Some(dest));
            DestId((self.slots.len() - 1) as u32)
        }
    }

    fn remove(&mut self, d: DestId) {
        if let Some(slot) = self.slots.get_mut(d.0 as usize) {
            if slot.take().is_some() {
                self.free.push(d.0);
            }
        }
    }

    /// Whether a dest available in `before` is gone or unavailable here:
    /// a deletion (`-d`, `-D`, `-C`) happened between the two.
    pub fn lost_since(&self, before: &DestArena) -> bool {
        before.slots.iter().enumerate().any(|(i, old)| {
            old.as_ref().is_some_and(|o| o.available)
                && !self.slots.get(i).and_then(Option::as_ref).is_some_and(|d| d.available)
        })
    }

    /// Number of dest objects that exist (live and trashed).
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// True if no dest object exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A virtual service.
#[derive(Clone, Debug)]
pub struct Service {
    /// This service's id.
    pub id: ServiceId,
    /// `<protocol, VIP, port>`.
    pub key: ServiceKey,
    /// Scheduler flag bits.
    pub sched_flags: u32,
    /// Persistence timeout (seconds), `None` = not persistent.
    pub persistent: Option<u32>,
    /// Persistence netmask.
    pub netmask: Ipv4Addr,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// Traffic counters of the service.
    pub stats: Stats,
    /// Dests in kernel list order (newest first).
    dests: Vec<DestId>,
    /// What lc/wlc/lblc/lblcr read of each dest, in the same order
    /// (`Packed`); kept in sync by every `Services` method that changes a
    /// dest's weight, OVERLOAD flag or connection counts, or the list.
    packed: PackedDests,
    /// The bound scheduler and its state.
    sched: Scheduler,
}

impl Service {
    /// The dests in kernel list order (the order schedulers walk).
    pub fn dests(&self) -> &[DestId] {
        &self.dests
    }

    /// The bound scheduler.
    pub fn scheduler(&self) -> SchedKind {
        self.sched.kind()
    }

    /// The scheduler state (for inspection in tests and dumps).
    pub fn sched_state(&self) -> &Scheduler {
        &self.sched
    }

    /// The client network a persistence template is keyed by:
    /// `client & netmask` (spec 2.6 step 1).
    pub fn persistence_net(&self, client: Ipv4Addr) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(client) & u32::from(self.netmask))
    }
}

/// Global settings that affect scheduling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpvsConfig {
    /// Overhead formula for lc/wlc/lblc/lblcr.
    pub overhead: Overhead,
    /// `net.ipv4.vs.lblc_expiration` in seconds.
    pub lblc_expiration: u64,
    /// `net.ipv4.vs.lblcr_expiration` in seconds.
    pub lblcr_expiration: u64,
}

impl Default for IpvsConfig {
    fn default() -> IpvsConfig {
        IpvsConfig { overhead: Overhead::Current, lblc_expiration: 86400, lblcr_expiration: 86400 }
    }
}

/// A failed management operation (the kernel's errno in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpvsError {
    /// A service with this key already exists (EEXIST).
    ServiceExists,
    /// No such service (ESRCH).
    NoSuchService,
    /// The dest is already in the service (EEXIST).
    DestExists,
    /// No such dest in the service (ENOENT).
    NoSuchDest,
    /// Weight out of the kernel's range 0..=i32::MAX (ERANGE).
    WeightRange,
    /// Lower threshold above the upper one (ERANGE).
    ThresholdRange,
    /// A threshold above i32::MAX (EINVAL).
    ThresholdTooLarge,
}

impl fmt::Display for IpvsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Close to ipvsadm's `ipvs_strerror` texts; the CLI owns the exact wording.
        f.write_str(match self {
            IpvsError::ServiceExists => "Service already exists",
            IpvsError::NoSuchService => "No such service",
            IpvsError::DestExists => "Destination already exists",
            IpvsError::NoSuchDest => "No such destination",
            IpvsError::WeightRange => "Weight out of range",
            IpvsError::ThresholdRange => "Upper threshold is smaller than lower threshold",
            IpvsError::ThresholdTooLarge => "Threshold out of range",
        })
    }
}

impl std::error::Error for IpvsError {}

/// A set of IPv4 addresses with false hits: one bit per hash of an address.
#[derive(Clone, Debug)]
struct VaddrFilter([u64; 64]);

impl Default for VaddrFilter {
    fn default() -> VaddrFilter {
        VaddrFilter([0; 64])
    }
}

impl VaddrFilter {
    /// The bit of `addr`: the top 12 bits of a multiplicative hash.
    fn bit(addr: u32) -> usize {
        (addr.wrapping_mul(0x9E37_79B1) >> 20) as usize
    }

    fn insert(&mut self, addr: Ipv4Addr) {
        let b = VaddrFilter::bit(addr.into());
        self.0[b / 64] |= 1 << (b % 64);
    }

    fn contains(&self, addr: u32) -> bool {
        let b = VaddrFilter::bit(addr);
        self.0[b / 64] & (1 << (b % 64)) != 0
    }
}

/// All virtual services, all dests, the dest trash and the global counters.
#[derive(Clone, Debug)]
pub struct Services {
    dests: DestArena,
    services: Vec<Option<Service>>,
    by_key: FxHashMap<ServiceKey, ServiceId>,
    /// The services' virtual addresses, as a filter ([`Services::may_be_virtual`]).
    vaddrs: VaddrFilter,
    /// Trashed dests, newest first (kernel `dest_trash` list order).
    trash: Vec<DestId>,
    /// Next run of the trash timer, if armed.
    trash_timer: Option<u64>,
    /// The earliest armed timer of all (`u64::MAX` if none).
    next_timer: u64,
    config: IpvsConfig,
    total: Stats,
    now: u64,
    /// Set by [`Services::dest_mut`] (which may change anything): the
    /// packed arrays are rebuilt before the next scheduling decision.
    packed_dirty: bool,
}

impl Default for Services {
    fn default() -> Services {
        Services::new(IpvsConfig::default())
    }
}

impl Services {
    /// An empty IPVS table with the given global settings, at time 0.
    pub fn new(config: IpvsConfig) -> Services {
        Services {
            dests: DestArena::default(),
            services: Vec::new(),
            by_key: FxHashMap::default(),
            vaddrs: VaddrFilter::default(),
            trash: Vec::new(),
            trash_timer: None,
            next_timer: u64::MAX,
            config,
            total: Stats::default(),
            now: 0,
            packed_dirty: false,
        }
    }

    /// Global settings.
    pub fn config(&self) -> IpvsConfig {
        self.config
    }

    /// Changes the global settings (sysctls); takes effect on the next
    /// scheduling decision.
    pub fn set_config(&mut self, config: IpvsConfig) {
        self.config = config;
        // The packed overheads follow the formula.
        self.repack_all();
    }

    /// The time of the last [`Services::advance`].
    pub fn now(&self) -> u64 {
        self.now
    }

    /// When the earliest timer (dest trash, lblc/lblcr GC) is due, in
    /// milliseconds; `u64::MAX` if none is armed.
    pub fn next_timer(&self) -> u64 {
        self.next_timer
    }

    // ---- lookups -------------------------------------------------------

    /// The dest named `d` (live or trashed). Panics if it was freed.
    #[inline]
    pub fn dest(&self, d: DestId) -> &Dest {
        self.dests.get(d)
    }

    /// The dest named `d`, if it still exists.
    pub fn try_dest(&self, d: DestId) -> Option<&Dest> {
        self.dests.try_get(d)
    }

    /// Mutable access to a dest (e.g. for tests and sync). Changing weights
    /// or thresholds this way bypasses the scheduler hooks; use
    /// [`Services::edit_dest`] for configuration.
    pub fn dest_mut(&mut self, d: DestId) -> &mut Dest {
        self.packed_dirty = true;
        self.dests.get_mut(d)
    }

    /// The dest arena (all live and trashed dests).
    pub fn dest_arena(&self) -> &DestArena {
        &self.dests
    }

    /// Whether a real server available in `before` is deleted here (`-d`,
    /// or its service's `-D` or `-C`): what queues the kernel's
    /// `expire_nodest_conn` flush.
    pub fn dests_deleted_since(&self, before: &Services) -> bool {
        self.dests.lost_since(&before.dests)
    }

    /// The service named `s`, if it exists.
    pub fn service(&self, s: ServiceId) -> Option<&Service> {
        self.services.get(s.0 as usize).and_then(Option::as_ref)
    }

    /// All services, in creation order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter_map(Option::as_ref)
    }

    /// Trashed dests, newest first.
    pub fn trash(&self) -> &[DestId] {
        &self.trash
    }

    /// Global counters.
    pub fn total_stats(&self) -> &Stats {
        &self.total
    }

    /// The service with exactly this key.
    pub fn find_service(&self, key: &ServiceKey) -> Option<ServiceId> {
        self.by_key.get(key).copied()
    }

    /// False when no service has the virtual address `addr`; true when one
    /// has, and for a few other addresses too (a 4096-bit filter: a false
    /// "maybe" is as likely as a hash collision with one of the services'
    /// addresses). Cheap enough for a hint on every packet.
    #[inline]
    pub fn may_be_virtual(&self, addr: u32) -> bool {
        self.vaddrs.contains(addr)
    }

    /// The encapsulation of a VS/TUN real server at `addr` whose tunnel
    /// port ([`Tunnel::port`]: GUE's `--tun-port`, else 0) is `port` (of
    /// any service; a deleted one has left its service's list): what the
    /// kernel's `ip_vs_find_tunnel(addr, port)` finds before it relays an
    /// ICMP error about a tunnel packet to it (port 0 for IP-in-IP and GRE
    /// quotes, the quoted UDP destination port for GUE ones). When several
    /// services have such a real server with different encapsulations, the
    /// kernel takes the one its hash chain holds first; this takes the
    /// first it finds, services in id order. A linear scan: only ICMP
    /// errors about tunnels ask.
    pub fn tunnel_at(&self, addr: Ipv4Addr, port: u16) -> Option<Tunnel> {
        self.services()
            .flat_map(|svc| svc.dests().iter().map(|&d| self.dest(d)))
            .find(|d| d.addr == addr && d.fwd == FwdMethod::Tunnel && d.tunnel.port() == port)
            .map(|d| d.tunnel)
    }

    /// The service a packet to `vaddr:vport` belongs to: the exact
    /// `<proto, vaddr, vport>` service, else the port-zero service
    /// `<proto, vaddr, 0>` (spec 2.7 steps 2 and 4; fwmark and FTP lookups
    /// are not modelled).
    pub fn lookup_service(&self, proto: Protocol, vaddr: Ipv4Addr, vport: u16) -> Option<ServiceId> {
        self.find_service(&ServiceKey { proto, addr: vaddr, port: vport })
            .or_else(|| self.find_service(&ServiceKey { proto, addr: vaddr, port: 0 }))
    }

    /// The dest `addr:port` in the list of service `s`.
    pub fn find_dest(&self, s: ServiceId, addr: Ipv4Addr, port: u16) -> Option<DestId> {
        let svc = self.service(s)?;
        svc.dests.iter().copied().find(|&d| {
            let dest = self.dests.get(d);
            dest.addr == addr && dest.port == port
        })
    }

    // ---- service management -------------------------------------------

    fn svc_mut(&mut self, s: ServiceId) -> Result<&mut Service, IpvsError> {
        self.services.get_mut(s.0 as usize).and_then(Option::as_mut).ok_or(IpvsError::NoSuchService)
    }

    /// `ipvsadm -A`: adds a service and binds its scheduler.
    pub fn add_service(&mut self, cfg: &ServiceConfig) -> Result<ServiceId, IpvsError> {
        if self.by_key.contains_key(&cfg.key) {
            return Err(IpvsError::ServiceExists);
        }
        let id = ServiceId(self.services.len() as u32);
        let sched = Scheduler::init_service(cfg.scheduler, self.view_parts(&[], cfg.sched_flags), self.now);
        let mut packed = PackedDests::default();
        packed.rebuild(std::iter::empty(), LeastRule::of(cfg.scheduler));
        self.services.push(Some(Service {
            id,
            key: cfg.key,
            sched_flags: cfg.sched_flags,
            persistent: cfg.persistent,
            netmask: cfg.netmask,
            one_packet: cfg.one_packet,
            stats: Stats::default(),
            dests: Vec::new(),
            packed,
            sched,
        }));
        self.by_key.insert(cfg.key, id);
        self.vaddrs.insert(cfg.key.addr);
        self.refresh_next_timer();
        Ok(id)
    }

    /// `ipvsadm -E`: replaces the definition of the service with `cfg.key`.
    /// A different scheduler is bound afresh (`init_service` with the dests
    /// present); the same scheduler keeps its state, as in the kernel.
    pub fn edit_service(&mut self, cfg: &ServiceConfig) -> Result<ServiceId, IpvsError> {
        let s = self.find_service(&cfg.key).ok_or(IpvsError::NoSuchService)?;
        let now = self.now;
        let config = self.config;
        let Services { services, dests, .. } = self;
        let svc = services[s.0 as usize].as_mut().ok_or(IpvsError::NoSuchService)?;
        svc.sched_flags = cfg.sched_flags;
        svc.persistent = cfg.persistent;
        svc.netmask = cfg.netmask;
        svc.one_packet = cfg.one_packet;
        if svc.sched.kind() != cfg.scheduler {
            let view = SvcView::new(&svc.dests, dests, &config, svc.sched_flags);
            svc.sched = Scheduler::init_service(cfg.scheduler, view, now);
            // The tree follows the scheduler's rule.
            repack(svc, dests, config.overhead);
        }
        self.refresh_next_timer();
        Ok(s)
    }

    /// `ipvsadm -D`: deletes a service; its dests go to the trash.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), IpvsError> {
        let s = self.by_key.remove(key).ok_or(IpvsError::NoSuchService)?;
        self.vaddrs = VaddrFilter::default();
        self.by_key.keys().for_each(|k| self.vaddrs.insert(k.addr));
        let svc = self.services[s.0 as usize].take().ok_or(IpvsError::NoSuchService)?;
        // The scheduler state is dropped first (done_service), then the
        // list is unlinked from the head without del_dest hooks.
        drop(svc.sched);
        for d in svc.dests {
            let dest = self.dests.get_mut(d);
            dest.available = false;
            dest.slot = NO_SLOT;
            self.put_in_trash(d);
        }
        self.refresh_next_timer();
        Ok(())
    }

    /// `ipvsadm -C`: deletes every service.
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.services().map(|s| s.key).collect();
        for key in keys {
            let _ = self.delete_service(&key);
        }
    }

    /// `ipvsadm -Z`: zeroes the traffic counters of one service and its
    /// dests, or (with `None`) of every service, dest in a list, and the
    /// totals. Connection counts are not counters and stay.
    pub fn zero(&mut self, s: Option<ServiceId>) -> Result<(), IpvsError> {
        match s {
            Some(s) => self.zero_service(s),
            None => {
                let ids: Vec<ServiceId> = self.services().map(|s| s.id).collect();
                for s in ids {
                    self.zero_service(s)?;
                }
                self.total = Stats::default();
                Ok(())
            }
        }
    }

    fn zero_service(&mut self, s: ServiceId) -> Result<(), IpvsError> {
        let Services { services, dests, .. } = self;
        let svc = services.get_mut(s.0 as usize).and_then(Option::as_mut).ok_or(IpvsError::NoSuchService)?;
        svc.stats = Stats::default();
        for &d in &svc.dests {
            dests.get_mut(d).stats = Stats::default();
        }
        Ok(())
    }

    // ---- dest management ----------------------------------------------

    fn validate(cfg: &DestConfig) -> Result<(), IpvsError> {
        if cfg.weight > i32::MAX as u32 {
            return Err(IpvsError::WeightRange);
        }
        if cfg.u_threshold > i32::MAX as u32 || cfg.l_threshold > i32::MAX as u32 {
            return Err(IpvsError::ThresholdTooLarge);
        }
        if cfg.l_threshold > cfg.u_threshold {
            return Err(IpvsError::ThresholdRange);
        }
        Ok(())
    }

    /// `ipvsadm -a`: adds a dest at the front of the service's list, or
    /// revives the trashed dest with the same service key and `addr:port`.
    /// Runs the scheduler's `add_dest` hook after linking.
    pub fn add_dest(&mut self, s: ServiceId, cfg: &DestConfig) -> Result<DestId, IpvsError> {
        Self::validate(cfg)?;
        let key = self.svc_mut(s)?.key;
        if self.find_dest(s, cfg.addr, cfg.port).is_some() {
            return Err(IpvsError::DestExists);
        }
        let revived = self.trash.iter().position(|&d| {
            let dest = self.dests.get(d);
            dest.svc_key == key && dest.addr == cfg.addr && dest.port == cfg.port
        });
        let d = match revived {
            Some(i) => {
                let d = self.trash.remove(i);
                let dest = self.dests.get_mut(d);
                if dest.service != s {
                    // Rebinding to a re-created service zeroes the stats.
                    dest.stats = Stats::default();
                    dest.service = s;
                }
                dest.idle_start = None;
                d
            }
            None => self.dests.insert(Dest {
                addr: cfg.addr,
                port: cfg.port,
                weight: 0,
                fwd: cfg.fwd,
                tunnel: cfg.tunnel,
                u_threshold: 0,
                l_threshold: 0,
                activeconns: 0,
                inactconns: 0,
                persistconns: 0,
                overload: false,
                available: false,
                service: s,
                stats: Stats::default(),
                svc_key: key,
                idle_start: None,
                slot: NO_SLOT,
                serial: 0,
            }),
        };
        self.apply_dest_config(d, cfg);
        let config = self.config;
        let Services { services, dests, .. } = self;
        let svc = services[s.0 as usize].as_mut().ok_or(IpvsError::NoSuchService)?;
        svc.dests.insert(0, d);
        repack(svc, dests, config.overhead);
        let view = SvcView::new(&svc.dests, dests, &config, svc.sched_flags);
        svc.sched.add_dest(view, d);
        Ok(d)
    }

    /// Sets weight, method and thresholds, marks the dest available and
    /// re-evaluates OVERLOAD (shared by add, revive and edit).
    fn apply_dest_config(&mut self, d: DestId, cfg: &DestConfig) {
        let dest = self.dests.get_mut(d);
        dest.weight = cfg.weight;
        dest.fwd = cfg.fwd;
        dest.tunnel = cfg.tunnel;
        dest.available = true;
        dest.u_threshold = cfg.u_threshold;
        dest.l_threshold = cfg.l_threshold;
        dest.overload_after_edit();
        self.sync_packed(d);
    }

    /// `ipvsadm -e`: changes weight, method and thresholds of a dest in
    /// place (it keeps its list position); runs the `upd_dest` hook.
    pub fn edit_dest(&mut self, s: ServiceId, cfg: &DestConfig) -> Result<DestId, IpvsError> {
        Self::validate(cfg)?;
        self.svc_mut(s)?;
        let d = self.find_dest(s, cfg.addr, cfg.port).ok_or(IpvsError::NoSuchDest)?;
        self.apply_dest_config(d, cfg);
        let config = self.config;
        let Services { services, dests, .. } = self;
        let svc = services[s.0 as usize].as_mut().ok_or(IpvsError::NoSuchService)?;
        let view = SvcView::new(&svc.dests, dests, &config, svc.sched_flags);
        svc.sched.upd_dest(view, d);
        Ok(d)
    }

    /// `ipvsadm -d`: unlinks a dest, marks it unavailable, runs the
    /// `del_dest` hook and moves the dest to the trash.
    pub fn delete_dest(&mut self, s: ServiceId, addr: Ipv4Addr, port: u16) -> Result<DestId, IpvsError> {
        self.svc_mut(s)?;
        let d = self.find_dest(s, addr, port).ok_or(IpvsError::NoSuchDest)?;
        self.dests.get_mut(d).available = false;
        let config = self.config;
        let Services { services, dests, .. } = self;
        let svc = services[s.0 as usize].as_mut().ok_or(IpvsError::NoSuchService)?;
        let pos = svc.dests.iter().position(|&x| x == d).ok_or(IpvsError::NoSuchDest)?;
        svc.dests.remove(pos);
        dests.get_mut(d).slot = NO_SLOT;
        repack(svc, dests, config.overhead);
        let view = SvcView::new(&svc.dests, dests, &config, svc.sched_flags);
        svc.sched.del_dest(view, d, pos);
        self.put_in_trash(d);
        Ok(d)
    }

    fn put_in_trash(&mut self, d: DestId) {
        if self.trash.is_empty() {
            self.trash_timer = Some(self.now + DEST_TRASH_CHECK_INTERVAL);
        }
        self.dests.get_mut(d).idle_start = None;
        self.trash.insert(0, d);
        self.refresh_next_timer();
    }

    // ---- time ----------------------------------------------------------

    /// Starts the clock at `now` (ms) if it has not moved yet: the
    /// timers armed at time 0 (the lblc/lblcr garbage collectors of the
    /// services added before the first packet, a dest trash timer) move
    /// `now` ms later, so they run as if the configuration had been
    /// loaded at `now`, not at the epoch. Replay loads `lb.conf` before the
    /// capture's first packet, whose time is the capture's business; without
    /// this the timers' phase, and so what they expire, would depend on how
    /// far from the epoch the capture's clock is.
    pub fn start_clock(&mut self, now: u64) {
        if self.now != 0 || now == 0 {
            return;
        }
        if let Some(t) = self.trash_timer.as_mut() {
            *t = t.saturating_add(now);
        }
        for svc in self.services.iter_mut().flatten() {
            svc.sched.shift_timers(now);
        }
        self.now = now;
        self.refresh_next_timer();
    }

    /// Sets the current time (ms) and runs every timer due at or before `now`,
    /// in time order, each at its own scheduled time: the dest trash timer
    /// and the lblc/lblcr garbage collectors (at equal times the trash
    /// timer runs first, then services in id order). Cheap when nothing is
    /// due, so the data path may call it for every packet. Time never goes
    /// backwards here: an earlier `now` is ignored.
    pub fn advance(&mut self, now: u64) {
        if now < self.now {
            return;
        }
        while self.next_timer <= now {
            // With nothing in the trash and nothing in any scheduler's
            // table the timers cannot touch each other's state, so they all
            // run on to `now` at once, each skipping what changes nothing
            // (a long gap in packet time is then cheap); otherwise one
            // timer time at a time.
            let idle = self.trash_timer.is_none() && self.services.iter().flatten().all(|svc| svc.sched.is_idle());
            let t = if idle { now } else { self.next_timer };
            self.now = t;
            if self.trash_timer == Some(t) {
                self.run_trash_timer(t);
            }
            let config = self.config;
            let Services { services, dests, .. } = self;
            for svc in services.iter_mut().flatten() {
                let view = SvcView::new(&svc.dests, dests, &config, svc.sched_flags);
                svc.sched.run_timers(view, t);
            }
            self.refresh_next_timer();
        }
        self.now = now;
    }

    /// Recomputes the earliest armed timer (after any change to timers).
    fn refresh_next_timer(&mut self) {
        let sched = self.services.iter().flatten().filter_map(|svc| svc.sched.next_timer()).min();
        self.next_timer = self.trash_timer.into_iter().chain(sched).min().unwrap_or(u64::MAX);
    }

    /// One run of the trash timer (`ip_vs_dest_trash_expire`): a dest seen
    /// unreferenced gets an idle start time, and is freed at the first run
    /// at least [`DEST_TRASH_PERIOD`] later if still unreferenced.
    fn run_trash_timer(&mut self, t: u64) {
        let mut i = 0;
        while i < self.trash.len() {
            let d = self.trash[i];
            if self.referenced(d) {
                i += 1;
                continue;
            }
            let dest = self.dests.get_mut(d);
            match dest.idle_start {
                Some(start) if t >= start + DEST_TRASH_PERIOD => {
                    self.trash.remove(i);
                    self.dests.remove(d);
                }
                Some(_) => i += 1,
                None => {
                    dest.idle_start = Some(t);
                    i += 1;
                }
            }
        }
        self.trash_timer = if self.trash.is_empty() { None } else { Some(t + DEST_TRASH_CHECK_INTERVAL) };
    }

    /// True while connections, templates or the scheduler of the dest's
    /// service still reference the dest.
    fn referenced(&self, d: DestId) -> bool {
        let dest = self.dests.get(d);
        dest.conn_refs() > 0 || self.service(dest.service).is_some_and(|svc| svc.sched.holds(d))
    }

    // ---- scheduling ----------------------------------------------------

    fn view_parts<'a>(&'a self, order: &'a [DestId], sched_flags: u32) -> SvcView<'a> {
        SvcView::new(order, &self.dests, &self.config, sched_flags)
    }

    /// Runs the service's scheduler for a new connection. `now` is the
    /// packet time in milliseconds. Returns `None` for "no destination
    /// available" (spec 1.12; the caller decides what happens then).
    #[inline]
    pub fn schedule(&mut self, s: ServiceId, pkt: &PacketInfo, now: u64) -> Option<DestId> {
        if self.packed_dirty {
            self.repack_all();
        }
        let config = &self.config;
        let Services { services, dests, .. } = self;
        let svc = services.get_mut(s.0 as usize)?.as_mut()?;
        svc.packed.flush();
        let view = SvcView::new(&svc.dests, dests, config, svc.sched_flags).with_packed(&svc.packed);
        svc.sched.schedule(view, pkt, now)
    }

    // ---- the packed arrays ----------------------------------------------

    /// Rebuilds every service's packed array (overhead formula changed, or
    /// a dest was changed through [`Services::dest_mut`]).
    fn repack_all(&mut self) {
        let mode = self.config.overhead;
        let Services { services, dests, .. } = self;
        for svc in services.iter_mut().flatten() {
            repack(svc, dests, mode);
        }
        self.packed_dirty = false;
    }

    /// Refreshes the packed entry of `d` (after its weight, OVERLOAD flag
    /// or connection counts changed); a trashed dest has none.
    #[inline]
    fn sync_packed(&mut self, d: DestId) {
        let mode = self.config.overhead;
        let Services { services, dests, .. } = self;
        sync_one(services, dests, d, mode);
    }

    /// Applies `f` to dest `d`, then refreshes its packed entry.
    #[inline]
    fn update_dest(&mut self, d: DestId, f: impl FnOnce(&mut Dest)) {
        f(self.dests.get_mut(d));
        self.sync_packed(d);
    }

    /// True if every service's packed array is what its dests say (tests).
    #[cfg(test)]
    pub(crate) fn packed_in_sync(&self) -> bool {
        self.packed_dirty
            || self.services().all(|svc| {
                let leaves = svc.packed.leaves();
                leaves.len() == svc.dests.len()
                    && svc.packed.rule() == LeastRule::of(svc.sched.kind())
                    && svc.packed.consistent()
                    && svc.dests.iter().zip(leaves).enumerate().all(|(k, (&d, p))| {
                        let dest = self.dests.get(d);
                        *p == Packed::of(d, dest, self.config.overhead) && dest.slot as usize == k
                    })
            })
    }

    // ---- accounting hooks (connection table) ---------------------------

    /// A new normal connection was bound to `d` in the INACTIVE state:
    /// `inactconns += 1`, then the OVERLOAD set rule (1.3).
    pub fn conn_bound(&mut self, d: DestId) {
        self.update_dest(d, |dest| {
            dest.inactconns += 1;
            dest.overload_after_bind();
        });
    }

    /// A connection was bound to `d` already active or inactive (e.g. a
    /// synchronised connection on a backup director).
    pub fn conn_bound_as(&mut self, d: DestId, active: bool) {
        self.update_dest(d, |dest| {
            if active {
                dest.activeconns += 1;
            } else {
                dest.inactconns += 1;
            }
            dest.overload_after_bind();
        });
    }

    /// An inactive connection of `d` entered an active state.
    pub fn conn_activated(&mut self, d: DestId) {
        self.update_dest(d, |dest| {
            dest.inactconns = dest.inactconns.saturating_sub(1);
            dest.activeconns += 1;
        });
    }

    /// An active connection of `d` entered an inactive state.
    pub fn conn_deactivated(&mut self, d: DestId) {
        self.update_dest(d, |dest| {
            dest.activeconns = dest.activeconns.saturating_sub(1);
            dest.inactconns += 1;
        });
    }

    /// A normal connection of `d` expired (`active` = it was not INACTIVE):
    /// the count drops, then the OVERLOAD clear rule (1.3). A trashed dest
    /// left unreferenced is freed later by the trash timer (spec 2.8).
    pub fn conn_unbound(&mut self, d: DestId, active: bool) {
        self.update_dest(d, |dest| {
            if active {
                dest.activeconns = dest.activeconns.saturating_sub(1);
            } else {
                dest.inactconns = dest.inactconns.saturating_sub(1);
            }
            dest.overload_after_unbind();
        });
    }

    /// A persistence template was bound to `d`.
    pub fn template_bound(&mut self, d: DestId) {
        // Templates do not count in the overhead, but they may set OVERLOAD.
        self.update_dest(d, |dest| {
            dest.persistconns += 1;
            dest.overload_after_bind();
        });
    }

    /// A persistence template of `d` expired.
    pub fn template_unbound(&mut self, d: DestId) {
        self.update_dest(d, |dest| {
            dest.persistconns = dest.persistconns.saturating_sub(1);
            dest.overload_after_unbind();
        });
    }

    /// Counts a new connection on the dest, its service and the totals.
    pub fn count_conn(&mut self, d: DestId) {
        self.count(d, false, |st| st.conns += 1);
    }

    /// Counts a client → server packet of `bytes` (L3 length). Packets of
    /// a conn whose dest was deleted count nowhere, not even in the totals
    /// (`ip_vs_in_stats()` checks `IP_VS_DEST_F_AVAILABLE`).
    pub fn count_in(&mut self, d: DestId, bytes: u64) {
        self.count(d, true, |st| {
            st.inpkts += 1;
            st.inbytes += bytes;
        });
    }

    /// Counts a server → client packet of `bytes` (L3 length); like
    /// [`Services::count_in`], nothing for a deleted dest's conn (NAT
    /// replies of such conns are still forwarded, `ip_vs_out_stats()`).
    pub fn count_out(&mut self, d: DestId, bytes: u64) {
        self.count(d, true, |st| {
            st.outpkts += 1;
            st.outbytes += bytes;
        });
    }

    /// Applies `f` to the stats of `d`, of its service and the totals;
    /// with `if_available`, only while `d` is in its service's list.
    #[inline]
    fn count(&mut self, d: DestId, if_available: bool, f: impl Fn(&mut Stats)) {
        let dest = self.dests.get_mut(d);
        if if_available && !dest.available {
            return;
        }
        f(&mut dest.stats);
        let s = dest.service;
        if let Some(svc) = self.services.get_mut(s.0 as usize).and_then(Option::as_mut) {
            f(&mut svc.stats);
        }
        f(&mut self.total);
    }
}

/// Rebuilds `svc`'s packed array from its list and renumbers the dests'
/// slots (after the list changed).
fn repack(svc: &mut Service, dests: &mut DestArena, mode: Overhead) {
    for (k, &d) in svc.dests.iter().enumerate() {
        dests.get_mut(d).slot = k as u32;
    }
    let dests = &*dests;
    let leaves = svc.dests.iter().map(|&d| Packed::of(d, dests.get(d), mode));
    svc.packed.rebuild(leaves, LeastRule::of(svc.sched.kind()));
}

/// [`Services::sync_packed`] over split borrows.
#[inline(always)]
fn sync_one(services: &mut [Option<Service>], dests: &DestArena, d: DestId, mode: Overhead) {
    let dest = dests.get(d);
    if dest.slot == NO_SLOT {
        return;
    }
    if let Some(svc) = services.get_mut(dest.service.0 as usize).and_then(Option::as_mut) {
        svc.packed.set(dest.slot as usize, Packed::of(d, dest, mode));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const A: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 21);
    const B: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 22);
    const C: Ipv4Addr = Ipv4Addr::new(10, 1, 1, 23);
    /// One second of the services' millisecond clock.
    const S: u64 = 1000;

    fn svc(s: &mut Services, kind: SchedKind) -> ServiceId {
        s.add_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, kind)).unwrap()
    }

    fn order(s: &Services, id: ServiceId) -> Vec<Ipv4Addr> {
        s.service(id).unwrap().dests().iter().map(|&d| s.dest(d).addr).collect()
    }

    fn thresholds(u: u32, l: u32) -> DestConfig {
        DestConfig { u_threshold: u, l_threshold: l, ..DestConfig::new(A, 80, 1) }
    }

    /// Binds conns up to `n` total, then unbinds down, returning the
    /// OVERLOAD flag after each step as (conns, flag).
    fn walk(s: &mut Services, d: DestId, up: u32, down: u32) -> Vec<(u32, bool)> {
        let mut out = Vec::new();
        for _ in 0..up {
            s.conn_bound(d);
            out.push((s.dest(d).totalconns(), s.dest(d).overload));
        }
        for _ in 0..down {
            s.conn_unbound(d, false);
            out.push((s.dest(d).totalconns(), s.dest(d).overload));
        }
        out
    }

    #[test]
    fn v18_threshold_default_lower() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let d = s.add_dest(id, &thresholds(10, 0)).unwrap();
        assert_eq!(s.dest(d).effective_l_threshold(), 8);
        let steps = walk(&mut s, d, 10, 4);
        let flag_at = |n: u32, dir: usize| steps[if dir == 0 { n as usize - 1 } else { 9 + (10 - n as usize) }].1;
        assert!(!flag_at(9, 0));
        assert!(flag_at(10, 0), "set when total reaches u");
        assert!(flag_at(9, 1) && flag_at(8, 1), "kept between L and u");
        assert!(!flag_at(7, 1), "cleared below L");
        assert!(!flag_at(6, 1));
    }

    #[test]
    fn v19_threshold_explicit_lower() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let d = s.add_dest(id, &thresholds(5, 2)).unwrap();
        let steps = walk(&mut s, d, 5, 4);
        let flags: Vec<bool> = steps.iter().map(|&(_, f)| f).collect();
        // up 1..=5, then down 4, 3, 2, 1
        assert_eq!(flags, [false, false, false, false, true, true, true, true, false]);
        // Rebinding from 1 does not set it again below u.
        assert_eq!(walk(&mut s, d, 3, 0), [(2, false), (3, false), (4, false)]);
    }

    #[test]
    fn threshold_counts_active_and_inactive_not_templates() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let d = s.add_dest(id, &thresholds(3, 0)).unwrap();
        s.template_bound(d);
        s.template_bound(d);
        s.template_bound(d);
        assert!(!s.dest(d).overload, "templates count in persistconns only");
        s.conn_bound(d);
        s.conn_activated(d);
        s.conn_bound(d);
        assert!(!s.dest(d).overload);
        s.conn_bound(d);
        assert!(s.dest(d).overload);
        assert_eq!((s.dest(d).activeconns, s.dest(d).inactconns, s.dest(d).persistconns), (1, 2, 3));
        // L = 3 - 0 = 3: one unbind clears it.
        s.conn_unbound(d, true);
        assert!(!s.dest(d).overload);
    }

    #[test]
    fn threshold_edit_reevaluates() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let d = s.add_dest(id, &thresholds(0, 0)).unwrap();
        for _ in 0..6 {
            s.conn_bound(d);
        }
        assert!(!s.dest(d).overload, "no thresholds");
        s.edit_dest(id, &thresholds(5, 0)).unwrap();
        assert!(s.dest(d).overload, "6 >= u = 5");
        s.edit_dest(id, &thresholds(7, 0)).unwrap();
        assert!(s.dest(d).overload, "L = 6 <= 6 < 7 keeps it");
        s.edit_dest(id, &thresholds(10, 0)).unwrap();
        assert!(!s.dest(d).overload, "6 < L = 8 clears it");
        s.edit_dest(id, &thresholds(7, 0)).unwrap();
        assert!(!s.dest(d).overload, "L <= 6 < u keeps it clear");
        s.edit_dest(id, &thresholds(6, 0)).unwrap();
        assert!(s.dest(d).overload);
        s.edit_dest(id, &thresholds(0, 0)).unwrap();
        assert!(!s.dest(d).overload, "u = 0 clears it");
    }

    #[test]
    fn accounting_and_overhead() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let d = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        s.conn_bound(d);
        assert_eq!((s.dest(d).activeconns, s.dest(d).inactconns), (0, 1));
        s.conn_activated(d);
        assert_eq!((s.dest(d).activeconns, s.dest(d).inactconns), (1, 0));
        s.conn_bound(d);
        s.conn_bound(d);
        assert_eq!(s.dest(d).totalconns(), 3);
        assert_eq!(s.dest(d).overhead(Overhead::Current), 257 + 2);
        assert_eq!(s.dest(d).overhead(Overhead::Classic), 256 + 2);
        s.conn_deactivated(d);
        assert_eq!((s.dest(d).activeconns, s.dest(d).inactconns), (0, 3));
        s.conn_unbound(d, false);
        assert_eq!(s.dest(d).totalconns(), 2);
        s.conn_bound_as(d, true);
        assert_eq!((s.dest(d).activeconns, s.dest(d).inactconns), (1, 2));
    }

    #[test]
    fn list_order_add_edit_delete_readd() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Rr);
        let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        let b = s.add_dest(id, &DestConfig::new(B, 80, 1)).unwrap();
        s.add_dest(id, &DestConfig::new(C, 80, 1)).unwrap();
        assert_eq!(order(&s, id), [C, B, A], "newest first");
        s.edit_dest(id, &DestConfig { fwd: FwdMethod::Masq, ..DestConfig::new(B, 80, 7) }).unwrap();
        assert_eq!(order(&s, id), [C, B, A], "edit does not move");
        assert_eq!((s.dest(b).weight, s.dest(b).fwd), (7, FwdMethod::Masq));
        s.conn_bound(b);
        s.count_conn(b);
        s.delete_dest(id, B, 80).unwrap();
        assert_eq!(order(&s, id), [C, A]);
        assert!(!s.dest(b).available);
        assert_eq!(s.trash(), [b]);
        let b2 = s.add_dest(id, &DestConfig::new(B, 80, 2)).unwrap();
        assert_eq!(b2, b, "revived, same object");
        assert_eq!(order(&s, id), [B, C, A], "revived at the front");
        assert!(s.dest(b).available && s.trash().is_empty());
        assert_eq!((s.dest(b).inactconns, s.dest(b).stats.conns, s.dest(b).weight), (1, 1, 2));
        // A different port is a different dest.
        let b81 = s.add_dest(id, &DestConfig::new(B, 81, 1)).unwrap();
        assert_ne!(b81, b);
        assert_eq!(s.find_dest(id, A, 80), Some(a));
    }

    #[test]
    fn revive_into_recreated_service_zeroes_stats() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        s.conn_bound(a);
        s.count_conn(a);
        s.count_in(a, 60);
        s.delete_service(&ServiceKey { proto: Protocol::Tcp, addr: VIP, port: 80 }).unwrap();
        assert!(s.service(id).is_none());
        assert!(!s.dest(a).available);
        // Traffic of the remaining conn (NAT replies) counts nowhere: the
        // kernel counts only packets of available dests.
        s.count_in(a, 40);
        assert_eq!(s.dest(a).stats.inbytes, 60);
        assert_eq!(s.total_stats().inbytes, 60);
        let id2 = svc(&mut s, SchedKind::Wlc);
        assert_ne!(id2, id, "service ids are never reused");
        // Another service key does not revive it.
        let other = s.add_service(&ServiceConfig::new(Protocol::Udp, VIP, 80, SchedKind::Wlc)).unwrap();
        assert_ne!(s.add_dest(other, &DestConfig::new(A, 80, 1)).unwrap(), a);
        let a2 = s.add_dest(id2, &DestConfig::new(A, 80, 1)).unwrap();
        assert_eq!(a2, a);
        assert_eq!(s.dest(a).service, id2);
        assert_eq!(s.dest(a).stats, Stats::default(), "rebinding zeroes the stats");
        assert_eq!(s.dest(a).inactconns, 1, "connections continue");
    }

    /// `tunnel_at`: a tunnel real server's encapsulation by address and
    /// tunnel port, of any service; not a NAT one, not a deleted one; an
    /// edit shows at once.
    #[test]
    fn tunnel_at_finds_tunnel_real_servers_by_address() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Rr);
        let tun = |addr, tunnel| DestConfig { fwd: FwdMethod::Tunnel, tunnel, ..DestConfig::new(addr, 80, 1) };
        s.add_dest(id, &tun(A, Tunnel::Gre { csum: true })).unwrap();
        s.add_dest(id, &DestConfig { fwd: FwdMethod::Masq, ..DestConfig::new(B, 8080, 1) }).unwrap();
        assert_eq!(s.tunnel_at(A, 0), Some(Tunnel::Gre { csum: true }));
        assert_eq!(s.tunnel_at(B, 0), None, "a NAT real server is no tunnel");
        assert_eq!(s.tunnel_at(C, 0), None);
        // Another service's tunnel real server counts too.
        let udp = s.add_service(&ServiceConfig::new(Protocol::Udp, VIP, 53, SchedKind::Rr)).unwrap();
        s.add_dest(udp, &tun(C, Tunnel::Ipip)).unwrap();
        assert_eq!(s.tunnel_at(C, 0), Some(Tunnel::Ipip));
        // A GUE real server is found by its port only, the others by 0.
        let gue = Tunnel::Gue { port: 6080, csum: GueCsum::Csum };
        s.edit_dest(udp, &tun(C, gue)).unwrap();
        assert_eq!(s.tunnel_at(C, 6080), Some(gue));
        assert_eq!(s.tunnel_at(C, 0), None);
        assert_eq!(s.tunnel_at(C, 6081), None);
        // An edit shows at once; a deleted real server (in the trash) is gone.
        s.edit_dest(id, &tun(A, Tunnel::Ipip)).unwrap();
        assert_eq!(s.tunnel_at(A, 0), Some(Tunnel::Ipip));
        s.delete_dest(id, A, 80).unwrap();
        assert_eq!(s.tunnel_at(A, 0), None);
    }

    #[test]
    fn trash_timer_frees_after_idle_period() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        let b = s.add_dest(id, &DestConfig::new(B, 80, 1)).unwrap();
        s.conn_bound(b);
        s.delete_dest(id, A, 80).unwrap();
        s.delete_dest(id, B, 80).unwrap();
        s.advance(60 * S); // first run: A gets idle_start 60
        s.advance(179 * S);
        assert!(s.try_dest(a).is_some(), "timer at 120: 120 < 60 + 120");
        s.advance(180 * S);
        assert!(s.try_dest(a).is_none(), "freed at the run 120 s after idle start");
        assert_eq!(s.trash(), [b]);
        s.advance(200 * S);
        s.conn_unbound(b, false);
        s.advance(240 * S); // idle start 240
        s.advance(359 * S);
        assert!(s.try_dest(b).is_some());
        s.advance(360 * S);
        assert!(s.try_dest(b).is_none());
        assert!(s.trash().is_empty() && s.dest_arena().is_empty());
        // The timer stops with an empty trash and restarts on the next delete.
        let c = s.add_dest(id, &DestConfig::new(C, 80, 1)).unwrap();
        s.advance(1000 * S);
        s.delete_dest(id, C, 80).unwrap();
        s.advance(1060 * S);
        assert!(s.try_dest(c).is_some());
        s.advance(1180 * S);
        assert!(s.try_dest(c).is_none());
    }

    #[test]
    fn lblc_entry_keeps_trashed_dest_alive() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Lblc);
        let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        let pkt = PacketInfo { saddr: B, sport: 1, daddr: Ipv4Addr::new(8, 8, 8, 8), dport: 80, proto: 6 };
        assert_eq!(s.schedule(id, &pkt, 0), Some(a));
        s.delete_dest(id, A, 80).unwrap();
        assert_eq!(s.schedule(id, &pkt, 10 * S), None, "unavailable, and no other dest");
        s.advance(3600 * S);
        assert!(s.try_dest(a).is_some(), "the lblc entry references it");
        assert_eq!(s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap(), a);
        assert_eq!(s.schedule(id, &pkt, 3600 * S), Some(a));
        // Switching the scheduler drops the table, and with it the reference.
        s.delete_dest(id, A, 80).unwrap();
        s.edit_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, SchedKind::Rr)).unwrap();
        s.advance((3600 + 240) * S);
        assert!(s.try_dest(a).is_none());
    }

    /// The lblc/lblcr GC state of service `id`.
    fn gc(s: &Services, id: ServiceId) -> Option<(u32, usize, u64)> {
        match &s.service(id).unwrap().sched {
            Scheduler::Lblc(l) => Some(l.table().gc_state()),
            Scheduler::Lblcr(l) => Some(l.table().gc_state()),
            _ => None,
        }
    }

    #[test]
    fn a_long_gap_in_one_step_ends_as_in_many() {
        // lblc and lblcr services, one holding a table entry and one dest
        // in the trash, advanced across ten days at once and a minute at a
        // time: the same timers, tables and trash at the end (the one-step
        // advance runs tick by tick while anything is held, then skips).
        let make = |held: bool| {
            let mut s = Services::default();
            let lblc = svc(&mut s, SchedKind::Lblc);
            let cfg = ServiceConfig::new(Protocol::Tcp, VIP, 81, SchedKind::Lblcr);
            let lblcr = s.add_service(&cfg).unwrap();
            let a = s.add_dest(lblc, &DestConfig::new(A, 80, 1)).unwrap();
            s.add_dest(lblcr, &DestConfig::new(B, 80, 1)).unwrap();
            if held {
                let pkt = PacketInfo { saddr: B, sport: 1, daddr: Ipv4Addr::new(8, 8, 8, 8), dport: 80, proto: 6 };
                assert_eq!(s.schedule(lblc, &pkt, 5 * S), Some(a));
                s.delete_dest(lblc, A, 80).unwrap();
            }
            (s, [lblc, lblcr], a)
        };
        for held in [false, true] {
            let ((mut fast, ids, a), (mut slow, _, _)) = (make(held), make(held));
            let end = (10 * 86_400 + 17) * S + 3;
            fast.advance(end);
            for t in (0..end).step_by(60_000).chain([end]) {
                slow.advance(t);
            }
            for id in ids {
                assert_eq!(gc(&fast, id), gc(&slow, id), "held {held}");
            }
            assert_eq!(fast.try_dest(a).is_some(), slow.try_dest(a).is_some(), "held {held}");
            // The trashed dest outlives its lblc entry (a day), then the
            // trash period, and is freed.
            assert!(fast.try_dest(a).is_some() != held, "held {held}: dest in use or freed");
            assert_eq!(fast.next_timer, slow.next_timer, "held {held}");
        }
    }

    #[test]
    fn management_errors() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let cfg = ServiceConfig::new(Protocol::Tcp, VIP, 80, SchedKind::Rr);
        assert_eq!(s.add_service(&cfg), Err(IpvsError::ServiceExists));
        let missing = ServiceConfig::new(Protocol::Tcp, VIP, 81, SchedKind::Rr);
        assert_eq!(s.edit_service(&missing), Err(IpvsError::NoSuchService));
        assert_eq!(s.delete_service(&missing.key), Err(IpvsError::NoSuchService));
        s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        assert_eq!(s.add_dest(id, &DestConfig::new(A, 80, 3)), Err(IpvsError::DestExists));
        assert_eq!(s.edit_dest(id, &DestConfig::new(B, 80, 1)), Err(IpvsError::NoSuchDest));
        assert_eq!(s.delete_dest(id, B, 80), Err(IpvsError::NoSuchDest));
        let big = DestConfig::new(B, 80, i32::MAX as u32 + 1);
        assert_eq!(s.add_dest(id, &big), Err(IpvsError::WeightRange));
        assert!(s.add_dest(id, &DestConfig::new(B, 80, i32::MAX as u32)).is_ok());
        let lu = DestConfig { u_threshold: 2, l_threshold: 3, ..DestConfig::new(C, 80, 1) };
        assert_eq!(s.add_dest(id, &lu), Err(IpvsError::ThresholdRange));
        let huge = DestConfig { u_threshold: u32::MAX, ..DestConfig::new(C, 80, 1) };
        assert_eq!(s.add_dest(id, &huge), Err(IpvsError::ThresholdTooLarge));
        assert_eq!(s.add_dest(ServiceId(99), &DestConfig::new(C, 80, 1)), Err(IpvsError::NoSuchService));
        assert_eq!(order(&s, id), [B, A], "failed operations change nothing");
        assert_eq!("sed".parse::<SchedKind>().unwrap_err().to_string(), "Scheduler not found: sed");
        assert_eq!("lblcr".parse::<SchedKind>(), Ok(SchedKind::Lblcr));
    }

    #[test]
    fn service_lookup_port_zero_fallback() {
        let mut s = Services::default();
        let exact = svc(&mut s, SchedKind::Wlc);
        let any = ServiceConfig { persistent: Some(360), ..ServiceConfig::new(Protocol::Tcp, VIP, 0, SchedKind::Rr) };
        let any = s.add_service(&any).unwrap();
        assert_eq!(s.lookup_service(Protocol::Tcp, VIP, 80), Some(exact));
        assert_eq!(s.lookup_service(Protocol::Tcp, VIP, 443), Some(any));
        assert_eq!(s.lookup_service(Protocol::Udp, VIP, 80), None);
        assert_eq!(s.lookup_service(Protocol::Tcp, A, 80), None);
        s.delete_service(&ServiceKey { proto: Protocol::Tcp, addr: VIP, port: 80 }).unwrap();
        assert_eq!(s.lookup_service(Protocol::Tcp, VIP, 80), Some(any));
    }

    #[test]
    fn edit_service_keeps_or_rebinds_scheduler() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Rr);
        for a in [A, B, C] {
            s.add_dest(id, &DestConfig::new(a, 80, 1)).unwrap();
        }
        let pkt = PacketInfo { saddr: A, sport: 1, daddr: VIP, dport: 80, proto: 6 };
        let pick = |s: &mut Services| {
            let d = s.schedule(id, &pkt, 0).unwrap();
            s.dest(d).addr
        };
        assert_eq!(pick(&mut s), C);
        let cfg = ServiceConfig { persistent: Some(60), ..ServiceConfig::new(Protocol::Tcp, VIP, 80, SchedKind::Rr) };
        s.edit_service(&cfg).unwrap();
        assert_eq!(s.service(id).unwrap().persistent, Some(60));
        assert_eq!(pick(&mut s), B, "same scheduler: cursor kept");
        s.edit_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, SchedKind::Wrr)).unwrap();
        s.edit_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, SchedKind::Rr)).unwrap();
        assert_eq!(s.service(id).unwrap().persistent, None, "-E sends the whole definition");
        assert_eq!(pick(&mut s), C, "rebound: cursor back at the head");
    }

    #[test]
    fn stats_and_zero() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let other = s.add_service(&ServiceConfig::new(Protocol::Udp, VIP, 53, SchedKind::Rr)).unwrap();
        let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        let b = s.add_dest(other, &DestConfig::new(B, 53, 1)).unwrap();
        s.count_conn(a);
        s.count_in(a, 60);
        s.count_out(a, 40);
        s.count_conn(b);
        s.conn_bound(a);
        let want = Stats { conns: 1, inpkts: 1, outpkts: 1, inbytes: 60, outbytes: 40 };
        assert_eq!(s.dest(a).stats, want);
        assert_eq!(s.service(id).unwrap().stats, want);
        assert_eq!(s.total_stats().conns, 2);
        s.zero(Some(id)).unwrap();
        assert_eq!(s.dest(a).stats, Stats::default());
        assert_eq!(s.service(id).unwrap().stats, Stats::default());
        assert_eq!(s.dest(b).stats.conns, 1);
        assert_eq!(s.total_stats().conns, 2, "zeroing one service keeps the totals");
        assert_eq!(s.dest(a).inactconns, 1, "connection counts are not counters");
        s.zero(None).unwrap();
        assert_eq!((s.dest(b).stats.conns, s.total_stats().conns), (0, 0));
        assert_eq!(s.zero(Some(ServiceId(42))), Err(IpvsError::NoSuchService));
    }

    /// The kernel counts a packet only while its conn's dest is available
    /// (`ip_vs_in_stats()`/`ip_vs_out_stats()`): NAT replies of a conn
    /// whose real server was deleted are forwarded but counted nowhere, so
    /// neither the service's `-Ln --stats` row nor the totals move, and a
    /// dest revived from the trash has not counted them either.
    #[test]
    fn packets_of_a_deleted_dest_count_nowhere() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wlc);
        let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        s.count_conn(a);
        s.count_in(a, 60);
        s.count_out(a, 40);
        s.conn_bound(a);
        let before = Stats { conns: 1, inpkts: 1, outpkts: 1, inbytes: 60, outbytes: 40 };
        s.delete_dest(id, A, 80).unwrap();
        s.count_out(a, 40);
        s.count_in(a, 60);
        assert_eq!(s.dest(a).stats, before);
        assert_eq!(s.service(id).unwrap().stats, before);
        assert_eq!(*s.total_stats(), before);
        let revived = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        assert_eq!(revived, a);
        s.count_out(a, 40);
        assert_eq!(s.dest(a).stats.outpkts, 2, "counted again once available");
        assert_eq!(s.service(id).unwrap().stats.outpkts, 2);
    }

    #[test]
    fn delete_and_clear_services() {
        let mut s = Services::default();
        let id = svc(&mut s, SchedKind::Wrr);
        let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
        let b = s.add_dest(id, &DestConfig::new(B, 80, 1)).unwrap();
        let u = s.add_service(&ServiceConfig::new(Protocol::Udp, VIP, 53, SchedKind::Sh)).unwrap();
        s.add_dest(u, &DestConfig::new(C, 53, 1)).unwrap();
        s.delete_service(&ServiceKey { proto: Protocol::Tcp, addr: VIP, port: 80 }).unwrap();
        assert_eq!(s.trash(), [a, b], "unlinked from the head: B first, so A is newest in the trash");
        assert!(!s.dest(a).available && !s.dest(b).available);
        s.clear();
        assert_eq!(s.services().count(), 0);
        assert_eq!(s.trash().len(), 3);
        s.advance(180 * S);
        assert!(s.dest_arena().is_empty());
    }

    /// The pick through the packed array, checked against the same
    /// scheduler reading the dests directly (a view without packed array).
    fn packed_pick(s: &mut Services, id: ServiceId) -> Option<Ipv4Addr> {
        let kind = s.service(id).unwrap().scheduler();
        let pkt = PacketInfo { saddr: A, sport: 1, daddr: VIP, dport: 80, proto: 6 };
        let fast = s.schedule(id, &pkt, 0);
        assert!(s.packed_in_sync(), "packed array in sync");
        let config = s.config();
        let view = SvcView::new(s.service(id).unwrap().dests(), s.dest_arena(), &config, 0);
        let slow = match kind {
            SchedKind::Lc => crate::ipvs::sched::lc::schedule(view),
            _ => crate::ipvs::sched::wlc::schedule(view),
        };
        assert_eq!(fast, slow, "packed and direct walks agree");
        fast.map(|d| s.dest(d).addr)
    }

    #[test]
    fn packed_array_follows_every_change() {
        for kind in [SchedKind::Wlc, SchedKind::Lc] {
            let mut s = Services::default();
            let id = svc(&mut s, kind);
            let a = s.add_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
            let b = s.add_dest(id, &DestConfig::new(B, 80, 1)).unwrap();
            let c = s.add_dest(id, &DestConfig::new(C, 80, 2)).unwrap();
            // List order C, B, A; all idle: the first one.
            assert_eq!(packed_pick(&mut s, id), Some(C), "{kind}");
            // Connection counts: C gets 1 active + 1 inactive (259 current).
            s.conn_bound(c);
            s.conn_activated(c);
            s.conn_bound(c);
            assert_eq!(packed_pick(&mut s, id), Some(B), "{kind}: count change");
            // Weight edit: B quiesced.
            s.edit_dest(id, &DestConfig::new(B, 80, 0)).unwrap();
            assert_eq!(packed_pick(&mut s, id), Some(A), "{kind}: weight 0 skipped");
            // OVERLOAD flips on A's first conn (u = 1) and off when it goes.
            s.edit_dest(id, &DestConfig { u_threshold: 1, ..DestConfig::new(A, 80, 1) }).unwrap();
            s.conn_bound(a);
            assert!(s.dest(a).overload);
            assert_eq!(packed_pick(&mut s, id), Some(C), "{kind}: OVERLOAD skipped");
            s.conn_unbound(a, false);
            assert!(!s.dest(a).overload);
            assert_eq!(packed_pick(&mut s, id), Some(A), "{kind}: OVERLOAD cleared");
            // Templates neither count in the overhead nor towards u.
            s.template_bound(a);
            assert_eq!(packed_pick(&mut s, id), Some(A), "{kind}: template");
            s.template_unbound(a);
            // Activation and deactivation move counts between the two kinds.
            s.conn_bound(a);
            s.conn_activated(a);
            s.edit_dest(id, &DestConfig::new(A, 80, 1)).unwrap();
            s.conn_deactivated(c);
            assert_eq!((s.dest(c).activeconns, s.dest(c).inactconns), (0, 2));
            // C: 2/2 = 1 per weight against A's 257 (wlc); lc: 2 < 257.
            assert_eq!(packed_pick(&mut s, id), Some(C), "{kind}: deactivated");
            // Delete C (its slot goes), re-add it at the front with its counts.
            s.delete_dest(id, C, 80).unwrap();
            assert_eq!(packed_pick(&mut s, id), Some(A), "{kind}: deleted");
            s.conn_unbound(c, false); // a trashed dest's count changes too
            assert_eq!(s.add_dest(id, &DestConfig::new(C, 80, 2)).unwrap(), c);
            assert_eq!(packed_pick(&mut s, id), Some(C), "{kind}: revived with one inactive conn");
            // Direct mutation, then the formula: classic makes 256 a + i.
            s.dest_mut(b).weight = 3;
            s.dest_mut(c).inactconns = 600;
            s.conn_bound(b);
            assert_eq!(packed_pick(&mut s, id), Some(B), "{kind}: dest_mut");
            s.conn_bound(b);
            s.conn_bound(b);
            s.conn_bound(b);
            let near = |s: &mut Services, mode| {
                s.set_config(IpvsConfig { overhead: mode, ..s.config() });
                packed_pick(s, id)
            };
            // wlc: B 4/3 vs A 257 (current) / 256 (classic): B either way;
            // lc: B 4 vs A 257/256 vs C 600: B.
            assert_eq!(near(&mut s, Overhead::Classic), Some(B), "{kind}");
            // Overheads past 32 bits take the 128-bit walk.
            s.dest_mut(b).activeconns = 0x0100_0000;
            s.dest_mut(a).inactconns = u32::MAX;
            let _ = near(&mut s, Overhead::Current);
            let _ = near(&mut s, Overhead::Classic);
            // Deleting the whole service empties the slots.
            s.delete_service(&ServiceKey { proto: Protocol::Tcp, addr: VIP, port: 80 }).unwrap();
            assert!(s.packed_in_sync());
            s.conn_unbound(a, true);
        }
    }

    #[test]
    fn v27_persistence_netmask() {
        let mut s = Services::default();
        let cfg = ServiceConfig {
            persistent: Some(DEFAULT_PERSISTENT_TIMEOUT),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            ..ServiceConfig::new(Protocol::Tcp, VIP, 443, SchedKind::Wlc)
        };
        let id = s.add_service(&cfg).unwrap();
        let svc = s.service(id).unwrap();
        assert_eq!(svc.persistence_net(Ipv4Addr::new(203, 0, 113, 7)), Ipv4Addr::new(203, 0, 113, 0));
        assert_eq!(svc.persistent, Some(360));
    }

    /// The virtual-address filter knows every service's address, through
    /// adds, deletes (a shared address stays) and clears; in the test's
    /// addresses nothing else reads as virtual.
    #[test]
    fn virtual_address_filter_follows_the_services() {
        let mut s = Services::default();
        let other = Ipv4Addr::new(198, 51, 100, 11);
        let maybe = |s: &Services, a: Ipv4Addr| s.may_be_virtual(u32::from(a));
        assert!(!maybe(&s, VIP));
        s.add_service(&ServiceConfig::new(Protocol::Tcp, VIP, 80, SchedKind::Rr)).unwrap();
        s.add_service(&ServiceConfig::new(Protocol::Udp, VIP, 53, SchedKind::Rr)).unwrap();
        s.add_service(&ServiceConfig::new(Protocol::Tcp, other, 80, SchedKind::Rr)).unwrap();
        assert!(maybe(&s, VIP) && maybe(&s, other));
        assert!(![A, B, C, Ipv4Addr::new(100, 64, 0, 7)].iter().any(|&a| maybe(&s, a)));
        s.delete_service(&ServiceKey { proto: Protocol::Tcp, addr: VIP, port: 80 }).unwrap();
        assert!(maybe(&s, VIP), "the UDP service keeps the address");
        s.delete_service(&ServiceKey { proto: Protocol::Tcp, addr: other, port: 80 }).unwrap();
        assert!(maybe(&s, VIP) && !maybe(&s, other));
        s.clear();
        assert!(!maybe(&s, VIP));
    }
}
