//! `ipvsadm -L` and `-S` output, byte for byte (spec 4.2; ipvsadm 1.31's
//! `print_title()`, `print_service_entry()`, `print_largenum()`,
//! `list_conn()`, `list_timeout()`).
//!
//! Every formatter is a pure function over plain rows ([`ServiceRow`],
//! [`DestRow`], [`ConnRow`]), so tests build the spec's examples directly;
//! [`service_rows`] reads the rows off the service model.
//!
//! Differences from ipvsadm:
//! - Names are never resolved: `-L` prints what `-Ln` prints.
//! - Sorting compares addresses as unsigned numbers. ipvsadm subtracts
//!   them as `int`s, which mis-orders addresses 2^31 or more apart
//!   (e.g. 10.0.0.1 vs 192.0.2.1); the spec allows either.
//! - Without sorting (`--nosort`), services come in creation order (the
//!   kernel lists its hash table order) and dests in kernel list order.
//! - The connection table has no persistence-engine data, so
//!   `-Lc --persistent-conn` prints the wide header and plain rows, as
//!   ipvsadm does for entries without PE data.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::config::Timeouts;
use super::parse::ListFormat;
use super::rate::{RateEstimator, Rates};
use crate::ipvs::conn::{Conn, ConnTable};
use crate::ipvs::sched::SchedKind;
use crate::ipvs::service::{
    FwdMethod, Protocol, ServiceKey, Services, Stats, Tunnel, SVC_F_SCHED1, SVC_F_SCHED2, SVC_F_SCHED3,
};

/// `IP_VS_VERSION_CODE` 0x010201, as the banner prints it.
pub const IPVS_VERSION: &str = "1.2.1";

/// Default size of the connection hash table (`2^12`; spec 2.1).
pub const DEFAULT_CONN_TAB_SIZE: u32 = 4096;

/// One virtual service as the listings see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRow {
    /// `<protocol, VIP, port>`.
    pub key: ServiceKey,
    /// Scheduler.
    pub scheduler: SchedKind,
    /// Scheduler flag bits (`SVC_F_SCHED*`).
    pub sched_flags: u32,
    /// Persistence timeout, if persistent.
    pub persistent: Option<u32>,
    /// Persistence netmask.
    pub netmask: Ipv4Addr,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// Counters.
    pub stats: Stats,
    /// Estimated rates.
    pub rates: Rates,
    /// Real servers in kernel list order (newest first).
    pub dests: Vec<DestRow>,
}

/// One real server as the listings see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestRow {
    /// Address.
    pub addr: Ipv4Addr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: FwdMethod,
    /// Encapsulation (for [`FwdMethod::Tunnel`]).
    pub tunnel: Tunnel,
    /// Weight.
    pub weight: u32,
    /// Active connections.
    pub activeconns: u32,
    /// Inactive connections.
    pub inactconns: u32,
    /// Persistence templates.
    pub persistconns: u32,
    /// Upper threshold.
    pub u_threshold: u32,
    /// Lower threshold.
    pub l_threshold: u32,
    /// Counters.
    pub stats: Stats,
    /// Estimated rates.
    pub rates: Rates,
}

/// One connection (or persistence template) as `-Lc` prints it; the
/// connection table fills these in, so this module needs none of its
/// internals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnRow {
    /// `TCP`, `UDP`, `SCTP`, or `IP` for fwmark templates.
    pub proto: &'static str,
    /// Whole seconds until the entry expires.
    pub expires_secs: u32,
    /// State name (`ESTABLISHED`, `UDP`, `NONE`, ...).
    pub state: &'static str,
    /// Client address.
    pub caddr: Ipv4Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vaddr: Ipv4Addr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub daddr: Ipv4Addr,
    /// Real server port.
    pub dport: u16,
}

