//! The director's own configuration: its interfaces, neighbours, routes,
//! IPVS sysctls and connection timeouts.
//!
//! These lines share `lb.conf` with ipvsadm command lines. They start with
//! a keyword, never with `-`, so the two kinds cannot be confused:
//!
//! ```text
//! # port NUMBER [name NAME] mac MAC [addr A.B.C.D/LEN]... [mtu BYTES]
//! port 0 name eth0 mac 02:00:00:00:00:01 addr 192.0.2.1/24 mtu 1500
//! port 1 name eth1 mac 02:00:00:00:01:01 addr 10.1.1.1/24 addr 10.1.2.1/24
//!
//! # neigh IP mac MAC [port PORT]     (PORT: a number or a port name)
//! neigh 192.0.2.254 mac 02:00:00:00:00:fe port 0
//! neigh 10.1.1.21 mac 02:00:00:00:01:21          # port of the connected subnet
//!
//! # route PREFIX/LEN|default [via GATEWAY] [port PORT]   (at least one of the two)
//! route default via 192.0.2.254                  # port of the gateway's subnet
//! route 10.2.0.0/16 via 10.1.1.254 port eth1
//! route 10.3.0.0/16 port 1                       # on-link: the destination is its own next hop
//!
//! # sysctl NAME VALUE  or  sysctl NAME=VALUE   (NAME with or without net.ipv4.vs.)
//! sysctl expire_nodest_conn 1
//! sysctl net.ipv4.vs.expire_quiescent_template=1
//!
//! # overhead current|classic   (the lc/wlc/lblc/lblcr formula, spec 1.2)
//! overhead classic
//! ```
//!
//! # Semantics
//! - **The network is declared as a whole.** If a file has any `port`,
//!   `neigh` or `route` line, those lines together replace the director's
//!   whole [`NetConfig`]; a file without any leaves it untouched (so a file
//!   of ipvsadm lines can be applied to a running director). Hence every
//!   check below, including the ones across lines, is made when the file is
//!   parsed, and every error has the line it belongs to.
//! - `sysctl` and `overhead` lines change single settings, in order, like
//!   writes to `/proc/sys/net/ipv4/vs/*`; `ipvsadm --set` changes
//!   [`Timeouts`]. A value whose behaviour p4lite does not have is refused
//!   like a bad value, never stored and ignored: `pmtu_disc` 0,
//!   `cache_bypass`, `nat_icmp_send` or `schedule_icmp` 1, `drop_entry` or
//!   `drop_packet` 3, `sync_refresh_period` other than 0, `sync_ports`
//!   other than 1, `backup_only` 1. `sync_threshold` takes two values
//!   (`sysctl sync_threshold 3 50`). `secure_tcp` 3 is modelled; its
//!   automatic modes 1 and 2, like those of `drop_entry` and `drop_packet`,
//!   act only when the host is short of memory, which p4lite never is.
//! - Ports are 0..=511 (the width of `egress_spec`). Names are 1..15
//!   characters (`IFNAMSIZ − 1`) of letters, digits, `.`, `_`, `-`, not all
//!   digits, unique. MACs are unicast and non-zero. Each port may carry
//!   several IPv4 addresses (`addr` may repeat); an address is unique across
//!   ports, and its subnet is directly connected to the port.
//! - A connected subnet acts as an on-link route of its port. Routes are
//!   matched by longest prefix; explicit routes win over a connected subnet
//!   of the same length. A route's prefix has no host bits set; a gateway
//!   must lie in a connected subnet of the route's port (Linux's "Nexthop
//!   has invalid gateway"), and without `port` the route takes that port.
//! - A neighbour without `port` takes the port of its connected subnet.
//! - Only IPv4, like the service model.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use crate::ipvs::conn::SyncPolicy;
use crate::ipvs::service::Overhead;
use crate::ipvs::sync::msg::Version;
use crate::ipvs::sync::SyncSysctls;

/// Largest port number (`egress_spec` is `bit<9>`).
pub const MAX_PORT: u16 = 511;
/// Default MTU of a port.
pub const DEFAULT_MTU: u16 = 1500;
/// Smallest MTU IPv4 allows (RFC 791).
pub const MIN_MTU: u16 = 68;

/// An Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// As a 48-bit number (the form the pipeline's `bit<48>` fields use).
    pub fn to_u64(self) -> u64 {
        self.0.iter().fold(0, |acc, &b| acc << 8 | u64::from(b))
    }

    /// Parses `xx:xx:xx:xx:xx:xx` (one or two hex digits per byte).
    pub fn parse(s: &str) -> Option<Mac> {
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next()?;
            if p.is_empty() || p.len() > 2 {
                return None;
            }
            *byte = u8::from_str_radix(p, 16).ok()?;
        }
        parts.next().is_none().then_some(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// An IPv4 prefix `addr/len` (host bits may be set for interface addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    /// The address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub len: u8,
}

impl Prefix {
    /// The netmask of the prefix length.
    pub fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// True if `ip` is inside the prefix.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        (u32::from(ip) ^ u32::from(self.addr)) & self.mask() == 0
    }

    /// Parses `A.B.C.D/LEN`.
    pub fn parse(s: &str) -> Option<Prefix> {
        let (a, l) = s.split_once('/')?;
        let len: u8 = l.parse().ok().filter(|&n| n <= 32)?;
        if !l.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Prefix { addr: a.parse().ok()?, len })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One switch port as the director's network interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Switch port number.
    pub number: u16,
    /// Interface name (`port<N>` if not given).
    pub name: String,
    /// The port's own MAC address (source of frames it sends).
    pub mac: Mac,
    /// Its IPv4 addresses, each with its connected subnet, in file order.
    pub addrs: Vec<Prefix>,
    /// Largest IP packet it sends.
    pub mtu: u16,
}

/// A static neighbour (ARP) entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// The neighbour's IPv4 address.
    pub ip: Ipv4Addr,
    /// Its MAC address.
    pub mac: Mac,
    /// The port it is reached through.
    pub port: u16,
}