impl ConnRow {
    /// The row of a connection-table entry at packet time `now_ns`.
    pub fn from_conn(c: &Conn, now_ns: u64) -> ConnRow {
        ConnRow {
            proto: match c.proto {
                6 => "TCP",
                17 => "UDP",
                132 => "SCTP",
                // fwmark templates (protocol 0); no other protocol has conns.
                _ => "IP",
            },
            expires_secs: u32::try_from(c.remaining_secs(now_ns)).unwrap_or(u32::MAX),
            state: c.state_name(),
            caddr: Ipv4Addr::from(c.caddr),
            cport: c.cport,
            vaddr: Ipv4Addr::from(c.vaddr),
            vport: c.vport,
            daddr: Ipv4Addr::from(c.daddr),
            dport: c.dport,
        }
    }
}

/// The rows of every entry of `table` at `now_ns`, in table order.
pub fn conn_rows(table: &ConnTable, now_ns: u64) -> Vec<ConnRow> {
    table.iter().map(|c| ConnRow::from_conn(&c, now_ns)).collect()
}

/// The rows of every service, in creation order with dests in kernel list
/// order, with rates from `rates` if given (zero otherwise).
pub fn service_rows(services: &Services, rates: Option<&RateEstimator>) -> Vec<ServiceRow> {
    services
        .services()
        .map(|svc| ServiceRow {
            key: svc.key,
            scheduler: svc.scheduler(),
            sched_flags: svc.sched_flags,
            persistent: svc.persistent,
            netmask: svc.netmask,
            one_packet: svc.one_packet,
            stats: svc.stats,
            rates: rates.map(|r| r.service_rates(&svc.key)).unwrap_or_default(),
            dests: svc
                .dests()
                .iter()
                .map(|&d| {
                    let dest = services.dest(d);
                    DestRow {
                        addr: dest.addr,
                        port: dest.port,
                        fwd: dest.fwd,
                        tunnel: dest.tunnel,
                        weight: dest.weight,
                        activeconns: dest.activeconns,
                        inactconns: dest.inactconns,
                        persistconns: dest.persistconns,
                        u_threshold: dest.u_threshold,
                        l_threshold: dest.l_threshold,
                        stats: dest.stats,
                        rates: rates.map(|r| r.dest_rates(dest)).unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// `ipvsadm -L [options]`: the banner (when `banner` gives the connection
/// table size: listing all services), the column titles, then each service
/// of `rows` with its dests. For `-L -t vip:port`, pass just that row and
/// no banner.
pub fn list_services(rows: &[ServiceRow], format: &ListFormat, banner: Option<u32>) -> String {
    let mut out = String::new();
    if let Some(size) = banner {
        let _ = writeln!(out, "IP Virtual Server version {IPVS_VERSION} (size={size})");
    }
    out.push_str(&title(format));
    for row in sorted(rows, format) {
        service_entry(&mut out, row, format);
    }
    out
}

/// `ipvsadm -S [-n]`: the table as command lines for `ipvsadm -R`.
pub fn save_rules(rows: &[ServiceRow], format: &ListFormat) -> String {
    let mut out = String::new();
    for row in sorted(rows, format) {
        let svc = format!("{} {}", proto_switch(row.key.proto), addr_port(row.key.addr, row.key.port));
        let _ = write!(out, "-A {svc} -s {}", row.scheduler.name());
        if let Some(t) = row.persistent {
            let _ = write!(out, " -p {t}");
            if row.netmask != Ipv4Addr::BROADCAST {
                let _ = write!(out, " -M {}", row.netmask);
            }
        }
        if row.one_packet {
            out.push_str(" -o");
        }
        if row.sched_flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3) != 0 {
            let _ = write!(out, " -b {}", sched_flags_text(row.scheduler, row.sched_flags));
        }
        out.push('\n');
        for d in sorted_dests(&row.dests, format) {
            let switch = match d.fwd {
                FwdMethod::Masq => "-m",
                FwdMethod::Tunnel => "-i",
                FwdMethod::Route => "-g",
            };
            let _ = write!(out, "-a {svc} -r {} {switch} -w {}", addr_port(d.addr, d.port), d.weight);
            // ipvsadm's print_tunnel_rule() adds the tunnel type (and GUE's
            // port, GUE's and GRE's checksum option) for -i.
            if d.fwd == FwdMethod::Tunnel {
                out.push_str(&d.tunnel.save_options());
            }
            out.push('\n');
        }
    }
    out
}

/// `ipvsadm -Lc [--persistent-conn]`: the connection entries in the given
/// (table) order.
pub fn list_connections<'a>(conns: impl IntoIterator<Item = &'a ConnRow>, format: &ListFormat) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if format.persistent_conn {
        let _ = writeln!(
            out,
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} pe_data",
            "state", "source", "virtual", "destination", "pe name"
        );
    } else {
        let _ = writeln!(out, "pro expire {:<11} {:<18} {:<18} destination", "state", "source", "virtual");
    }
    for c in conns {
        let expire = format!("{:02}:{:02}", c.expires_secs / 60, c.expires_secs % 60);
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            c.proto,
            expire,
            c.state,
            addr_port(c.caddr, c.cport),
            addr_port(c.vaddr, c.vport),
            addr_port(c.daddr, c.dport)
        );
    }
    out
}

/// `ipvsadm -L --timeout`.
pub fn list_timeouts(t: &Timeouts) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcp_fin, t.udp)
}

/// `ipvsadm -L --daemon`: one line per running sync daemon; p4lite runs
/// none, so nothing.
pub fn list_daemons() -> String {
    String::new()
}

/// `print_title()`, with ipvsadm's printf formats.
fn title(format: &ListFormat) -> String {
    const PROT: &str = "Prot LocalAddress:Port";
    const REMOTE: &str = "  -> RemoteAddress:Port";
    let numbers = |a: &str, b: &str, c: &str, d: &str, e: &str| {
        format!("{PROT:<33} {a:>8} {b:>8} {c:>8} {d:>8} {e:>8}\n{REMOTE}\n")
    };
    if format.stats {
        numbers("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
    } else if format.rate {
        numbers("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
    } else if format.thresholds {
        format!(
            "{PROT:<33} {:<10} {:<10} {:<10} {:<10}\n{REMOTE}\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if format.persistent_conn {
        format!("{PROT:<33} {:<9} {:<11} {:<10} {:<10}\n{REMOTE}\n", "Weight", "PersistConn", "ActiveConn", "InActConn")
    } else if format.tun_info {
        format!("{PROT} Scheduler Flags\n{REMOTE}           Forward TunnelInfo    Weight ActiveConn InActConn\n")
    } else {
        format!("{PROT} Scheduler Flags\n{REMOTE}           Forward Weight ActiveConn InActConn\n")
    }
}

/// `print_service_entry()` without `FMT_RULE`.
fn service_entry(out: &mut String, row: &ServiceRow, format: &ListFormat) {
    let mut name = format!("{:<4} {}", row.key.proto.name(), addr_port(row.key.addr, row.key.port));
    name.truncate(33);
    if format.stats {
        let _ = write!(out, "{name:<33}");
        largenums(
            out,
            &[row.stats.conns, row.stats.inpkts, row.stats.outpkts, row.stats.inbytes, row.stats.outbytes],
            format,
        );
    } else if format.rate {
        let _ = write!(out, "{name:<33}");
        let r = row.rates;
        largenums(out, &[r.cps, r.inpps, r.outpps, r.inbps, r.outbps], format);
    } else {
        let _ = write!(out, "{name} {}", row.scheduler.name());
        if row.sched_flags & (SVC_F_SCHED1 | SVC_F_SCHED2 | SVC_F_SCHED3) != 0 {
            let _ = write!(out, " ({})", sched_flags_text(row.scheduler, row.sched_flags));
        }
        if let Some(t) = row.persistent {
            let _ = write!(out, " persistent {t}");
            if row.netmask != Ipv4Addr::BROADCAST {
                let _ = write!(out, " mask {}", row.netmask);
            }
        }
        if row.one_packet {
            out.push_str(" ops");
        }
    }
    out.push('\n');
    for d in sorted_dests(&row.dests, format) {
        let mut dname = addr_port(d.addr, d.port);
        dname.truncate(28);
        if format.stats {
            let _ = write!(out, "  -> {dname:<28}");
            largenums(
                out,
                &[d.stats.conns, d.stats.inpkts, d.stats.outpkts, d.stats.inbytes, d.stats.outbytes],
                format,
            );
            out.push('\n');
        } else if format.rate {
            let r = d.rates;
            let _ = write!(out, "  -> {dname:<28} {:>8} {:>8} {:>8}", r.cps, r.inpps, r.outpps);
            largenums(out, &[r.inbps, r.outbps], format);
            out.push('\n');
        } else if format.thresholds {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
                d.u_threshold, d.l_threshold, d.activeconns, d.inactconns
            );
        } else if format.persistent_conn {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
                d.weight, d.persistconns, d.activeconns, d.inactconns
            );
        } else if format.tun_info {
            let info = if d.fwd == FwdMethod::Tunnel { d.tunnel.info() } else { "n/a".into() };
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {info:<13} {:<6} {:<10} {:<10}",
                d.fwd.list_name(),
                d.weight,
                d.activeconns,
                d.inactconns
            );
        } else {
            let _ = writeln!(
                out,
                "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                d.fwd.list_name(),
                d.weight,
                d.activeconns,
                d.inactconns
            );
        }
    }
}