/// A static route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// Destination prefix (host bits clear).
    pub prefix: Prefix,
    /// Gateway, or `None` for an on-link route.
    pub via: Option<Ipv4Addr>,
    /// Output port.
    pub port: u16,
}

/// The result of a route lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Output port.
    pub port: u16,
    /// The address whose MAC the frame goes to (gateway, or the
    /// destination itself when on-link).
    pub ip: Ipv4Addr,
}

/// The director's network: ports, neighbours, routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetConfig {
    /// Ports by number.
    pub ports: BTreeMap<u16, PortConfig>,
    /// Static neighbours by address.
    pub neighbours: BTreeMap<Ipv4Addr, Neighbour>,
    /// Static routes in file order.
    pub routes: Vec<Route>,
}

impl NetConfig {
    /// The port called `name`.
    pub fn port_by_name(&self, name: &str) -> Option<&PortConfig> {
        self.ports.values().find(|p| p.name == name)
    }

    /// True if `ip` is one of the director's own addresses.
    pub fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.ports.values().any(|p| p.addrs.iter().any(|a| a.addr == ip))
    }

    /// The port whose connected subnet contains `ip` (longest prefix; the
    /// lowest port number on a tie).
    pub fn connected_port(&self, ip: Ipv4Addr) -> Option<u16> {
        self.ports
            .values()
            .flat_map(|p| p.addrs.iter().map(move |a| (a, p.number)))
            .filter(|(a, _)| a.contains(ip))
            .max_by(|(a, pa), (b, pb)| a.len.cmp(&b.len).then(pb.cmp(pa)))
            .map(|(_, port)| port)
    }

    /// Longest-prefix route lookup over the static routes and the
    /// connected subnets (a static route wins a tie).
    pub fn route(&self, dst: Ipv4Addr) -> Option<NextHop> {
        let best_static =
            self.routes.iter().filter(|r| r.prefix.contains(dst)).fold(None::<&Route>, |best, r| match best {
                Some(b) if b.prefix.len >= r.prefix.len => Some(b),
                _ => Some(r),
            });
        let connected = self.ports.values().flat_map(|p| p.addrs.iter().map(move |a| (*a, p.number))).fold(
            None::<(Prefix, u16)>,
            |best, (a, port)| match best {
                _ if !a.contains(dst) => best,
                Some((b, _)) if b.len >= a.len => best,
                _ => Some((a, port)),
            },
        );
        match (best_static, connected) {
            (Some(r), Some((c, _))) if r.prefix.len >= c.len => {
                Some(NextHop { port: r.port, ip: r.via.unwrap_or(dst) })
            }
            (_, Some((_, port))) => Some(NextHop { port, ip: dst }),
            (Some(r), None) => Some(NextHop { port: r.port, ip: r.via.unwrap_or(dst) }),
            (None, None) => None,
        }
    }

    /// The static neighbour entry of `ip`.
    pub fn neighbour(&self, ip: Ipv4Addr) -> Option<&Neighbour> {
        self.neighbours.get(&ip)
    }
}

/// The IPVS sysctls of spec 2.9 that matter to the data path
/// (`net.ipv4.vs.*`), with the kernel's defaults. `lblc_expiration`,
/// `lblcr_expiration` and the overhead formula live in the service model's
/// [`crate::ipvs::service::IpvsConfig`] instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sysctls {
    /// Expire conns of a deleted dest on their next packet (2.8).
    pub expire_nodest_conn: bool,
    /// Templates of a weight-0 dest are invalid (2.6, 2.8).
    pub expire_quiescent_template: bool,
    /// Schedule on any non-RST TCP packet, not only SYN.
    pub sloppy_tcp: bool,
    /// Connection reuse bitmask (2.7).
    pub conn_reuse_mode: u32,
    /// Bypass to the original destination when no dest is available (1.12).
    pub cache_bypass: bool,
    /// Send FRAG_NEEDED for DF packets over the MTU (3.4).
    pub pmtu_disc: bool,
    /// Re-route NAT replies as locally originated.
    pub snat_reroute: bool,
    /// NAT: ICMP port unreachable to real servers sending packets without a conn.
    pub nat_icmp_send: bool,
    /// Let ICMP errors create conns.
    pub schedule_icmp: bool,
    /// DoS defence mode 0..=3.
    pub secure_tcp: u8,
    /// DoS defence mode 0..=3.
    pub drop_entry: u8,
    /// DoS defence mode 0..=3.
    pub drop_packet: u8,
    /// DoS defence memory threshold (pages).
    pub amemthresh: u32,
    /// DoS defence drop rate.
    pub am_droprate: u32,
    /// Keep netfilter conntrack entries.
    pub conntrack: bool,
    /// `sync_version`, `sync_threshold`, `sync_persist_mode`.
    pub sync: SyncSysctls,
}

impl Default for Sysctls {
    fn default() -> Sysctls {
        Sysctls {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            sloppy_tcp: false,
            conn_reuse_mode: 1,
            cache_bypass: false,
            pmtu_disc: true,
            snat_reroute: true,
            nat_icmp_send: false,
            schedule_icmp: false,
            secure_tcp: 0,
            drop_entry: 0,
            drop_packet: 0,
            amemthresh: 1024,
            am_droprate: 10,
            conntrack: false,
            sync: SyncSysctls::default(),
        }
    }
}

/// Connection timeouts that `ipvsadm --set tcp tcpfin udp` changes
/// (seconds; spec 2.3 and 2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// ESTABLISHED.
    pub tcp: u32,
    /// FIN_WAIT.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { tcp: 900, tcp_fin: 120, udp: 300 }
    }
}

/// One sysctl write, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysctlSet {
    /// A setting of [`Sysctls`].
    Ipvs(SysctlField, u32),
    /// `lblc_expiration` (seconds).
    LblcExpiration(u64),
    /// `lblcr_expiration` (seconds).
    LblcrExpiration(u64),
    /// `sync_threshold THRESHOLD PERIOD`.
    SyncThreshold(u8, u8),
    /// `sync_version` 0 or 1.
    SyncVersion(Version),
    /// `sync_persist_mode`.
    SyncPersistMode(bool),
    /// A sync sysctl whose accepted values change nothing in p4lite
    /// (`sync_qlen_max`, `sync_sock_size`, `sync_retries`, and the values
    /// p4lite has of `sync_refresh_period`, `sync_ports`, `backup_only`).
    NoEffect,
}

/// The settings of [`Sysctls`], by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SysctlField {
    /// `expire_nodest_conn`.
    ExpireNodestConn,
    /// `expire_quiescent_template`.
    ExpireQuiescentTemplate,
    /// `sloppy_tcp`.
    SloppyTcp,
    /// `conn_reuse_mode`.
    ConnReuseMode,
    /// `cache_bypass`.
    CacheBypass,
    /// `pmtu_disc`.
    PmtuDisc,
    /// `snat_reroute`.
    SnatReroute,
    /// `nat_icmp_send`.
    NatIcmpSend,
    /// `schedule_icmp`.
    ScheduleIcmp,
    /// `secure_tcp`.
    SecureTcp,
    /// `drop_entry`.
    DropEntry,
    /// `drop_packet`.
    DropPacket,
    /// `amemthresh`.
    Amemthresh,
    /// `am_droprate`.
    AmDroprate,
    /// `conntrack`.
    Conntrack,
}

/// How the value of a sysctl is checked.
#[derive(Clone, Copy)]
enum Range {
    Bool,
    Upto(u32),
    Any,
}

const SYSCTLS: &[(&str, SysctlField, Range)] = &[
    ("expire_nodest_conn", SysctlField::ExpireNodestConn, Range::Bool),
    ("expire_quiescent_template", SysctlField::ExpireQuiescentTemplate, Range::Bool),
    ("sloppy_tcp", SysctlField::SloppyTcp, Range::Bool),
    ("conn_reuse_mode", SysctlField::ConnReuseMode, Range::Any),
    ("cache_bypass", SysctlField::CacheBypass, Range::Bool),
    ("pmtu_disc", SysctlField::PmtuDisc, Range::Bool),
    ("snat_reroute", SysctlField::SnatReroute, Range::Bool),
    ("nat_icmp_send", SysctlField::NatIcmpSend, Range::Bool),
    ("schedule_icmp", SysctlField::ScheduleIcmp, Range::Bool),
    ("secure_tcp", SysctlField::SecureTcp, Range::Upto(3)),
    ("drop_entry", SysctlField::DropEntry, Range::Upto(3)),
    ("drop_packet", SysctlField::DropPacket, Range::Upto(3)),
    ("amemthresh", SysctlField::Amemthresh, Range::Any),
    ("am_droprate", SysctlField::AmDroprate, Range::Any),
    ("conntrack", SysctlField::Conntrack, Range::Bool),
];

/// The sysctls of the sync daemons (section 5), besides `sync_threshold`
/// (two values): what each accepts, or why it refuses a value.
const SYNC_SYSCTLS: &[(&str, Range)] = &[
    ("sync_version", Range::Bool),
    ("sync_persist_mode", Range::Bool),
    // p4lite sends a message when it is complete: its queue never grows.
    ("sync_qlen_max", Range::Any),
    // There is no socket.
    ("sync_sock_size", Range::Any),
    // Acts only with a refresh period, which p4lite does not have.
    ("sync_retries", Range::Upto(3)),
    ("sync_refresh_period", Range::Any),
    ("sync_ports", Range::Any),
    ("backup_only", Range::Bool),
];

impl Sysctls {
    /// Applies one checked write.
    pub fn set(&mut self, field: SysctlField, v: u32) {
        let b = v != 0;
        // Ranges were checked when parsed; the u8 fields are 0..=3.
        let small = v.min(3) as u8;
        match field {
            SysctlField::ExpireNodestConn => self.expire_nodest_conn = b,
            SysctlField::ExpireQuiescentTemplate => self.expire_quiescent_template = b,
            SysctlField::SloppyTcp => self.sloppy_tcp = b,
            SysctlField::ConnReuseMode => self.conn_reuse_mode = v,
            SysctlField::CacheBypass => self.cache_bypass = b,
            SysctlField::PmtuDisc => self.pmtu_disc = b,
            SysctlField::SnatReroute => self.snat_reroute = b,
            SysctlField::NatIcmpSend => self.nat_icmp_send = b,
            SysctlField::ScheduleIcmp => self.schedule_icmp = b,
            SysctlField::SecureTcp => self.secure_tcp = small,
            SysctlField::DropEntry => self.drop_entry = small,
            SysctlField::DropPacket => self.drop_packet = small,
            SysctlField::Amemthresh => self.amemthresh = v,
            SysctlField::AmDroprate => self.am_droprate = v,
            SysctlField::Conntrack => self.conntrack = b,
        }
    }
}

/// One parsed keyword line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigLine {
    /// `port ...`
    Port(PortConfig),
    /// `neigh ...` (port resolved when the whole network is built).
    Neigh { ip: Ipv4Addr, mac: Mac, port: Option<PortRef> },
    /// `route ...` (port resolved when the whole network is built).
    Route { prefix: Prefix, via: Option<Ipv4Addr>, port: Option<PortRef> },
    /// `sysctl ...`
    Sysctl(SysctlSet),
    /// `overhead current|classic`
    Overhead(Overhead),
}

/// A port named in a `neigh` or `route` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortRef {
    /// By number.
    Number(u16),
    /// By name.
    Name(String),
}

impl fmt::Display for PortRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}

/// The keywords this module handles (for the "unknown keyword" message).
pub const KEYWORDS: [&str; 5] = ["port", "neigh", "route", "sysctl", "overhead"];