/// `print_sched_flags()`: sh shows its own names (and nothing for
/// flag-3); other schedulers show `flag-N`.
fn sched_flags_text(sched: SchedKind, flags: u32) -> String {
    let names: &[(u32, &str)] = if sched == SchedKind::Sh {
        &[(SVC_F_SCHED1, "sh-fallback"), (SVC_F_SCHED2, "sh-port")]
    } else {
        &[(SVC_F_SCHED1, "flag-1"), (SVC_F_SCHED2, "flag-2"), (SVC_F_SCHED3, "flag-3")]
    };
    let set: Vec<&str> = names.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, n)| *n).collect();
    set.join(",")
}

/// `print_largenum()` for each value.
fn largenums(out: &mut String, values: &[u64], format: &ListFormat) {
    for &v in values {
        out.push_str(&largenum(v, format.exact));
    }
}

/// `print_largenum()`: at most 9 columns with a K/M/G/T suffix, or with
/// `--exact` the whole number in `max(9, digits + 1)` columns.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let digits = i.to_string();
        let width = if digits.len() <= 8 { 9 } else { digits.len() + 1 };
        return format!("{digits:>width$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1_000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// `addr:port` as ipvsadm prints it with `-n` (IPv4).
fn addr_port(addr: Ipv4Addr, port: u16) -> String {
    format!("{addr}:{port}")
}

/// `option_from_protocol()`.
fn proto_switch(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
        Protocol::Sctp => "--sctp-service",
    }
}

/// `ipvs_cmp_services()` order (fwmark and af are equal for all our
/// services): protocol number, address, port.
fn sorted<'a>(rows: &'a [ServiceRow], format: &ListFormat) -> Vec<&'a ServiceRow> {
    let mut v: Vec<&ServiceRow> = rows.iter().collect();
    if !format.nosort {
        v.sort_by_key(|r| (r.key.proto.number(), u32::from(r.key.addr), r.key.port));
    }
    v
}