/// Parses one keyword line (`words[0]` is the keyword). `None` if the
/// keyword is not one of [`KEYWORDS`].
pub fn parse_config_line(words: &[&str]) -> Option<Result<ConfigLine, String>> {
    let (&kw, rest) = words.split_first()?;
    Some(match kw {
        "port" => parse_port(rest).map(ConfigLine::Port),
        "neigh" => parse_neigh(rest),
        "route" => parse_route(rest),
        "sysctl" => parse_sysctl(rest).map(ConfigLine::Sysctl),
        "overhead" => match rest {
            ["current"] => Ok(ConfigLine::Overhead(Overhead::Current)),
            ["classic"] => Ok(ConfigLine::Overhead(Overhead::Classic)),
            _ => Err("usage: overhead current|classic".to_string()),
        },
        _ => return None,
    })
}

/// Splits `key value key value ...` into pairs; `what` names the line kind.
fn pairs<'a>(words: &[&'a str], what: &str) -> Result<Vec<(&'a str, &'a str)>, String> {
    words
        .chunks(2)
        .map(|c| match c {
            [k, v] => Ok((*k, *v)),
            [k] => Err(format!("{what}: `{k}' needs a value")),
            _ => Err(format!("{what}: malformed line")),
        })
        .collect()
}

fn parse_port_number(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if n <= MAX_PORT && s.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("bad port number `{s}' (expected 0..{MAX_PORT})")),
    }
}

fn parse_port_ref(s: &str) -> Result<PortRef, String> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        parse_port_number(s).map(PortRef::Number)
    } else {
        check_name(s)?;
        Ok(PortRef::Name(s.to_string()))
    }
}

fn check_name(s: &str) -> Result<(), String> {
    let ok_chars = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if s.is_empty() || s.len() > 15 || !ok_chars || s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad interface name `{s}' (1 to 15 letters, digits, '.', '_' or '-', not all digits)"));
    }
    Ok(())
}

fn parse_unicast_mac(s: &str) -> Result<Mac, String> {
    let mac = Mac::parse(s).ok_or_else(|| format!("bad MAC address `{s}' (expected xx:xx:xx:xx:xx:xx)"))?;
    if mac.0[0] & 1 != 0 {
        return Err(format!("MAC address {mac} is a multicast address"));
    }
    if mac.0 == [0; 6] {
        return Err("MAC address 00:00:00:00:00:00 is not allowed".to_string());
    }
    Ok(mac)
}

fn parse_unicast_ip(s: &str, what: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s.parse().map_err(|_| format!("bad {what} `{s}' (expected an IPv4 address A.B.C.D)"))?;
    check_unicast(ip, what)?;
    Ok(ip)
}

/// Refuses what the kernel's `inet_addr_type()` calls BROADCAST (0/8,
/// 255.255.255.255) or MULTICAST.
fn check_unicast(ip: Ipv4Addr, what: &str) -> Result<(), String> {
    if ip.octets()[0] == 0 || ip.is_broadcast() || ip.is_multicast() {
        return Err(format!("{what} {ip} is not a unicast address"));
    }
    Ok(())
}

/// `port N [name NAME] mac MAC [addr A/LEN]... [mtu N]`
fn parse_port(words: &[&str]) -> Result<PortConfig, String> {
    let (&num, rest) =
        words.split_first().ok_or("usage: port NUMBER [name NAME] mac MAC [addr A.B.C.D/LEN]... [mtu N]")?;
    let number = parse_port_number(num)?;
    let (mut name, mut mac, mut mtu) = (None, None, None);
    let mut addrs = Vec::new();
    for (k, v) in pairs(rest, "port")? {
        match k {
            "name" if name.is_none() => {
                check_name(v)?;
                name = Some(v.to_string());
            }
            "mac" if mac.is_none() => mac = Some(parse_unicast_mac(v)?),
            "mtu" if mtu.is_none() => {
                mtu = Some(
                    v.parse::<u16>()
                        .ok()
                        .filter(|&m| m >= MIN_MTU)
                        .ok_or_else(|| format!("bad MTU `{v}' (expected {MIN_MTU}..65535)"))?,
                )
            }
            "addr" => {
                let p = Prefix::parse(v).ok_or_else(|| format!("bad address `{v}' (expected A.B.C.D/LEN)"))?;
                check_unicast(p.addr, "address")?;
                if p.len == 0 {
                    return Err(format!("address {p} has an empty prefix"));
                }
                if let Some(dup) = addrs.iter().find(|a: &&Prefix| a.addr == p.addr) {
                    return Err(format!("address {} given twice", dup.addr));
                }
                addrs.push(p);
            }
            "name" | "mac" | "mtu" => return Err(format!("port: `{k}' given twice")),
            _ => return Err(format!("port: unknown field `{k}' (expected name, mac, addr or mtu)")),
        }
    }
    let mac = mac.ok_or_else(|| format!("port {number}: `mac' is required"))?;
    Ok(PortConfig {
        number,
        name: name.unwrap_or_else(|| format!("port{number}")),
        mac,
        addrs,
        mtu: mtu.unwrap_or(DEFAULT_MTU),
    })
}

/// `neigh IP mac MAC [port PORT]`
fn parse_neigh(words: &[&str]) -> Result<ConfigLine, String> {
    let (&ip, rest) = words.split_first().ok_or("usage: neigh A.B.C.D mac MAC [port PORT]")?;
    let ip = parse_unicast_ip(ip, "neighbour address")?;
    let (mut mac, mut port) = (None, None);
    for (k, v) in pairs(rest, "neigh")? {
        match k {
            "mac" if mac.is_none() => mac = Some(parse_unicast_mac(v)?),
            "port" if port.is_none() => port = Some(parse_port_ref(v)?),
            "mac" | "port" => return Err(format!("neigh: `{k}' given twice")),
            _ => return Err(format!("neigh: unknown field `{k}' (expected mac or port)")),
        }
    }
    let mac = mac.ok_or_else(|| format!("neigh {ip}: `mac' is required"))?;
    Ok(ConfigLine::Neigh { ip, mac, port })
}

/// `route PREFIX|default [via GW] [port PORT]`
fn parse_route(words: &[&str]) -> Result<ConfigLine, String> {
    let (&dst, rest) = words.split_first().ok_or("usage: route A.B.C.D/LEN|default [via GATEWAY] [port PORT]")?;
    let prefix = if dst == "default" {
        Prefix { addr: Ipv4Addr::UNSPECIFIED, len: 0 }
    } else {
        Prefix::parse(dst).ok_or_else(|| format!("bad route destination `{dst}' (expected A.B.C.D/LEN or default)"))?
    };
    if prefix.network() != prefix.addr {
        return Err(format!(
            "route {prefix}: invalid prefix for its length (host bits set; did you mean {}/{}?)",
            prefix.network(),
            prefix.len
        ));
    }
    let (mut via, mut port) = (None, None);
    for (k, v) in pairs(rest, "route")? {
        match k {
            "via" if via.is_none() => via = Some(parse_unicast_ip(v, "gateway")?),
            "port" if port.is_none() => port = Some(parse_port_ref(v)?),
            "via" | "port" => return Err(format!("route: `{k}' given twice")),
            _ => return Err(format!("route: unknown field `{k}' (expected via or port)")),
        }
    }
    if via.is_none() && port.is_none() {
        return Err(format!("route {prefix}: needs `via GATEWAY', `port PORT' or both"));
    }
    Ok(ConfigLine::Route { prefix, via, port })
}

/// `sysctl NAME VALUE` or `sysctl NAME=VALUE`.
fn parse_sysctl(words: &[&str]) -> Result<SysctlSet, String> {
    let first = words.first().map_or("", |w| w.split('=').next().unwrap_or(""));
    if first.strip_prefix("net.ipv4.vs.").unwrap_or(first) == "sync_threshold" {
        return parse_sync_threshold(words);
    }
    let (name, value) = match words {
        [nv] => nv.split_once('=').ok_or("usage: sysctl NAME VALUE")?,
        [n, v] => (*n, *v),
        [n, "=", v] => (*n, *v),
        _ => return Err("usage: sysctl NAME VALUE".to_string()),
    };
    let short = name.strip_prefix("net.ipv4.vs.").unwrap_or(name);
    let number = || -> Result<u32, String> {
        value.parse::<u32>().map_err(|_| format!("sysctl {short}: bad value `{value}' (expected a number)"))
    };
    match short {
        "lblc_expiration" => return Ok(SysctlSet::LblcExpiration(number()?.into())),
        "lblcr_expiration" => return Ok(SysctlSet::LblcrExpiration(number()?.into())),
        _ => {}
    }
    if let Some(&(_, range)) = SYNC_SYSCTLS.iter().find(|(n, _)| *n == short) {
        let v = number()?;
        match range {
            Range::Bool if v > 1 => return Err(format!("sysctl {short}: value must be 0 or 1")),
            Range::Upto(max) if v > max => return Err(format!("sysctl {short}: value must be 0..{max}")),
            _ => {}
        }
        let only = match short {
            "sync_refresh_period" if v != 0 => Some("0"),
            "sync_ports" if v != 1 => Some("1"),
            "backup_only" if v != 0 => Some("0"),
            _ => None,
        };
        if let Some(only) = only {
            return Err(format!("sysctl {short} {v}: not modelled by p4lite (it accepts only {only})"));
        }
        return Ok(match short {
            "sync_version" => SysctlSet::SyncVersion(if v == 0 { Version::V0 } else { Version::V1 }),
            "sync_persist_mode" => SysctlSet::SyncPersistMode(v != 0),
            _ => SysctlSet::NoEffect,
        });
    }
    let &(_, field, range) = SYSCTLS.iter().find(|(n, _, _)| *n == short).ok_or_else(|| {
        let names: Vec<&str> = SYSCTLS.iter().map(|(n, _, _)| *n).collect();
        format!("unknown sysctl `{name}' (known: {}, lblc_expiration, lblcr_expiration)", names.join(", "))
    })?;
    let v = number()?;
    match range {
        Range::Bool if v > 1 => Err(format!("sysctl {short}: value must be 0 or 1")),
        Range::Upto(max) if v > max => Err(format!("sysctl {short}: value must be 0..{max}")),
        _ => match unmodelled(field, v) {
            Some(only) => Err(format!("sysctl {short} {v}: not modelled by p4lite (it accepts only {only})")),
            None => Ok(SysctlSet::Ipvs(field, v)),
        },
    }
}

/// `sync_threshold THRESHOLD PERIOD` (also `sync_threshold=THRESHOLD
/// PERIOD`): the kernel's check, then p4lite's one-byte count
/// ([`SyncPolicy::check`]).
fn parse_sync_threshold(words: &[&str]) -> Result<SysctlSet, String> {
    let values: Vec<&str> = match words {
        [nv, p] if nv.contains('=') => vec![nv.split_once('=').map_or("", |x| x.1), p],
        [_, t, p] => vec![t, p],
        [_, "=", t, p] => vec![t, p],
        _ => return Err("usage: sysctl sync_threshold THRESHOLD PERIOD".to_string()),
    };
    let n =
        |v: &str| v.parse::<u32>().map_err(|_| format!("sysctl sync_threshold: bad value `{v}' (expected a number)"));
    let (t, p) = SyncPolicy::check(n(values[0])?, n(values[1])?)?;
    Ok(SysctlSet::SyncThreshold(t, p))
}

/// What p4lite accepts of a sysctl whose other values it does not model,
/// if `v` is one of those: the kernel's default, or the automatic modes
/// (1, 2) of the DoS defences, which act only when the host runs low on
/// memory (never, for p4lite's fixed-size table); `None` when `v` is fine.
/// `snat_reroute` and `conntrack` take any value: the switch routes every
/// packet by its tables and has no conntrack, so neither changes anything.
fn unmodelled(field: SysctlField, v: u32) -> Option<&'static str> {
    match field {
        SysctlField::CacheBypass | SysctlField::NatIcmpSend | SysctlField::ScheduleIcmp if v != 0 => Some("0"),
        SysctlField::PmtuDisc if v != 1 => Some("1"),
        SysctlField::DropEntry | SysctlField::DropPacket if v == 3 => Some("0, 1 and 2"),
        _ => None,
    }
}