/// `ipvs_cmp_dests()` order: address, port.
fn sorted_dests<'a>(dests: &'a [DestRow], format: &ListFormat) -> Vec<&'a DestRow> {
    let mut v: Vec<&DestRow> = dests.iter().collect();
    if !format.nosort {
        v.sort_by_key(|d| (u32::from(d.addr), d.port));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::service::GueCsum;

    /// Spec 4.2 marks real trailing spaces with `␣`.
    fn spec(text: &str) -> String {
        text.replace('␣', " ")
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn svc(proto: Protocol, addr: &str, port: u16, sched: SchedKind) -> ServiceRow {
        ServiceRow {
            key: ServiceKey { proto, addr: ip(addr), port },
            scheduler: sched,
            sched_flags: 0,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST,
            one_packet: false,
            stats: Stats::default(),
            rates: Rates::default(),
            dests: Vec::new(),
        }
    }

    fn dest(addr: &str, port: u16, fwd: FwdMethod, weight: u32, active: u32, inactive: u32) -> DestRow {
        DestRow {
            addr: ip(addr),
            port,
            fwd,
            tunnel: Tunnel::Ipip,
            weight,
            activeconns: active,
            inactconns: inactive,
            persistconns: 0,
            u_threshold: 0,
            l_threshold: 0,
            stats: Stats::default(),
            rates: Rates::default(),
        }
    }

    fn stats(conns: u64, inpkts: u64, outpkts: u64, inbytes: u64, outbytes: u64) -> Stats {
        Stats { conns, inpkts, outpkts, inbytes, outbytes }
    }

    fn numeric() -> ListFormat {
        ListFormat { numeric: true, ..ListFormat::default() }
    }

    /// The table of the spec's `ipvsadm -Ln` example, built in an order
    /// the sorting has to undo (UDP first, dests newest first).
    fn spec_ln_rows() -> Vec<ServiceRow> {
        let mut udp = svc(Protocol::Udp, "198.51.100.10", 53, SchedKind::Rr);
        udp.persistent = Some(360);
        udp.netmask = ip("255.255.255.0");
        udp.dests.push(dest("10.1.1.31", 53, FwdMethod::Route, 0, 0, 7));
        let mut tcp = svc(Protocol::Tcp, "198.51.100.10", 80, SchedKind::Wlc);
        tcp.dests.push(dest("10.1.1.22", 8080, FwdMethod::Masq, 2, 24, 81));
        tcp.dests.push(dest("10.1.1.21", 8080, FwdMethod::Masq, 1, 12, 40));
        vec![udp, tcp]
    }

    #[test]
    fn spec_ipvsadm_ln() {
        let want = spec(
            "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.51.100.10:80 wlc
  -> 10.1.1.21:8080               Masq    1      12         40␣␣␣␣␣␣␣␣
  -> 10.1.1.22:8080               Masq    2      24         81␣␣␣␣␣␣␣␣
UDP  198.51.100.10:53 rr persistent 360 mask 255.255.255.0
  -> 10.1.1.31:53                 Route   0      0          7␣␣␣␣␣␣␣␣␣
",
        );
        assert_eq!(list_services(&spec_ln_rows(), &numeric(), Some(4096)), want);
    }

    #[test]
    fn spec_ipvsadm_ln_stats() {
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  198.51.100.10:80                14209   111769    74613  7207174  8334358
  -> 10.1.1.21:8080                   7105    55885    37307  3603587  4167179
UDP  198.51.100.10:53              123456K        0        0        0        0
";
        let mut tcp = svc(Protocol::Tcp, "198.51.100.10", 80, SchedKind::Wlc);
        tcp.stats = stats(14209, 111769, 74613, 7207174, 8334358);
        let mut d = dest("10.1.1.21", 8080, FwdMethod::Masq, 1, 0, 0);
        d.stats = stats(7105, 55885, 37307, 3603587, 4167179);
        tcp.dests.push(d);
        let mut udp = svc(Protocol::Udp, "198.51.100.10", 53, SchedKind::Rr);
        udp.stats = stats(123_456_789, 0, 0, 0, 0);
        let format = ListFormat { stats: true, ..numeric() };
        assert_eq!(list_services(&[udp, tcp], &format, Some(4096)), want);
    }

    #[test]
    fn spec_ipvsadm_lnc() {
        let want = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:58  ESTABLISHED 203.0.113.7:40000  198.51.100.10:80   10.1.1.21:8080
UDP 04:59  UDP         203.0.113.9:5353   198.51.100.10:53   10.1.1.31:53
";
        let conns = [
            ConnRow {
                proto: "TCP",
                expires_secs: 14 * 60 + 58,
                state: "ESTABLISHED",
                caddr: ip("203.0.113.7"),
                cport: 40000,
                vaddr: ip("198.51.100.10"),
                vport: 80,
                daddr: ip("10.1.1.21"),
                dport: 8080,
            },
            ConnRow {
                proto: "UDP",
                expires_secs: 4 * 60 + 59,
                state: "UDP",
                caddr: ip("203.0.113.9"),
                cport: 5353,
                vaddr: ip("198.51.100.10"),
                vport: 53,
                daddr: ip("10.1.1.31"),
                dport: 53,
            },
        ];
        assert_eq!(list_connections(&conns, &numeric()), want);
    }

    #[test]
    fn conn_templates_long_expiry_and_persistent_conn_header() {
        let t = ConnRow {
            proto: "TCP",
            expires_secs: 6000 * 60 + 5,
            state: "NONE",
            caddr: ip("203.0.113.0"),
            cport: 0,
            vaddr: ip("198.51.100.10"),
            vport: 443,
            daddr: ip("10.1.1.21"),
            dport: 443,
        };
        let want = "\
IPVS connection entries
pro expire state       source             virtual            destination        pe name          pe_data
TCP 6000:05 NONE        203.0.113.0:0      198.51.100.10:443  10.1.1.21:443
";
        let format = ListFormat { persistent_conn: true, ..numeric() };
        assert_eq!(list_connections(&[t], &format), want);
    }

    #[test]
    fn single_service_has_titles_but_no_banner() {
        let rows = spec_ln_rows();
        let want = "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  198.51.100.10:53 rr persistent 360 mask 255.255.255.0
  -> 10.1.1.31:53                 Route   0      0          7         
";
        assert_eq!(list_services(&rows[..1], &numeric(), None), want);
        // An empty table still prints banner and titles.
        assert_eq!(
            list_services(&[], &numeric(), Some(4096)),
            "IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        );
    }

    #[test]
    fn nosort_keeps_table_order() {
        let format = ListFormat { nosort: true, ..numeric() };
        let out = list_services(&spec_ln_rows(), &format, None);
        let lines: Vec<&str> = out.lines().skip(2).map(|l| l.get(..22).unwrap_or(l)).collect();
        assert_eq!(
            lines,
            [
                "UDP  198.51.100.10:53 ",
                "  -> 10.1.1.31:53      ",
                "TCP  198.51.100.10:80 ",
                "  -> 10.1.1.22:8080    ",
                "  -> 10.1.1.21:8080    "
            ]
            .map(|s| &s[..22])
        );
    }

    #[test]
    fn sorting_is_unsigned() {
        // ipvsadm's int subtraction would put 192.0.2.1 before 10.0.0.1.
        let rows =
            vec![svc(Protocol::Tcp, "192.0.2.1", 80, SchedKind::Rr), svc(Protocol::Tcp, "10.0.0.1", 80, SchedKind::Rr)];
        let out = list_services(&rows, &numeric(), None);
        assert!(out.find("10.0.0.1").unwrap() < out.find("192.0.2.1").unwrap());
    }

    #[test]
    fn service_line_flags_persistence_ops() {
        let mut s = svc(Protocol::Tcp, "198.51.100.10", 443, SchedKind::Sh);
        s.sched_flags = SVC_F_SCHED1 | SVC_F_SCHED2;
        s.persistent = Some(600);
        let line = |s: &ServiceRow| {
            list_services(std::slice::from_ref(s), &numeric(), None).lines().nth(2).unwrap().to_string()
        };
        assert_eq!(line(&s), "TCP  198.51.100.10:443 sh (sh-fallback,sh-port) persistent 600");
        s.scheduler = SchedKind::Rr;
        s.sched_flags = SVC_F_SCHED3;
        s.persistent = None;
        assert_eq!(line(&s), "TCP  198.51.100.10:443 rr (flag-3)");
        // sh has no name for flag-3: ipvsadm prints empty parentheses.
        s.scheduler = SchedKind::Sh;
        assert_eq!(line(&s), "TCP  198.51.100.10:443 sh ()");
        let mut u = svc(Protocol::Udp, "198.51.100.10", 53, SchedKind::Wrr);
        u.one_packet = true;
        assert_eq!(line(&u), "UDP  198.51.100.10:53 wrr ops");
        let sctp = svc(Protocol::Sctp, "198.51.100.10", 9, SchedKind::Lblcr);
        assert_eq!(line(&sctp), "SCTP 198.51.100.10:9 lblcr");
        // The mask only shows for persistent services.
        let mut m = svc(Protocol::Tcp, "198.51.100.10", 80, SchedKind::Wlc);
        m.netmask = ip("255.255.0.0");
        assert_eq!(line(&m), "TCP  198.51.100.10:80 wlc");
    }

    #[test]
    fn rate_thresholds_persistent_conn_tun_info() {
        let mut s = svc(Protocol::Tcp, "198.51.100.10", 80, SchedKind::Wlc);
        s.rates = Rates { cps: 12, inpps: 345, outpps: 300, inbps: 123_456_789, outbps: 98765 };
        let mut d = dest("10.1.1.21", 80, FwdMethod::Tunnel, 3, 4, 5);
        d.rates = Rates { cps: 1_000_000_000, inpps: 2, outpps: 3, inbps: 4, outbps: 1_500_000_000 };
        d.u_threshold = 100;
        d.l_threshold = 75;
        d.persistconns = 9;
        s.dests.push(d);
        s.dests.push(dest("10.1.1.22", 80, FwdMethod::Route, 1, 0, 0));
        let rows = [s];
        let list = |f: ListFormat| list_services(&rows, &f, None);
        assert_eq!(
            list(ListFormat { rate: true, ..numeric() }),
            "\
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  198.51.100.10:80                   12      345      300  123456K    98765
  -> 10.1.1.21:80                 1000000000        2        3        4    1500M
  -> 10.1.1.22:80                        0        0        0        0        0
"
        );
        assert_eq!(
            list(ListFormat { thresholds: true, ..numeric() }),
            "\
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.51.100.10:80 wlc
  -> 10.1.1.21:80                 100        75         4          5         
  -> 10.1.1.22:80                 0          0          0          0         
"
        );
        assert_eq!(
            list(ListFormat { persistent_conn: true, ..numeric() }),
            "\
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn 
  -> RemoteAddress:Port
TCP  198.51.100.10:80 wlc
  -> 10.1.1.21:80                 3         9           4          5         
  -> 10.1.1.22:80                 1         0           0          0         
"
        );
        // GRE real servers show their checksum flag (ipvsadm's tunflags[]),
        // GUE ones their port too.
        let mut rows = rows;
        rows[0]
            .dests
            .push(DestRow { tunnel: Tunnel::Gre { csum: false }, ..dest("10.1.1.23", 80, FwdMethod::Tunnel, 2, 1, 0) });
        rows[0]
            .dests
            .push(DestRow { tunnel: Tunnel::Gre { csum: true }, ..dest("10.1.1.24", 80, FwdMethod::Tunnel, 2, 0, 0) });
        for (i, csum) in [GueCsum::None, GueCsum::Csum, GueCsum::Remcsum].into_iter().enumerate() {
            let port = [6080, 5555, 65535][i];
            let addr = format!("10.1.1.{}", 25 + i);
            rows[0]
                .dests
                .push(DestRow { tunnel: Tunnel::Gue { port, csum }, ..dest(&addr, 80, FwdMethod::Tunnel, 1, 0, 0) });
        }
        let list = |f: ListFormat| list_services(&rows, &f, None);
        assert_eq!(
            list(ListFormat { tun_info: true, ..numeric() }),
            "\
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn
TCP  198.51.100.10:80 wlc
  -> 10.1.1.21:80                 Tunnel  ipip          3      4          5         
  -> 10.1.1.22:80                 Route   n/a           1      0          0         
  -> 10.1.1.23:80                 Tunnel  gre:-c        2      1          0         
  -> 10.1.1.24:80                 Tunnel  gre:+c        2      0          0         
  -> 10.1.1.25:80                 Tunnel  gue:6080:-c   1      0          0         
  -> 10.1.1.26:80                 Tunnel  gue:5555:+c   1      0          0         
  -> 10.1.1.27:80                 Tunnel  gue:65535:r+c 1      0          0         
"
        );
        // --stats wins over --rate, as in print_title().
        assert!(list(ListFormat { stats: true, rate: true, ..numeric() }).contains("Conns   InPkts"));
    }

    #[test]
    fn largenum_boundaries() {
        assert_eq!(largenum(0, false), "        0");
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(100_000_000, false), "  100000K");
        assert_eq!(largenum(999_999_999, false), "  999999K");
        assert_eq!(largenum(1_000_000_000, false), "    1000M");
        assert_eq!(largenum(99_999_999_999, false), "   99999M");
        assert_eq!(largenum(100_000_000_000, false), "     100G");
        assert_eq!(largenum(100_000_000_000_000, false), "     100T");
        assert_eq!(largenum(u64::MAX, false), "18446744T");
        assert_eq!(largenum(12345, true), "    12345");
        assert_eq!(largenum(12_345_678, true), " 12345678");
        assert_eq!(largenum(123_456_789, true), " 123456789");
        assert_eq!(largenum(u64::MAX, true), " 18446744073709551615");
    }

    #[test]
    fn exact_stats() {
        let mut u = svc(Protocol::Udp, "198.51.100.10", 53, SchedKind::Rr);
        u.stats = stats(123_456_789, 1, 2, 3, 4);
        let format = ListFormat { stats: true, exact: true, ..numeric() };
        let out = list_services(&[u], &format, None);
        assert_eq!(
            out.lines().nth(2),
            Some("UDP  198.51.100.10:53             123456789        1        2        3        4")
        );
    }

    #[test]
    fn save_format() {
        let mut rows = spec_ln_rows();
        rows[1].dests.push(dest("10.1.1.23", 80, FwdMethod::Tunnel, 4, 0, 0));
        rows[1]
            .dests
            .push(DestRow { tunnel: Tunnel::Gre { csum: false }, ..dest("10.1.1.24", 80, FwdMethod::Tunnel, 1, 0, 0) });
        rows[1]
            .dests
            .push(DestRow { tunnel: Tunnel::Gre { csum: true }, ..dest("10.1.1.25", 80, FwdMethod::Tunnel, 1, 0, 0) });
        for (i, csum) in [GueCsum::None, GueCsum::Csum, GueCsum::Remcsum].into_iter().enumerate() {
            let tunnel = Tunnel::Gue { port: 6080 + i as u16, csum };
            rows[1]
                .dests
                .push(DestRow { tunnel, ..dest(&format!("10.1.1.{}", 26 + i), 80, FwdMethod::Tunnel, 1, 0, 0) });
        }
        let mut sh = svc(Protocol::Tcp, "198.51.100.11", 443, SchedKind::Sh);
        sh.sched_flags = SVC_F_SCHED1 | SVC_F_SCHED2;
        sh.persistent = Some(360);
        sh.one_packet = false;
        rows.push(sh);
        let mut ops = svc(Protocol::Udp, "198.51.100.11", 53, SchedKind::Rr);
        ops.one_packet = true;
        rows.push(ops);
        assert_eq!(
            save_rules(&rows, &numeric()),
            "\
-A -t 198.51.100.10:80 -s wlc
-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 1
-a -t 198.51.100.10:80 -r 10.1.1.22:8080 -m -w 2
-a -t 198.51.100.10:80 -r 10.1.1.23:80 -i -w 4 --tun-type ipip
-a -t 198.51.100.10:80 -r 10.1.1.24:80 -i -w 1 --tun-type gre --tun-nocsum
-a -t 198.51.100.10:80 -r 10.1.1.25:80 -i -w 1 --tun-type gre --tun-csum
-a -t 198.51.100.10:80 -r 10.1.1.26:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum
-a -t 198.51.100.10:80 -r 10.1.1.27:80 -i -w 1 --tun-type gue --tun-port 6081 --tun-csum
-a -t 198.51.100.10:80 -r 10.1.1.28:80 -i -w 1 --tun-type gue --tun-port 6082 --tun-remcsum
-A -t 198.51.100.11:443 -s sh -p 360 -b sh-fallback,sh-port
-A -u 198.51.100.10:53 -s rr -p 360 -M 255.255.255.0
-a -u 198.51.100.10:53 -r 10.1.1.31:53 -g -w 0
-A -u 198.51.100.11:53 -s rr -o
"
        );
    }

    #[test]
    fn timeouts_and_daemons() {
        assert_eq!(list_timeouts(&Timeouts::default()), "Timeout (tcp tcpfin udp): 900 120 300\n");
        assert_eq!(list_daemons(), "");
    }
}