/// Builds the whole network from the `port`, `neigh` and `route` lines of
/// one file (with their line numbers), checking what spans lines. Returns
/// every error with its line.
pub fn build_net(lines: &[(usize, ConfigLine)]) -> Result<NetConfig, Vec<(usize, String)>> {
    let mut errors = Vec::new();
    let mut net = NetConfig::default();
    let mut port_line: BTreeMap<u16, usize> = BTreeMap::new();
    for (line, l) in lines {
        let ConfigLine::Port(p) = l else { continue };
        if let Some(first) = port_line.get(&p.number) {
            errors.push((*line, format!("port {} is already defined at line {first}", p.number)));
            continue;
        }
        if let Some(other) = net.port_by_name(&p.name) {
            errors.push((*line, format!("name `{}' is already used by port {}", p.name, other.number)));
            continue;
        }
        if let Some(a) = p.addrs.iter().find(|a| net.is_local(a.addr)) {
            errors.push((*line, format!("address {} is already used by another port", a.addr)));
            continue;
        }
        port_line.insert(p.number, *line);
        net.ports.insert(p.number, p.clone());
    }
    let resolve = |net: &NetConfig, r: &PortRef| -> Result<u16, String> {
        match r {
            PortRef::Number(n) if net.ports.contains_key(n) => Ok(*n),
            PortRef::Name(s) => net.port_by_name(s).map(|p| p.number).ok_or_else(|| format!("unknown port `{s}'")),
            PortRef::Number(n) => Err(format!("unknown port {n} (no `port {n}' line)")),
        }
    };
    let mut neigh_line: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    let mut routes: Vec<(usize, Route)> = Vec::new();
    for (line, l) in lines {
        match l {
            ConfigLine::Neigh { ip, mac, port } => {
                if let Some(first) = neigh_line.get(ip) {
                    errors.push((*line, format!("neighbour {ip} is already defined at line {first}")));
                    continue;
                }
                let port = match port {
                    Some(r) => resolve(&net, r),
                    None => net.connected_port(*ip).ok_or_else(|| {
                        format!("neighbour {ip}: no `port' given and no port has an address in its subnet")
                    }),
                };
                match port {
                    Ok(port) => {
                        neigh_line.insert(*ip, *line);
                        net.neighbours.insert(*ip, Neighbour { ip: *ip, mac: *mac, port });
                    }
                    Err(e) => errors.push((*line, e)),
                }
            }
            ConfigLine::Route { prefix, via, port } => {
                if let Some((first, _)) = routes.iter().find(|(_, r)| r.prefix == *prefix) {
                    errors.push((*line, format!("route {prefix} is already defined at line {first}")));
                    continue;
                }
                let port = match (port, via) {
                    (Some(r), _) => resolve(&net, r),
                    (None, Some(gw)) => net.connected_port(*gw).ok_or_else(|| {
                        format!("route {prefix}: gateway {gw} is not in a connected subnet of any port")
                    }),
                    (None, None) => Err(format!("route {prefix}: needs `via GATEWAY', `port PORT' or both")),
                };
                let port = match port {
                    Ok(p) => p,
                    Err(e) => {
                        errors.push((*line, e));
                        continue;
                    }
                };
                if let Some(gw) = via {
                    let on_port = net.ports.get(&port).is_some_and(|p| p.addrs.iter().any(|a| a.contains(*gw)));
                    if !on_port {
                        errors.push((
                            *line,
                            format!(
                                "route {prefix}: Nexthop has invalid gateway ({gw} is not in a subnet of port {port})"
                            ),
                        ));
                        continue;
                    }
                }
                routes.push((*line, Route { prefix: *prefix, via: *via, port }));
            }
            _ => {}
        }
    }
    net.routes = routes.into_iter().map(|(_, r)| r).collect();
    if errors.is_empty() {
        Ok(net)
    } else {
        errors.sort_by_key(|(l, _)| *l);
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Result<ConfigLine, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        parse_config_line(&words).expect("a keyword line")
    }

    fn net(text: &str) -> Result<NetConfig, Vec<(usize, String)>> {
        let lines: Vec<(usize, ConfigLine)> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| (i + 1, line(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1))))
            .collect();
        build_net(&lines)
    }

    const NET: &str = "\
port 0 name eth0 mac 02:00:00:00:00:01 addr 192.0.2.1/24 mtu 1500
port 1 name eth1 mac 02:00:00:00:01:01 addr 10.1.1.1/24 addr 10.1.2.1/24 mtu 9000
neigh 192.0.2.254 mac 02:00:00:00:00:fe port 0
neigh 10.1.1.21 mac 02:00:00:00:01:21
neigh 10.1.2.5 mac 2:0:0:0:2:5 port eth1
route default via 192.0.2.254
route 10.2.0.0/16 via 10.1.1.254 port eth1
route 10.3.0.0/16 port 1
";

    #[test]
    fn full_network() {
        let n = net(NET).unwrap();
        let eth1 = &n.ports[&1];
        assert_eq!(eth1.name, "eth1");
        assert_eq!(eth1.mac, Mac([2, 0, 0, 0, 1, 1]));
        assert_eq!(eth1.mtu, 9000);
        assert_eq!(eth1.addrs.len(), 2);
        assert_eq!(n.port_by_name("eth0").map(|p| p.number), Some(0));
        assert_eq!(n.neighbour(Ipv4Addr::new(10, 1, 1, 21)).map(|e| e.port), Some(1));
        assert_eq!(
            n.neighbour(Ipv4Addr::new(10, 1, 2, 5)).map(|e| (e.port, e.mac)),
            Some((1, Mac([2, 0, 0, 0, 2, 5])))
        );
        assert_eq!(
            n.routes[0],
            Route {
                prefix: Prefix { addr: Ipv4Addr::UNSPECIFIED, len: 0 },
                via: Some(Ipv4Addr::new(192, 0, 2, 254)),
                port: 0
            }
        );
        assert!(n.is_local(Ipv4Addr::new(10, 1, 2, 1)));
        assert!(!n.is_local(Ipv4Addr::new(10, 1, 2, 2)));
        let hop = |ip: [u8; 4]| n.route(Ipv4Addr::from(ip)).map(|h| (h.port, h.ip.octets()));
        assert_eq!(hop([203, 0, 113, 7]), Some((0, [192, 0, 2, 254])));
        assert_eq!(hop([10, 1, 1, 21]), Some((1, [10, 1, 1, 21])));
        assert_eq!(hop([10, 2, 3, 4]), Some((1, [10, 1, 1, 254])));
        assert_eq!(hop([10, 3, 0, 9]), Some((1, [10, 3, 0, 9])));
        assert_eq!(hop([192, 0, 2, 77]), Some((0, [192, 0, 2, 77])));
        assert_eq!(net("port 0 mac 02:00:00:00:00:01").unwrap().route(Ipv4Addr::new(1, 2, 3, 4)), None);
    }

    #[test]
    fn defaults() {
        let n = net("port 3 mac 02:00:00:00:00:03").unwrap();
        assert_eq!(
            n.ports[&3],
            PortConfig { number: 3, name: "port3".into(), mac: Mac([2, 0, 0, 0, 0, 3]), addrs: vec![], mtu: 1500 }
        );
    }

    #[test]
    fn line_errors() {
        let e = |s: &str| line(s).unwrap_err();
        assert_eq!(e("port 512 mac 02:00:00:00:00:01"), "bad port number `512' (expected 0..511)");
        assert_eq!(e("port x mac 02:00:00:00:00:01"), "bad port number `x' (expected 0..511)");
        assert_eq!(e("port 0 name eth0"), "port 0: `mac' is required");
        assert_eq!(e("port 0 mac 01:00:5e:00:00:01"), "MAC address 01:00:5e:00:00:01 is a multicast address");
        assert_eq!(e("port 0 mac 02:00:00:00:01"), "bad MAC address `02:00:00:00:01' (expected xx:xx:xx:xx:xx:xx)");
        assert_eq!(e("port 0 mac 00:00:00:00:00:00"), "MAC address 00:00:00:00:00:00 is not allowed");
        assert_eq!(e("port 0 mac 02:00:00:00:00:01 mtu 40"), "bad MTU `40' (expected 68..65535)");
        assert_eq!(e("port 0 mac 02:00:00:00:00:01 addr 10.0.0.1"), "bad address `10.0.0.1' (expected A.B.C.D/LEN)");
        assert_eq!(
            e("port 0 mac 02:00:00:00:00:01 addr 10.0.0.1/33"),
            "bad address `10.0.0.1/33' (expected A.B.C.D/LEN)"
        );
        assert_eq!(e("port 0 mac 02:00:00:00:00:01 addr 224.0.0.1/4"), "address 224.0.0.1 is not a unicast address");
        assert_eq!(
            e("port 0 mac 02:00:00:00:00:01 name 12"),
            "bad interface name `12' (1 to 15 letters, digits, '.', '_' or '-', not all digits)"
        );
        assert_eq!(
            e("port 0 mac 02:00:00:00:00:01 speed 10G"),
            "port: unknown field `speed' (expected name, mac, addr or mtu)"
        );
        assert_eq!(e("port 0 mac 02:00:00:00:00:01 mtu"), "port: `mtu' needs a value");
        assert_eq!(e("port 0 mac 02:00:00:00:00:01 mac 02:00:00:00:00:02"), "port: `mac' given twice");
        assert_eq!(e("neigh 10.1.1.21"), "neigh 10.1.1.21: `mac' is required");
        assert_eq!(
            e("neigh 10.1.1 mac 02:00:00:00:00:01"),
            "bad neighbour address `10.1.1' (expected an IPv4 address A.B.C.D)"
        );
        assert_eq!(
            e("route 10.1.1.0/16 port 1"),
            "route 10.1.1.0/16: invalid prefix for its length (host bits set; did you mean 10.1.0.0/16?)"
        );
        assert_eq!(e("route 10.1.0.0/16"), "route 10.1.0.0/16: needs `via GATEWAY', `port PORT' or both");
        assert_eq!(e("route 10.1.0.0/16 dev eth0"), "route: unknown field `dev' (expected via or port)");
        assert_eq!(e("sysctl expire_nodest_conn 2"), "sysctl expire_nodest_conn: value must be 0 or 1");
        assert_eq!(e("sysctl secure_tcp 4"), "sysctl secure_tcp: value must be 0..3");
        assert_eq!(e("sysctl sync_version 2"), "sysctl sync_version: value must be 0 or 1");
        assert_eq!(e("sysctl sync_threshold 3"), "usage: sysctl sync_threshold THRESHOLD PERIOD");
        assert_eq!(
            e("sysctl sync_threshold 50 50"),
            "sysctl sync_threshold 50 50: the threshold must be below the period"
        );
        assert!(e("sysctl sync_threshold 3 300").contains("one byte"));
        assert!(e("sysctl sync_threshold 255 0").contains("one byte"));
        assert_eq!(
            e("sysctl sync_refresh_period 10"),
            "sysctl sync_refresh_period 10: not modelled by p4lite (it accepts only 0)"
        );
        assert_eq!(e("sysctl sync_ports 2"), "sysctl sync_ports 2: not modelled by p4lite (it accepts only 1)");
        assert_eq!(e("sysctl backup_only 1"), "sysctl backup_only 1: not modelled by p4lite (it accepts only 0)");
        let ok = |s: &str| line(s).unwrap();
        assert_eq!(ok("sysctl sync_version 0"), ConfigLine::Sysctl(SysctlSet::SyncVersion(Version::V0)));
        assert_eq!(ok("sysctl sync_threshold 5 100"), ConfigLine::Sysctl(SysctlSet::SyncThreshold(5, 100)));
        assert_eq!(ok("sysctl net.ipv4.vs.sync_threshold=2 0"), ConfigLine::Sysctl(SysctlSet::SyncThreshold(2, 0)));
        assert_eq!(ok("sysctl sync_persist_mode 1"), ConfigLine::Sysctl(SysctlSet::SyncPersistMode(true)));
        assert_eq!(ok("sysctl sync_qlen_max 10"), ConfigLine::Sysctl(SysctlSet::NoEffect));
        assert!(e("sysctl no_such 1").starts_with("unknown sysctl `no_such' (known: expire_nodest_conn, "));
        assert_eq!(e("sysctl pmtu_disc yes"), "sysctl pmtu_disc: bad value `yes' (expected a number)");
        // Values whose behaviour p4lite does not have are refused, not ignored.
        assert_eq!(e("sysctl pmtu_disc 0"), "sysctl pmtu_disc 0: not modelled by p4lite (it accepts only 1)");
        assert_eq!(e("sysctl nat_icmp_send 1"), "sysctl nat_icmp_send 1: not modelled by p4lite (it accepts only 0)");
        for name in ["cache_bypass", "schedule_icmp"] {
            assert!(e(&format!("sysctl {name} 1")).contains("not modelled"), "{name}");
        }
        assert_eq!(
            e("sysctl drop_packet 3"),
            "sysctl drop_packet 3: not modelled by p4lite (it accepts only 0, 1 and 2)"
        );
        assert_eq!(e("overhead fancy"), "usage: overhead current|classic");
        assert!(parse_config_line(&["vip", "1.2.3.4"]).is_none());
    }

    #[test]
    fn sysctl_forms() {
        let want = Ok(ConfigLine::Sysctl(SysctlSet::Ipvs(SysctlField::ExpireNodestConn, 1)));
        assert_eq!(line("sysctl expire_nodest_conn 1"), want);
        assert_eq!(line("sysctl net.ipv4.vs.expire_nodest_conn=1"), want);
        assert_eq!(line("sysctl net.ipv4.vs.expire_nodest_conn = 1"), want);
        assert_eq!(line("sysctl lblcr_expiration 60"), Ok(ConfigLine::Sysctl(SysctlSet::LblcrExpiration(60))));
        assert_eq!(line("overhead classic"), Ok(ConfigLine::Overhead(Overhead::Classic)));
        for ok in ["pmtu_disc 1", "nat_icmp_send 0", "drop_entry 2", "snat_reroute 0", "conntrack 1", "secure_tcp 1"] {
            assert!(line(&format!("sysctl {ok}")).is_ok(), "{ok}");
        }
        let mut s = Sysctls::default();
        s.set(SysctlField::SecureTcp, 3);
        s.set(SysctlField::PmtuDisc, 0);
        assert_eq!((s.secure_tcp, s.pmtu_disc, s.conn_reuse_mode), (3, false, 1));
    }

    #[test]
    fn cross_line_errors() {
        let errs = net("\
port 0 name eth0 mac 02:00:00:00:00:01 addr 192.0.2.1/24
port 0 name eth9 mac 02:00:00:00:00:09
port 1 name eth0 mac 02:00:00:00:00:02
port 2 mac 02:00:00:00:00:03 addr 192.0.2.1/25
neigh 10.9.9.9 mac 02:00:00:00:09:09
neigh 192.0.2.7 mac 02:00:00:00:09:07 port 4
neigh 192.0.2.8 mac 02:00:00:00:09:08 port eth7
route default via 10.9.9.1
route 10.0.0.0/8 via 10.9.9.1 port 0
route 10.5.0.0/16 port 0
route 10.5.0.0/16 port 0
neigh 192.0.2.8 mac 02:00:00:00:09:08
neigh 192.0.2.8 mac 02:00:00:00:09:08
")
        .unwrap_err();
        let want: Vec<(usize, &str)> = vec![
            (2, "port 0 is already defined at line 1"),
            (3, "name `eth0' is already used by port 0"),
            (4, "address 192.0.2.1 is already used by another port"),
            (5, "neighbour 10.9.9.9: no `port' given and no port has an address in its subnet"),
            (6, "unknown port 4 (no `port 4' line)"),
            (7, "unknown port `eth7'"),
            (8, "route 0.0.0.0/0: gateway 10.9.9.1 is not in a connected subnet of any port"),
            (9, "route 10.0.0.0/8: Nexthop has invalid gateway (10.9.9.1 is not in a subnet of port 0)"),
            (11, "route 10.5.0.0/16 is already defined at line 10"),
            (13, "neighbour 192.0.2.8 is already defined at line 12"),
        ];
        let got: Vec<(usize, &str)> = errs.iter().map(|(l, m)| (*l, m.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn mac_and_prefix_helpers() {
        assert_eq!(Mac::parse("02:00:00:00:01:21").map(Mac::to_u64), Some(0x0200_0000_0121));
        assert_eq!(Mac([2, 0, 0, 0, 1, 0x21]).to_string(), "02:00:00:00:01:21");
        assert_eq!(Mac::parse("02:00:00:00:01:21:00"), None);
        assert_eq!(Mac::parse("02:00:00:00:01:2g"), None);
        let p = Prefix::parse("10.1.1.1/24").unwrap();
        assert_eq!((p.network(), p.mask()), (Ipv4Addr::new(10, 1, 1, 0), 0xffff_ff00));
        assert!(p.contains(Ipv4Addr::new(10, 1, 1, 200)) && !p.contains(Ipv4Addr::new(10, 1, 2, 1)));
        assert_eq!(Prefix::parse("10.1.1.1/+8"), None);
    }
}
