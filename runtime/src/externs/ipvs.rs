//! The IPVS externs of the prelude: `conn_table.lookup_in`,
//! `conn_table.lookup_out` and `scheduler.schedule`, over the one
//! [`Director`] a switch holds (every instance of either type shares it),
//! and `truncate`.
//!
//! What each returns is the prelude's contract (`grammar/prelude.p4lite`);
//! the kernel behaviour behind it is `../shared/ipvs-spec.md`:
//! - `lookup_in`: [`ConnTable::lookup_in`](crate::ipvs::conn::ConnTable::lookup_in);
//!   `IPVS_HIT` with the conn's forwarding method and real server,
//!   `IPVS_MISS` when there is no usable conn (none, or one expired by port
//!   reuse / `expire_nodest_conn`), `IPVS_DROP` for a conn whose dest was
//!   deleted (spec 2.8).
//! - `schedule` (`ip_vs_schedule()`): `IPVS_PASS` for a packet that may not
//!   create a conn (spec 2.7: RST never, TCP without SYN unless
//!   `sloppy_tcp`, protocols other than TCP and UDP), a service id that
//!   names no service, client port 20 (FTP data), and an FTP service's
//!   packet to another port when no dest is found (spec 1.12 step 2);
//!   `IPVS_NO_DEST` when the scheduler finds no dest (1.12 step 4, the
//!   program answers ICMP port unreachable) or a non-persistent service is
//!   hit on another port; `IPVS_DROP` when the conn table is full and
//!   nothing can be evicted (an internal error: drop without ICMP);
//!   otherwise persistence (2.6), the conn is inserted and `IPVS_HIT`.
//! - `lookup_out`: [`ConnTable::lookup_out`](crate::ipvs::conn::ConnTable::lookup_out);
//!   `IPVS_HIT` with the virtual address and port, else `IPVS_MISS`.
//!
//! Statistics (`ipvsadm -L --stats`): a hit of `lookup_in` and a scheduled
//! packet count as an incoming packet of the conn's dest, a scheduled packet
//! also as a new conn, a hit of `lookup_out` as an outgoing packet. The
//! bytes counted are the `ip_len` argument: the program passes the L3 length
//! of the packet that arrived (lb.p4lite: the outer IPv4 header's
//! `total_len`, also for an ICMP error about a conn), which is what the
//! kernel counts as `skb->len`. The runtime does not work it out from the
//! frame length: a frame may carry Ethernet padding (a 40-byte TCP SYN in a
//! 60-byte minimum frame counts 40 bytes, not 46) or a VLAN tag.
//!
//! Time is the packet's arrival time in ns ([`super::Externs::packet_time`],
//! what `std.timestamp` holds when the pipeline starts; a program that
//! writes `std.timestamp` does not move the director's clock); every call first runs the
//! director's due timers ([`Director::advance`]) and then hands the
//! connection table the latest packet time seen (which is what the table
//! would use anyway: time never goes backwards for it).
//!
//! `truncate(length)` records the length; the switch cuts the deparsed
//! packet to it (when shorter) after the pipeline, so both backends behave
//! the same (the JIT calls it through the host like any extern).

use std::net::Ipv4Addr;

use crate::ipvs::conn::{self, conn_dport, template_dport, InBrief, NewConn, TemplateKey, Tuple};
use crate::ipvs::director::Director;
use crate::ipvs::sched::PacketInfo;
use crate::ipvs::service::{DestId, FwdMethod, GueCsum, ServiceId, Services, Tunnel};

/// `IPVS_MISS`: no connection.
pub const IPVS_MISS: u8 = 0;
/// `IPVS_HIT`: a connection; its real server is in the out parameters.
pub const IPVS_HIT: u8 = 1;
/// `IPVS_DROP`: drop silently.
pub const IPVS_DROP: u8 = 2;
/// `IPVS_PASS`: not for IPVS; pass the packet on unchanged.
pub const IPVS_PASS: u8 = 3;
/// `IPVS_NO_DEST`: no real server available.
pub const IPVS_NO_DEST: u8 = 4;

/// In a hit's `fwd`, with [`FwdMethod::Tunnel`]'s value: the dest's tunnel
/// is GRE (`--tun-type gre`); IP-in-IP without it or [`IPVS_TUN_GUE`] (the
/// prelude's `IPVS_TUN_GRE`).
pub const IPVS_TUN_GRE: u8 = 0x10;
/// With [`IPVS_TUN_GRE`]: the GRE header carries a checksum (`--tun-csum`);
/// with [`IPVS_TUN_GUE`]: the UDP header does (`--tun-csum` or
/// `--tun-remcsum`, [`GueCsum::Remcsum`]). The prelude's `IPVS_TUN_CSUM`.
pub const IPVS_TUN_CSUM: u8 = 0x20;
/// In a hit's `fwd`, with [`FwdMethod::Tunnel`]'s value: the dest's tunnel
/// is GUE (`--tun-type gue`), and the hit's `rport` is its UDP port
/// (`--tun-port`; the prelude's `IPVS_TUN_GUE`).
pub const IPVS_TUN_GUE: u8 = 0x40;

/// IP protocol numbers of the tunnels ([`related_tunnel`]).
const IP_PROTO_IPIP: u8 = 4;
const IP_PROTO_UDP: u8 = 17;
const IP_PROTO_GRE: u8 = 47;

/// The FTP data port: packets from it are never scheduled (spec 1.12).
const FTP_DATA_PORT: u16 = 20;

/// A packet as the IPVS externs see it: the in parameters plus the
/// switch-provided time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
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
    /// TCP flags byte (0 for UDP).
    pub tcp_flags: u8,
    /// L3 length in bytes (the `ip_len` argument), for the statistics.
    pub l3_len: u64,
    /// Packet time in ns.
    pub now_ns: u64,
}

impl Packet {
    fn tuple(&self) -> Tuple {
        Tuple { proto: self.proto, saddr: self.saddr, sport: self.sport, daddr: self.daddr, dport: self.dport }
    }
}

/// The result of `lookup_in` and `schedule`: code, then `fwd`, `raddr`,
/// `rport` ([`hit_out`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InResult {
    /// One of the `IPVS_*` codes.
    pub code: u8,
    /// IPVS's forwarding flag value (0 masq, 2 tunnel, 3 route), for a
    /// tunnel with the dest's encapsulation bits ([`fwd_out`]).
    pub fwd: u8,
    /// Real server address.
    pub raddr: u32,
    /// Real server port; for VS/TUN over GUE, the tunnel's UDP port.
    pub rport: u16,
}

impl InResult {
    fn code(code: u8) -> InResult {
        InResult { code, fwd: 0, raddr: 0, rport: 0 }
    }

    fn hit(services: &Services, c: &conn::Conn) -> InResult {
        let (fwd, rport) = hit_out(services, c.fwd(), c.dest, c.dport);
        InResult { code: IPVS_HIT, fwd, raddr: c.daddr, rport }
    }
}

/// The result of `lookup_out`: code, then `vaddr`, `vport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutResult {
    /// `IPVS_HIT` or `IPVS_MISS`.
    pub code: u8,
    /// Virtual address to rewrite the source to.
    pub vaddr: u32,
    /// Virtual port.
    pub vport: u16,
}

/// IPVS's flag value of a forwarding method (the prelude's `IPVS_FWD_*`).
pub fn fwd_value(f: FwdMethod) -> u8 {
    match f {
        FwdMethod::Masq => 0,
        FwdMethod::Tunnel => 2,
        FwdMethod::Route => 3,
    }
}

/// The `fwd` and `rport` a hit on a conn to real server port `dport`
/// returns: the method's flag value ([`fwd_value`]) and `dport`; for VS/TUN
/// the encapsulation of the conn's dest, read now as the kernel reads
/// `cp->dest->tun_type` for every packet it sends (so `-e` changes it for
/// existing conns too): [`IPVS_TUN_GRE`], [`IPVS_TUN_GUE`],
/// [`IPVS_TUN_CSUM`], and for GUE the tunnel's port (`cp->dest->tun_port`)
/// instead of `dport`, which a tunnelled packet does not use (its port is
/// the virtual one, ipvsadm's rule for `-i`).
#[inline]
pub fn hit_out(services: &Services, fwd: FwdMethod, dest: Option<DestId>, dport: u16) -> (u8, u16) {
    match fwd {
        FwdMethod::Tunnel => tunnel_out(services, dest, dport),
        FwdMethod::Masq | FwdMethod::Route => (fwd_value(fwd), dport),
    }
}

/// [`hit_out`] of a VS/TUN conn: its dest's encapsulation bits, and GUE's
/// port (out of line, so that the NAT and DR lookups stay as short as they
/// were).
#[inline(never)]
fn tunnel_out(services: &Services, dest: Option<DestId>, dport: u16) -> (u8, u16) {
    let method = fwd_value(FwdMethod::Tunnel);
    let csum_bit = |on: bool| if on { IPVS_TUN_CSUM } else { 0 };
    match dest.and_then(|d| services.try_dest(d)).map(|d| d.tunnel) {
        Some(Tunnel::Gre { csum }) => (method | IPVS_TUN_GRE | csum_bit(csum), dport),
        Some(Tunnel::Gue { port, csum }) => (method | IPVS_TUN_GUE | csum_bit(csum != GueCsum::None), port),
        Some(Tunnel::Ipip) | None => (method, dport),
    }
}

/// `conn_table.prefetch`, a hint: a packet `saddr:sport` → `daddr:dport`
/// of protocol `proto` will be looked up soon. To a virtual address it is a
/// client's packet (`lookup_in` finds its conn by the source); otherwise it
/// may be a real server's NAT reply (`lookup_out` finds its conn by the
/// destination, the client): the conn table warms that key's chain. A
/// false "maybe virtual" from the services' address filter only warms the
/// wrong chain.
#[inline]
pub fn prefetch(d: &mut Director, proto: u8, (saddr, sport): (u32, u16), (daddr, dport): (u32, u16)) {
    if d.lb.services.may_be_virtual(daddr) {
        d.conns.prefetch(proto, saddr, sport);
    } else {
        d.conns.prefetch(proto, daddr, dport);
    }
}

/// `conn_table.lookup_in`: `p` goes client (`saddr:sport`) → VIP (`daddr:dport`).
pub fn lookup_in(d: &mut Director, p: &Packet) -> InResult {
    d.advance(p.now_ns);
    let now = d.now_ns();
    let Director { lb, conns, .. } = d;
    match conns.lookup_in_brief(&mut lb.services, &p.tuple(), p.tcp_flags, now) {
        InBrief::Hit(c) => {
            if let Some(dest) = c.dest {
                count_in(d, dest, p.l3_len);
            }
            let (fwd, rport) = hit_out(&d.lb.services, c.fwd, c.dest, c.dport);
            InResult { code: IPVS_HIT, fwd, raddr: c.daddr, rport }
        }
        InBrief::Miss(_) => InResult::code(IPVS_MISS),
        InBrief::Drop => InResult::code(IPVS_DROP),
    }
}

/// `conn_table.lookup_out`: `p` goes real server (`saddr:sport`) → client
/// (`daddr:dport`).
pub fn lookup_out(d: &mut Director, p: &Packet) -> OutResult {
    d.advance(p.now_ns);
    let now = d.now_ns();
    let Director { lb, conns, .. } = d;
    match conns.lookup_out(&mut lb.services, &p.tuple(), p.tcp_flags, now) {
        Some(c) => out_hit(&mut lb.services, &c, p.l3_len),
        None => OutResult { code: IPVS_MISS, vaddr: 0, vport: 0 },
    }
}

/// `conn_table.related_in`: an ICMP error about the packet client
/// (`saddr:sport`) → VIP (`daddr:dport`) of a conn (its quote, reversed):
/// IPVS_HIT with the conn's forwarding method and real server, statistics
/// counted as `lookup_in` counts them; the conn's state, timer and flags
/// are left alone and it is never dropped (kernel: `ip_vs_in_icmp`). A
/// message that is not `intact` (failed its checksum) about a conn is
/// IPVS_DROP, nothing counted: the kernel verifies once it found the conn.
pub fn related_in(d: &mut Director, p: &Packet, intact: bool) -> InResult {
    d.advance(p.now_ns);
    let now = d.now_ns();
    let Director { lb, conns, .. } = d;
    match conns.related_in(&mut lb.services, &p.tuple(), now) {
        Some(_) if !intact => InResult::code(IPVS_DROP),
        Some(c) => {
            if let Some(dest) = c.dest {
                count_in(d, dest, p.l3_len);
            }
            InResult::hit(&d.lb.services, &c)
        }
        None => InResult::code(IPVS_MISS),
    }
}

/// `conn_table.related_out`: an ICMP error about the packet real server
/// (`saddr:sport`) → client (`daddr:dport`) of a NAT conn: IPVS_HIT with the
/// virtual address and port, statistics as `lookup_out` counts them; the
/// conn is left alone (kernel: `ip_vs_out_icmp`, `handle_response_icmp`);
/// IPVS_DROP, nothing counted, for a message that is not `intact`.
pub fn related_out(d: &mut Director, p: &Packet, intact: bool) -> OutResult {
    d.advance(p.now_ns);
    let now = d.now_ns();
    let Director { lb, conns, .. } = d;
    match conns.related_out(&mut lb.services, &p.tuple(), now) {
        Some(_) if !intact => OutResult { code: IPVS_DROP, vaddr: 0, vport: 0 },
        Some(c) => out_hit(&mut lb.services, &c, p.l3_len),
        None => OutResult { code: IPVS_MISS, vaddr: 0, vport: 0 },
    }
}

/// `conn_table.related_tunnel`: an ICMP error about one of the director's
/// own tunnel packets (a router on the way to a VS/TUN real server
/// answered it), found by the packet it carried, client (`saddr:sport`) →
/// VIP (`daddr:dport`): IPVS_HIT when that packet has a conn, IPVS_MISS when
/// not, IPVS_DROP (nothing counted) when the message is not `intact`.
/// First, as the kernel does (`ip_vs_find_tunnel`, "only for known
/// tunnel"), the quoted tunnel header must go to a VS/TUN real server of
/// that encapsulation, `tunnel`: its destination address, protocol (4
/// IP-in-IP, 47 GRE, 17 GUE) and, for GUE, the quoted UDP destination
/// port, the real server's `--tun-port` (0 for the others, as the kernel
/// looks them up); else IPVS_MISS, whatever the rest. The
/// kernel (`ip_vs_in_icmp`, its tunnel case) then sends the client an error
/// of its own and counts it as an *outgoing* packet of the conn, `ip_len`
/// bytes (the packet it quotes, `skb->len` after the outer headers are
/// pulled): counted here when `relay` is set. The conn's state and timer
/// stay as they are.
pub fn related_tunnel(d: &mut Director, p: &Packet, intact: bool, relay: bool, tunnel: (u32, u8, u16)) -> u8 {
    d.advance(p.now_ns);
    let (addr, proto, port) = tunnel;
    let port = if proto == IP_PROTO_UDP { port } else { 0 };
    let known = match d.lb.services.tunnel_at(Ipv4Addr::from(addr), port) {
        Some(Tunnel::Ipip) => proto == IP_PROTO_IPIP,
        Some(Tunnel::Gre { .. }) => proto == IP_PROTO_GRE,
        Some(Tunnel::Gue { .. }) => proto == IP_PROTO_UDP,
        None => false,
    };
    if !known {
        return IPVS_MISS;
    }
    let now = d.now_ns();
    let Director { lb, conns, .. } = d;
    match conns.related_in(&mut lb.services, &p.tuple(), now) {
        Some(_) if !intact => IPVS_DROP,
        Some(c) => {
            if relay {
                out_hit(&mut lb.services, &c, p.l3_len);
            }
            IPVS_HIT
        }
        None => IPVS_MISS,
    }
}

/// The result of an outbound hit on conn `c`, its `bytes` counted for the
/// conn's dest when that still exists.
fn out_hit(services: &mut Services, c: &conn::Conn, bytes: u64) -> OutResult {
    if let Some(dest) = c.dest {
        if services.try_dest(dest).is_some() {
            services.count_out(dest, bytes);
        }
    }
    OutResult { code: IPVS_HIT, vaddr: c.vaddr, vport: c.vport }
}

fn count_in(d: &mut Director, dest: DestId, bytes: u64) {
    if d.lb.services.try_dest(dest).is_some() {
        d.lb.services.count_in(dest, bytes);
    }
}

/// `scheduler.schedule` for service `service`: `p` goes client → VIP and
/// has no conn (module docs).
pub fn schedule(d: &mut Director, service: u16, p: &Packet) -> InResult {
    d.advance(p.now_ns);
    if !d.conns.may_create(p.proto, p.tcp_flags) || p.sport == FTP_DATA_PORT {
        return InResult::code(IPVS_PASS);
    }
    let s = ServiceId(u32::from(service));
    let Some(svc) = d.lb.services.service(s) else {
        return InResult::code(IPVS_PASS);
    };
    let (svc_port, persistent, netmask, one_packet) =
        (svc.key.port, svc.persistent, u32::from(svc.netmask), svc.one_packet);
    // The connection table gets the latest time seen ([`Director::advance`]
    // may have left its clock behind); so do lblc/lblcr, in milliseconds,
    // the clock their garbage collectors ran to.
    let now = d.now_ns();
    let now_ms = now / 1_000_000;
    let info = PacketInfo {
        saddr: Ipv4Addr::from(p.saddr),
        sport: p.sport,
        daddr: Ipv4Addr::from(p.daddr),
        dport: p.dport,
        proto: p.proto,
    };
    let no_dest = || {
        // An FTP service's packet to another port goes to the local stack
        // (spec 1.12 step 2).
        InResult::code(if svc_port == conn::FTP_PORT && p.dport != conn::FTP_PORT { IPVS_PASS } else { IPVS_NO_DEST })
    };
    let Director { lb, conns, .. } = d;
    let services = &mut lb.services;
    let (dest, control) = match persistent {
        Some(timeout) => {
            let key = TemplateKey::for_packet(p.proto, p.saddr, netmask, p.daddr, p.dport, svc_port, None);
            match conns.template_lookup(services, &key, now).and_then(|t| t.dest.map(|dest| (dest, t.id))) {
                Some(found) => (found.0, Some(found.1)),
                None => {
                    let Some(dest) = services.schedule(s, &info, now_ms) else { return no_dest() };
                    let dst = services.dest(dest);
                    let (addr, port, fwd) = (u32::from(dst.addr), dst.port, dst.fwd);
                    let tport = template_dport(p.dport, svc_port, port);
                    match conns.template_insert(services, &key, addr, tport, dest, fwd, timeout, now) {
                        Ok(t) => (dest, Some(t.id)),
                        Err(_) => return InResult::code(IPVS_DROP),
                    }
                }
            }
        }
        None => {
            if p.dport != svc_port {
                // Non-persistent services serve their own port only.
                return no_dest();
            }
            match services.schedule(s, &info, now_ms) {
                Some(dest) => (dest, None),
                None => return no_dest(),
            }
        }
    };
    let dst = services.dest(dest);
    let mut new =
        NewConn::for_packet(&p.tuple(), dest, u32::from(dst.addr), conn_dport(p.dport, svc_port, dst.port), dst.fwd);
    new.control = control;
    new.one_packet = one_packet;
    match conns.insert(services, &new, p.tcp_flags, now) {
        Ok(c) => {
            services.count_conn(dest);
            services.count_in(dest, p.l3_len);
            InResult::hit(services, &c)
        }
        Err(_) => InResult::code(IPVS_DROP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::conn::tcp::flags::{ACK, RST, SYN};
    use crate::ipvs::sched::Scheduler;

    const VIP: u32 = 0xC633_640A; // 198.51.100.10
    const CLIENT: u32 = 0xCB00_7107; // 203.0.113.7

    fn director(conf: &str) -> Director {
        let mut d = Director::new(0);
        d.load(conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        d
    }

    fn pkt(sport: u16, dport: u16, flags: u8, t_s: u64) -> Packet {
        Packet {
            proto: 6,
            saddr: CLIENT,
            sport,
            daddr: VIP,
            dport,
            tcp_flags: flags,
            l3_len: 40,
            now_ns: t_s * 1_000_000_000,
        }
    }

    /// lookup_in, then schedule on a miss: what the program does.
    fn send(d: &mut Director, p: &Packet) -> InResult {
        let r = lookup_in(d, p);
        if r.code == IPVS_MISS {
            schedule(d, 0, p)
        } else {
            r
        }
    }

    const RR3: &str = "-A -t 198.51.100.10:80 -s rr\n\
        -a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m\n\
        -a -t 198.51.100.10:80 -r 10.1.1.22:8080 -m\n\
        -a -t 198.51.100.10:80 -r 10.1.1.23:8080 -m\n";

    #[test]
    fn rr_in_kernel_order_then_hits() {
        let mut d = director(RR3);
        let picks: Vec<u32> = (0..4).map(|i| send(&mut d, &pkt(40000 + i, 80, SYN, 1)).raddr & 0xff).collect();
        // Kernel list order is newest first: 23, 22, 21.
        assert_eq!(picks, [23, 22, 21, 23]);
        let ack = lookup_in(&mut d, &pkt(40001, 80, ACK, 2));
        assert_eq!(ack, InResult { code: IPVS_HIT, fwd: 0, raddr: 0x0A01_0116, rport: 8080 });
        let stats = d.lb.services.total_stats();
        assert_eq!((stats.conns, stats.inpkts, stats.inbytes), (4, 5, 200));
    }

    #[test]
    fn rst_and_non_syn_pass_unless_sloppy() {
        let mut d = director(RR3);
        assert_eq!(send(&mut d, &pkt(40000, 80, ACK, 1)).code, IPVS_PASS);
        assert_eq!(send(&mut d, &pkt(40000, 80, RST | SYN, 1)).code, IPVS_PASS);
        assert_eq!(send(&mut d, &pkt(20, 80, SYN, 1)).code, IPVS_PASS);
        d.load("sysctl sloppy_tcp 1\n", "s.conf").unwrap();
        assert_eq!(send(&mut d, &pkt(40000, 80, ACK, 1)).code, IPVS_HIT);
        assert_eq!(send(&mut d, &pkt(40001, 80, RST, 1)).code, IPVS_PASS);
        // UDP always schedules; an unknown service id passes.
        let udp = Packet { proto: 17, ..pkt(5353, 80, 0, 1) };
        assert_eq!(schedule(&mut d, 9, &udp).code, IPVS_PASS);
    }

    #[test]
    fn weight_zero_is_no_dest_and_nat_replies_hit() {
        let mut d = director("-A -t 198.51.100.10:80 -s wlc\n-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 0\n");
        assert_eq!(send(&mut d, &pkt(40000, 80, SYN, 1)).code, IPVS_NO_DEST);
        d.load("-e -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 1\n", "w.conf").unwrap();
        assert_eq!(send(&mut d, &pkt(40000, 80, SYN, 1)).code, IPVS_HIT);
        let reply = Packet {
            saddr: 0x0A01_0115,
            sport: 8080,
            daddr: CLIENT,
            dport: 40000,
            tcp_flags: SYN | ACK,
            ..pkt(0, 0, 0, 1)
        };
        assert_eq!(lookup_out(&mut d, &reply), OutResult { code: IPVS_HIT, vaddr: VIP, vport: 80 });
        assert_eq!(lookup_out(&mut d, &Packet { dport: 40001, ..reply }).code, IPVS_MISS);
        assert_eq!(d.lb.services.total_stats().outpkts, 1);
        // Another port of a non-persistent service: no dest.
        assert_eq!(schedule(&mut d, 0, &pkt(40002, 81, SYN, 1)).code, IPVS_NO_DEST);
    }

    #[test]
    fn conns_expire_across_a_gap_and_deleted_dests_drop() {
        let mut d = director(RR3);
        assert_eq!(send(&mut d, &pkt(40000, 80, SYN, 1)).code, IPVS_HIT);
        assert_eq!(d.conns.len(), 1);
        // SYN_RECV times out after 60 s: the ACK finds nothing.
        assert_eq!(lookup_in(&mut d, &pkt(40000, 80, ACK, 100)).code, IPVS_MISS);
        assert_eq!(d.conns.len(), 0);
        let hit = send(&mut d, &pkt(40001, 80, SYN, 101));
        assert_eq!(hit.code, IPVS_HIT);
        let last = hit.raddr & 0xff;
        d.load(&format!("-d -t 198.51.100.10:80 -r 10.1.1.{last}:8080\n"), "d.conf").unwrap();
        assert_eq!(lookup_in(&mut d, &pkt(40001, 80, ACK, 102)).code, IPVS_DROP);
    }

    /// `Director::advance` skips most packets (nothing due): timers must
    /// still fire at the first packet at or after their time, to the
    /// millisecond, and a packet whose time goes backwards still acts at
    /// the latest time seen.
    #[test]
    fn quiet_advances_keep_exact_expiry_times() {
        const MS: u64 = 1_000_000;
        let mut d = director(RR3);
        let t0 = 5_000 * MS + 123_456;
        let at = |sport, flags, ns| Packet { now_ns: ns, ..pkt(sport, 80, flags, 0) };
        assert_eq!(send(&mut d, &at(40000, SYN, t0)).code, IPVS_HIT);
        // Packets every 10 µs up to just before the deadline (SYN_RECV, 60 s
        // after the SYN, whole milliseconds): the conn is still there.
        let deadline = (t0 / MS + 60_000) * MS;
        let mut t = deadline - 50 * MS;
        while t < deadline {
            d.advance(t);
            t += 10_000;
        }
        assert_eq!(d.conns.len(), 1);
        d.advance(deadline - 1);
        assert_eq!(d.conns.len(), 1, "still due at {}", deadline);
        d.advance(deadline);
        assert_eq!(d.conns.len(), 0, "expired at its millisecond");
        // A later conn, then a packet from the past: it acts at the latest
        // time, so the deadline counts from there.
        let t1 = deadline + 2_000 * MS;
        assert_eq!(send(&mut d, &at(40001, SYN, t1)).code, IPVS_HIT);
        d.advance(t1 + 10 * MS);
        let c = lookup_in(&mut d, &at(40001, ACK, t1 - 500 * MS));
        assert_eq!(c.code, IPVS_HIT);
        let conn = d.conns.iter().next().expect("one conn");
        assert_eq!(conn.expires_ms, (t1 + 10 * MS) / MS + 900_000, "ESTABLISHED re-armed at the latest time");
        // A timed line is applied at its time, not at the next full second.
        let mut d = director(RR3);
        d.load("@1.5 -e -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 7\n", "t.conf").unwrap();
        d.advance(10 * 1_000_000_000);
        let weight = |d: &Director| {
            let s = d.lb.services.services().next().expect("service");
            let a = s.dests().iter().map(|&x| d.lb.services.dest(x)).find(|x| x.addr == Ipv4Addr::new(10, 1, 1, 21));
            a.expect("dest").weight
        };
        d.advance(11_499_999_999);
        assert_eq!(weight(&d), 1);
        d.advance(11_500_000_000);
        assert_eq!(weight(&d), 7);
    }

    /// A management change between two full timer runs starts its timers
    /// from the latest packet time, to the millisecond: a dest deleted
    /// 700 ms after the last full run arms the trash timer 60 s after the
    /// deletion, not 60 s after that run.
    #[test]
    fn loads_arm_timers_from_the_latest_packet_time() {
        const MS: u64 = 1_000_000;
        let mut d = director(RR3);
        assert_eq!(send(&mut d, &syn_at(40000, 1_000 * MS)).code, IPVS_HIT);
        d.advance(1_700 * MS);
        d.load("-d -t 198.51.100.10:80 -r 10.1.1.21:8080\n", "d.conf").unwrap();
        assert_eq!(d.lb.services.next_timer(), 1_700 + 60_000);
    }

    /// A director with one lblc or lblcr service (`sched`) of two NAT real
    /// servers, .21 then .22, after the `sysctl` line.
    fn locality(sched: &str, sysctl: &str) -> Director {
        director(&format!(
            "{sysctl}\n-A -t 198.51.100.10:80 -s {sched}\n\
             -a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m\n-a -t 198.51.100.10:80 -r 10.1.1.22:8080 -m\n"
        ))
    }

    /// The scheduler of the first service.
    fn sched0(d: &Director) -> &Scheduler {
        d.lb.services.service(ServiceId(0)).expect("service 0").sched_state()
    }

    /// A SYN from `CLIENT:sport` to the VIP's port 80 at `ns`.
    fn syn_at(sport: u16, ns: u64) -> Packet {
        Packet { now_ns: ns, ..pkt(sport, 80, SYN, 0) }
    }

    /// lblc's full expiration check deletes an entry unused for
    /// `lblc_expiration` to the millisecond, as the kernel's jiffies do
    /// (`ip_vs_lblc_full_check`: kept while the check runs before
    /// `lastuse + expiration`). The first full check runs 30 minutes after
    /// the first packet; an entry last used so that the check comes 1 ms
    /// before its expiry stays, one used so that it comes 1 ms after goes.
    /// (With lastuse kept in whole seconds both went.)
    #[test]
    fn lblc_entries_expire_to_the_millisecond() {
        const MS: u64 = 1_000_000;
        const SEC: u64 = 1_000 * MS;
        let entries = |d: &Director| match sched0(d) {
            Scheduler::Lblc(l) => l.table().len(),
            other => panic!("not lblc: {other:?}"),
        };
        let t0 = 1_700_000_000 * SEC;
        let full_check = t0 + 1800 * SEC;
        for (used, kept) in [(full_check - 60 * SEC + MS, true), (full_check - 60 * SEC - MS, false)] {
            let mut d = locality("lblc", "sysctl lblc_expiration 60");
            assert_eq!(send(&mut d, &syn_at(40000, t0)).code, IPVS_HIT);
            assert_eq!(send(&mut d, &syn_at(40001, used)).code, IPVS_HIT);
            d.advance(full_check - 1);
            assert_eq!(entries(&d), 1, "before the full check");
            d.advance(full_check);
            assert_eq!(entries(&d) == 1, kept, "used {} ms before the check", (full_check - used) / MS);
        }
    }

    /// lblcr trims a set of more than one dest once it has been unchanged
    /// for more than `lblcr_expiration`, to the millisecond (the kernel's
    /// `time_after(jiffies, set.lastmod + expiration)`): not at exactly
    /// `lastmod + expiration`, but 1 ms later. (In whole seconds a set
    /// changed at x.5 s was not trimmed until the next whole second.)
    #[test]
    fn lblcr_set_trims_to_the_millisecond() {
        const MS: u64 = 1_000_000;
        const SEC: u64 = 1_000 * MS;
        let members = |d: &Director| match sched0(d) {
            Scheduler::Lblcr(l) => l.table().get(VIP).map_or(0, |e| e.val.members.len()),
            other => panic!("not lblcr: {other:?}"),
        };
        let mut d = locality("lblcr", "sysctl lblcr_expiration 10");
        let at = syn_at;
        let changed = 1_700_000_000 * SEC + 500 * MS;
        // Two conns on .22 (the newest, picked first) make it
        // locality-overloaded; the third goes to .21, which joins the set.
        let picks: Vec<u32> = (0..3).map(|k| send(&mut d, &at(40000 + k, changed)).raddr & 0xff).collect();
        assert_eq!((picks, members(&d)), (vec![22, 22, 21], 2));
        assert_eq!(send(&mut d, &at(40003, changed + 10 * SEC)).code, IPVS_HIT);
        assert_eq!(members(&d), 2, "unchanged for exactly the expiration: kept");
        assert_eq!(send(&mut d, &at(40004, changed + 10 * SEC + MS)).code, IPVS_HIT);
        assert_eq!(members(&d), 1, "unchanged for 1 ms more: the most loaded member goes");
    }

    #[test]
    fn persistence_keeps_a_client_on_its_server() {
        let mut d = director(
            "-A -t 198.51.100.10:443 -s rr -p 300 -M 255.255.255.0\n\
             -a -t 198.51.100.10:443 -r 10.1.1.21 -g\n\
             -a -t 198.51.100.10:443 -r 10.1.1.22 -g\n",
        );
        let first = send(&mut d, &pkt(40000, 443, SYN, 1));
        assert_eq!((first.code, first.fwd, first.rport), (IPVS_HIT, 3, 443));
        for (i, client) in [CLIENT, CLIENT + 1].into_iter().enumerate() {
            let p = Packet { saddr: client, ..pkt(41000 + i as u16, 443, SYN, 2) };
            assert_eq!(send(&mut d, &p).raddr, first.raddr, "same /24, same server");
        }
        let other = Packet { saddr: 0x0A09_0909, ..pkt(41000, 443, SYN, 2) };
        assert_ne!(send(&mut d, &other).raddr, first.raddr);
        assert_eq!(d.conns.state_counts().templates, 2);
    }

    // ---- through a compiled program, both backends ----------------------

    use crate::ipvs::director::load_into_switch;
    use crate::switch::tests::compile;
    use crate::switch::{Backend, DropReason, OutPacket, Outcome, Switch, SwitchOptions};

    /// A minimal NAT load balancer: port 0 faces clients, port 1 the real
    /// servers; NO_DEST goes to port 2 cut to the IP header, PASS to port 3.
    pub(crate) const LB: &str = r#"
        header eth_t { bit<48> dst; bit<48> src; bit<16> etype; }
        header ipv4_t { bit<4> version; bit<4> ihl; bit<8> tos; bit<16> total_len; bit<16> id;
            bit<3> flags; bit<13> frag; bit<8> ttl; bit<8> protocol; bit<16> csum;
            bit<32> src_addr; bit<32> dst_addr; }
        header tcp_t { bit<16> sport; bit<16> dport; bit<32> seq; bit<32> ack; bit<4> off;
            bit<4> res; bit<8> flags; bit<16> win; bit<16> csum; bit<16> urg; }
        struct hs { eth_t eth; ipv4_t ipv4; tcp_t tcp; }
        struct m_t { bit<16> service; bit<8> code; bit<8> fwd; bit<32> raddr; bit<16> rport;
            bit<32> vaddr; bit<16> vport; }
        parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {
            state start { pkt.extract(hdr.eth); transition select(hdr.eth.etype) { 0x0800: ip; default: accept; } }
            state ip { pkt.extract(hdr.ipv4); transition select(hdr.ipv4.protocol) { 6: tcp; default: accept; } }
            state tcp { pkt.extract(hdr.tcp); transition accept; }
        }
        control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {
            conn_table(0) conns;
            scheduler() sched;
            action set_service(bit<16> service) { meta.service = service; }
            table ipvs_services {
                key = { hdr.ipv4.protocol: exact; hdr.ipv4.dst_addr: exact; hdr.tcp.dport: ternary; }
                actions = { set_service; NoAction; }
            }
            apply {
                if (std.ingress_port == 1) {
                    meta.code = conns.lookup_out(hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.tcp.sport,
                        hdr.ipv4.dst_addr, hdr.tcp.dport, hdr.tcp.flags, hdr.ipv4.total_len,
                        meta.vaddr, meta.vport);
                    if (meta.code == IPVS_HIT) {
                        hdr.ipv4.src_addr = meta.vaddr; hdr.tcp.sport = meta.vport; std.egress_spec = 0;
                    } else { mark_to_drop(std); }
                    exit;
                }
                meta.code = conns.lookup_in(hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.tcp.sport,
                    hdr.ipv4.dst_addr, hdr.tcp.dport, hdr.tcp.flags, hdr.ipv4.total_len,
                    meta.fwd, meta.raddr, meta.rport);
                if (meta.code == IPVS_MISS) {
                    if (ipvs_services.apply().hit) {
                        meta.code = sched.schedule(meta.service, hdr.ipv4.protocol, hdr.ipv4.src_addr,
                            hdr.tcp.sport, hdr.ipv4.dst_addr, hdr.tcp.dport, hdr.tcp.flags,
                            hdr.ipv4.total_len, meta.fwd, meta.raddr, meta.rport);
                    } else { meta.code = IPVS_PASS; }
                }
                if (meta.code == IPVS_HIT) {
                    hdr.ipv4.dst_addr = meta.raddr; hdr.tcp.dport = meta.rport; std.egress_spec = 1;
                } else if (meta.code == IPVS_NO_DEST) {
                    std.egress_spec = 2; truncate(34);
                } else if (meta.code == IPVS_PASS) {
                    std.egress_spec = 3;
                } else { mark_to_drop(std); }
            }
        }
        control D(packet_out pkt, in hs hdr) { apply { pkt.emit(hdr.eth); pkt.emit(hdr.ipv4); pkt.emit(hdr.tcp); } }
        Pipeline(P(), C(), D()) main;
    "#;

    /// An Ethernet + IPv4 + TCP frame (54 bytes; the IPv4 header checksum
    /// set, as `lb.p4lite` drops a wrong one; the TCP checksum not).
    pub(crate) fn frame(src: u32, sport: u16, dst: u32, dport: u16, flags: u8) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend([0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend(src.to_be_bytes());
        f.extend(dst.to_be_bytes());
        f.extend(sport.to_be_bytes());
        f.extend(dport.to_be_bytes());
        f.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        let sum = crate::externs::checksum::csum16_bytes(&f[14..34]);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        f
    }

    /// Sets the TTL of a frame's IPv4 header and its checksum to match.
    fn set_ttl(f: &mut [u8], ttl: u8) {
        f[22] = ttl;
        f[24..26].fill(0);
        let sum = crate::externs::checksum::csum16_bytes(&f[14..34]);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
    }

    fn be32(b: &[u8]) -> u32 {
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    fn switch(backend: Backend, conf: &str) -> Switch {
        let mut sw =
            Switch::new(compile(LB), SwitchOptions { backend, trace: false }).unwrap_or_else(|e| panic!("{e}"));
        load_into_switch(&mut sw, conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        sw
    }

    /// Sends one client frame at `t_s`; returns (out port, dst addr, dst port, length) or None if dropped.
    fn client(sw: &mut Switch, sport: u16, flags: u8, t_s: u64) -> Option<(u16, u32, u16, usize)> {
        let mut out: Vec<OutPacket> = Vec::new();
        let o = sw.process(0, &frame(CLIENT, sport, VIP, 80, flags), t_s * 1_000_000_000, &mut out);
        if o != Outcome::Forwarded {
            return None;
        }
        let p = out.pop()?;
        let dport = p.data.get(36..38).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
        Some((p.port, be32(&p.data[30..34]), dport, p.data.len()))
    }

    #[test]
    fn the_switch_balances_with_both_backends() {
        for backend in [Backend::Interp, Backend::Jit] {
            let mut sw = switch(backend, RR3);
            let rs = |n: u32| 0x0A01_0100 + n;
            // SYNs: rr in kernel list order (newest first).
            for (i, n) in [23, 22, 21].into_iter().enumerate() {
                assert_eq!(client(&mut sw, 40000 + i as u16, SYN, 1), Some((1, rs(n), 8080, 54)), "{backend:?}");
            }
            // The ACK of the second conn hits it.
            assert_eq!(client(&mut sw, 40001, ACK, 2), Some((1, rs(22), 8080, 54)));
            // RST and a stray ACK pass.
            assert_eq!(client(&mut sw, 50000, RST, 2).map(|r| r.0), Some(3));
            assert_eq!(client(&mut sw, 50001, ACK, 2).map(|r| r.0), Some(3));
            // The real server's reply is rewritten back to the VIP.
            let mut out = Vec::new();
            let reply = frame(rs(22), 8080, CLIENT, 40001, SYN | ACK);
            assert_eq!(sw.process(1, &reply, 2_500_000_000, &mut out), Outcome::Forwarded);
            assert_eq!((out[0].port, be32(&out[0].data[26..30]), &out[0].data[34..36]), (0, VIP, &[0, 80][..]));
            let unknown = frame(rs(22), 8080, CLIENT, 49999, ACK);
            assert!(matches!(sw.process(1, &unknown, 2_500_000_000, &mut out), Outcome::Dropped(_)));
            // Connections expire with packet time: after 1000 s the ACK passes.
            assert_eq!(client(&mut sw, 40001, ACK, 1000).map(|r| r.0), Some(3));
            let d = sw.externs().director().expect("director");
            assert_eq!(d.conns.len(), 0, "{backend:?}");
            let listing = d.list("-Ln --stats\n").unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(
                listing[3], "TCP  198.51.100.10:80                    3        4        1      160       40",
                "{listing:#?}"
            );
            // Weight 0 everywhere: no dest, answered on port 2, cut to 34 bytes.
            let quiesce: String =
                [21, 22, 23].map(|n| format!("-e -t 198.51.100.10:80 -r 10.1.1.{n}:8080 -m -w 0\n")).concat();
            load_into_switch(&mut sw, &quiesce, "w.conf").unwrap_or_else(|e| panic!("{e:?}"));
            assert_eq!(client(&mut sw, 40010, SYN, 1001), Some((2, VIP, 0, 34)));
        }
    }

    // ---- lb.p4lite: the statistics count the IP length --------------------

    use crate::ipvs::service::Stats;
    use crate::switch::tests::example;

    const LB_CLIENT: u32 = 0xC000_0232; // 192.0.2.50

    /// `programs/lb.p4lite` with `pcaps/lb_nat/lb.conf` (port 1 faces the
    /// clients and holds the VIP, port 2 the real servers; 198.51.100.10:80
    /// is VS/NAT over three real servers).
    fn lb_nat(backend: Backend) -> Switch {
        let conf_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/lb_nat/lb.conf");
        let conf = std::fs::read_to_string(conf_path).unwrap_or_else(|e| panic!("{conf_path}: {e}"));
        let mut sw = Switch::new(compile(&example("lb")), SwitchOptions { backend, trace: false })
            .unwrap_or_else(|e| panic!("{e}"));
        load_into_switch(&mut sw, &conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        sw
    }

    /// `data` addressed to the MAC address of `pcaps/lb_nat/lb.conf`'s
    /// port `port` (lb.p4lite drops frames to another host's, as Linux's
    /// ip_rcv does).
    fn on_lb_port(port: u16, data: &[u8]) -> Vec<u8> {
        let mut f = data.to_vec();
        let mac: [u8; 6] = if port == 2 { [2, 0, 0, 0, 1, 1] } else { [2, 0, 0, 0, 0, 1] };
        f[..6].copy_from_slice(&mac);
        f
    }

    /// An ICMP port unreachable from `src` to `dst` (IP length 56) quoting
    /// the first 8 TCP bytes of a 40-byte packet `qsrc:qsport` →
    /// `qdst:qdport`, followed by a 4-byte Ethernet trailer that is not part
    /// of the IP packet. Its IPv4 and ICMP checksums are right (the latter
    /// over the 36 bytes of the ICMP message, not the trailer).
    fn icmp_error(src: u32, dst: u32, qsrc: u32, qsport: u16, qdst: u32, qdport: u16) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        f.extend([0x45, 0, 0, 56, 0, 1, 0, 0, 64, 1, 0, 0]);
        f.extend(src.to_be_bytes());
        f.extend(dst.to_be_bytes());
        f.extend([3, 3, 0, 0, 0, 0, 0, 0]);
        f.extend([0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend(qsrc.to_be_bytes());
        f.extend(qdst.to_be_bytes());
        f.extend(qsport.to_be_bytes());
        f.extend(qdport.to_be_bytes());
        f.extend([0, 0, 0, 1]);
        let sum = crate::externs::checksum::csum16_bytes(&f[14..34]);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        let sum = crate::externs::checksum::csum16_bytes(&f[34..70]);
        f[36..38].copy_from_slice(&sum.to_be_bytes());
        f.extend([0xEE; 4]);
        f
    }

    /// The kernel counts `skb->len`, the IP packet's length: a 40-byte SYN
    /// in a padded 60-byte minimum frame counts 40 bytes (not 46), in and
    /// out, and an ICMP error about a conn counts its own IP length (not
    /// the quoted packet's, nor an Ethernet trailer).
    #[test]
    fn lb_statistics_count_the_ip_length_not_the_frame() {
        for backend in [Backend::Interp, Backend::Jit] {
            let mut sw = lb_nat(backend);
            let mut send = |port: u16, data: &[u8]| {
                let mut out = Vec::new();
                let o = sw.process(port, &on_lb_port(port, data), 1_000_000_000, &mut out);
                assert_eq!(o, Outcome::Forwarded, "{backend:?}: {data:02x?}");
                assert_eq!(out.len(), 1, "{backend:?}");
                out.remove(0)
            };
            let mut syn = frame(LB_CLIENT, 40000, VIP, 80, SYN);
            syn.resize(60, 0);
            let to_rs = send(1, &syn);
            assert_eq!(to_rs.port, 2, "{backend:?}");
            let rs = be32(&to_rs.data[30..34]);
            let mut reply = frame(rs, 8080, LB_CLIENT, 40000, SYN | ACK);
            reply.resize(60, 0);
            let to_client = send(2, &reply);
            assert_eq!((to_client.port, be32(&to_client.data[26..30])), (1, VIP), "{backend:?}");
            // ICMP errors about the conn, either way (spec 3.1.1).
            assert_eq!(send(1, &icmp_error(LB_CLIENT, VIP, VIP, 80, LB_CLIENT, 40000)).port, 2, "{backend:?}");
            assert_eq!(send(2, &icmp_error(rs, LB_CLIENT, LB_CLIENT, 40000, rs, 8080)).port, 1, "{backend:?}");

            let d = sw.externs().director().expect("director");
            let expected = Stats { conns: 1, inpkts: 2, outpkts: 2, inbytes: 40 + 56, outbytes: 40 + 56 };
            let svc = d.lb.services.services().find(|s| s.key.port == 80).expect("service :80");
            assert_eq!(svc.stats, expected, "{backend:?}: service");
            for &id in svc.dests() {
                let dest = d.lb.services.dest(id);
                let want = if u32::from(dest.addr) == rs { expected } else { Stats::default() };
                assert_eq!(dest.stats, want, "{backend:?}: dest {}", dest.addr);
            }
            assert_eq!(*d.lb.services.total_stats(), expected, "{backend:?}: total");
        }
    }

    /// An ICMP error about a conn changes neither its TCP state, nor its
    /// timer, nor its flags (kernel: `ip_vs_in_icmp` / `ip_vs_out_icmp`
    /// only count it and release the conn): a "fragmentation needed" about
    /// an ESTABLISHED conn used to run the state machine with no flags,
    /// closing it (CLOSE, 10 s). And an error about the conn of a deleted
    /// real server is still forwarded, where a packet of the conn is dropped.
    #[test]
    fn icmp_errors_leave_the_conn_as_it_was() {
        for backend in [Backend::Interp, Backend::Jit] {
            let mut sw = lb_nat(backend);
            let send = |sw: &mut Switch, port: u16, data: &[u8], t_s: u64| {
                let mut out = Vec::new();
                let o = sw.process(port, &on_lb_port(port, data), t_s * 1_000_000_000, &mut out);
                (o, out.pop())
            };
            let (_, to_rs) = send(&mut sw, 1, &frame(LB_CLIENT, 40000, VIP, 80, SYN), 1);
            let rs = be32(&to_rs.expect("SYN forwarded").data[30..34]);
            send(&mut sw, 2, &frame(rs, 8080, LB_CLIENT, 40000, SYN | ACK), 1);
            send(&mut sw, 1, &frame(LB_CLIENT, 40000, VIP, 80, ACK), 2);
            let tuple = Tuple { proto: 6, saddr: LB_CLIENT, sport: 40000, daddr: VIP, dport: 80 };
            let conn = |sw: &Switch| sw.externs().director().and_then(|d| d.conns.find_in_conn(&tuple));
            let before = conn(&sw).expect("the conn");
            assert_eq!(before.state_name(), "ESTABLISHED", "{backend:?}");
            // Both ways, 5 s later: forwarded, the conn untouched.
            let (o, out) = send(&mut sw, 1, &icmp_error(LB_CLIENT, VIP, VIP, 80, LB_CLIENT, 40000), 7);
            assert_eq!((o, out.map(|p| p.port)), (Outcome::Forwarded, Some(2)), "{backend:?}");
            let (o, out) = send(&mut sw, 2, &icmp_error(rs, LB_CLIENT, LB_CLIENT, 40000, rs, 8080), 7);
            assert_eq!((o, out.map(|p| p.port)), (Outcome::Forwarded, Some(1)), "{backend:?}");
            assert_eq!(conn(&sw), Some(before), "{backend:?}");
            // Its real server deleted: the conn's packets are dropped, an
            // error about it still goes through.
            let del = format!("-d -t 198.51.100.10:80 -r {}:8080\n", std::net::Ipv4Addr::from(rs));
            load_into_switch(&mut sw, &del, "del.conf").unwrap_or_else(|e| panic!("{e:?}"));
            let (o, _) = send(&mut sw, 1, &frame(LB_CLIENT, 40000, VIP, 80, ACK), 8);
            assert!(matches!(o, Outcome::Dropped(_)), "{backend:?}: {o:?}");
            let (o, out) = send(&mut sw, 1, &icmp_error(LB_CLIENT, VIP, VIP, 80, LB_CLIENT, 40000), 8);
            assert_eq!((o, out.map(|p| p.port)), (Outcome::Forwarded, Some(2)), "{backend:?}");
        }
    }

    /// An ICMP error about a conn whose ICMP checksum is wrong is dropped,
    /// either way, and counts nothing (the kernel verifies it once it found
    /// the conn, before its statistics: `ip_vs_in_icmp`,
    /// `handle_response_icmp`); the same error with the right checksum
    /// goes through, and its ICMP checksum is recomputed over the
    /// translated message.
    #[test]
    fn icmp_errors_with_a_wrong_checksum_are_dropped_uncounted() {
        for backend in [Backend::Interp, Backend::Jit] {
            let mut sw = lb_nat(backend);
            let send = |sw: &mut Switch, port: u16, data: &[u8]| {
                let mut out = Vec::new();
                let o = sw.process(port, &on_lb_port(port, data), 1_000_000_000, &mut out);
                (o, out.pop())
            };
            let (_, to_rs) = send(&mut sw, 1, &frame(LB_CLIENT, 40000, VIP, 80, SYN));
            let rs = be32(&to_rs.expect("SYN forwarded").data[30..34]);
            send(&mut sw, 2, &frame(rs, 8080, LB_CLIENT, 40000, SYN | ACK));
            let stats = |sw: &Switch| *sw.externs().director().expect("director").lb.services.total_stats();
            let drops = |sw: &Switch| sw.externs().counter("LbIngress.drops").and_then(|c| c.read(9));
            let before = stats(&sw);
            let inbound = icmp_error(LB_CLIENT, VIP, VIP, 80, LB_CLIENT, 40000);
            let outbound = icmp_error(rs, LB_CLIENT, LB_CLIENT, 40000, rs, 8080);
            for (port, good) in [(1, &inbound), (2, &outbound)] {
                let mut bad = good.clone();
                bad[37] ^= 0x01;
                let counted = stats(&sw);
                let (o, out) = send(&mut sw, port, &bad);
                assert_eq!((o, out.is_none()), (Outcome::Dropped(DropReason::MarkToDrop), true), "{backend:?}");
                assert_eq!(stats(&sw), counted, "{backend:?}: a dropped error counts nothing");
                let (o, out) = send(&mut sw, port, good);
                assert_eq!(o, Outcome::Forwarded, "{backend:?}");
                let d = out.expect("forwarded").data;
                let len = usize::from(u16::from_be_bytes([d[16], d[17]]));
                assert_eq!(
                    crate::externs::checksum::csum16_bytes(&d[34..14 + len]),
                    0,
                    "{backend:?}: the translated message's ICMP checksum"
                );
            }
            assert_eq!(drops(&sw), Some((2, 2 * inbound.len() as u64)), "{backend:?}: DROP_BAD_ICMP, two frames");
            assert_eq!(stats(&sw).inpkts, before.inpkts + 1, "{backend:?}");
            assert_eq!(stats(&sw).outpkts, before.outpkts + 1, "{backend:?}");
        }
    }

    /// The director's timers run from the first packet, not from the epoch:
    /// lblc's garbage collector (a full expiration every 30 minutes) is
    /// phased from the capture's start, so where a capture's clock stands
    /// does not change what it expires. Two clients 150 s apart, with
    /// `lblc_expiration 60`: the locality entry of the first is still there
    /// for the second (the first full expiration is 30 minutes in),
    /// whatever the capture's start time. (With the collector phased from
    /// the epoch, some of these starts put a full expiration between the two
    /// and the second client went to the other server.)
    #[test]
    fn lblc_timers_start_with_the_first_packet() {
        let conf_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/lb_nat/lb.conf");
        let net: String = std::fs::read_to_string(conf_path)
            .unwrap_or_else(|e| panic!("{conf_path}: {e}"))
            .lines()
            .filter(|l| ["port", "neigh", "route"].iter().any(|k| l.starts_with(k)))
            .map(|l| format!("{l}\n"))
            .collect();
        let conf = format!(
            "{net}sysctl lblc_expiration 60\n-A -t 198.51.100.10:80 -s lblc\n\
             -a -t 198.51.100.10:80 -r 10.1.1.21 -m\n-a -t 198.51.100.10:80 -r 10.1.1.22 -m\n"
        );
        let program = compile(&example("lb"));
        let mut seen = std::collections::BTreeSet::new();
        // Starts one minute apart over the 30-minute round.
        for k in 0..30u64 {
            let t0 = (1_700_000_000 + 60 * k) * 1_000_000_000;
            let mut sw = Switch::new(program.clone(), SwitchOptions { backend: Backend::Interp, trace: false })
                .unwrap_or_else(|e| panic!("{e}"));
            load_into_switch(&mut sw, &conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
            let mut to = |client: u32, flags: u8, t: u64| {
                let mut out = Vec::new();
                let o = sw.process(1, &frame(client, 40000, VIP, 80, flags), t, &mut out);
                assert_eq!((o, out.len()), (Outcome::Forwarded, 1), "start {k} min");
                be32(&out[0].data[30..34])
            };
            let first = to(LB_CLIENT, SYN, t0 + 1_000_000);
            assert_eq!(to(LB_CLIENT, ACK, t0 + 2_000_000), first);
            let second = to(LB_CLIENT + 1, SYN, t0 + 150_000_000_000);
            assert_eq!(second, first, "start {k} min: the locality entry expired early");
            seen.insert(first);
        }
        assert_eq!(seen.len(), 1, "lblc picks the same server for the VIP every time");
    }

    /// A real server's reply, or its ICMP error about a client's packet,
    /// whose TTL would reach 0 is answered by Linux's IP forwarding before
    /// IPVS sees it: the connection keeps its state and counts nothing. The
    /// reply gets ICMP time exceeded from the LAN port's address; the ICMP
    /// error is dropped (no ICMP error is sent about an ICMP error).
    #[test]
    fn lb_replies_with_ttl_1_leave_the_connection_alone() {
        for backend in [Backend::Interp, Backend::Jit] {
            let mut sw = lb_nat(backend);
            let mut out = Vec::new();
            let o = sw.process(1, &frame(LB_CLIENT, 40000, VIP, 80, SYN), 1_000_000_000, &mut out);
            assert_eq!((o, out.len()), (Outcome::Forwarded, 1), "{backend:?}");
            let rs = be32(&out[0].data[30..34]);
            let mut reply = frame(rs, 8080, LB_CLIENT, 40000, ACK);
            set_ttl(&mut reply, 1);
            out.clear();
            let o = sw.process(2, &on_lb_port(2, &reply), 1_100_000_000, &mut out);
            assert_eq!((o, out.len()), (Outcome::Forwarded, 1), "{backend:?}");
            let icmp = &out[0].data;
            assert_eq!((out[0].port, icmp[23], icmp[34]), (2, 1, 11), "{backend:?}: ICMP time exceeded back");
            assert_eq!(be32(&icmp[26..30]), 0x0A01_0101, "{backend:?}: from the LAN port's address");
            assert_eq!(be32(&icmp[54..58]), rs, "{backend:?}: quoting the reply as it came");
            let mut error = icmp_error(rs, LB_CLIENT, LB_CLIENT, 40000, rs, 8080);
            set_ttl(&mut error, 1);
            out.clear();
            let o = sw.process(2, &on_lb_port(2, &error), 1_200_000_000, &mut out);
            assert!(matches!(o, Outcome::Dropped(_)), "{backend:?}: {o:?}");

            let d = sw.externs().director().expect("director");
            let conns = d.list("-Lnc\n").unwrap_or_else(|e| panic!("{e:?}"));
            assert!(conns.iter().any(|l| l.contains("SYN_RECV")), "{backend:?}: {conns:#?}");
            let expected = Stats { conns: 1, inpkts: 1, outpkts: 0, inbytes: 40, outbytes: 0 };
            assert_eq!(*d.lb.services.total_stats(), expected, "{backend:?}");
        }
    }

    /// A router's ICMP error to the director about one of its IP-in-IP
    /// packets (`pcaps/lb_tun_dr/lb.conf`: VS/TUN to 192.0.2.50 from
    /// 192.0.2.1): frame from the router 192.0.2.254 to `dst`, quoting the
    /// tunnel header and the client's 40-byte TCP packet `CLIENT:sport` →
    /// VIP:80 (DF as `df`) whole; both checksums right.
    fn tunnel_error(dst: u32, icmp_type: u8, code: u8, mtu: u16, sport: u16, df: bool) -> Vec<u8> {
        let flags = if df { 0x40 } else { 0 };
        let mut inner = vec![0x45, 0, 0, 40, 0, 1, flags, 0, 63, 6, 0, 0];
        inner.extend(CLIENT.to_be_bytes());
        inner.extend(VIP.to_be_bytes());
        inner.extend(sport.to_be_bytes());
        inner.extend(80u16.to_be_bytes());
        inner.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, ACK, 0xff, 0xff, 0, 0, 0, 0]);
        let mut tunnel = vec![0x45, 0, 0, 60, 0, 0, flags, 0, 63, 4, 0, 0];
        tunnel.extend(0xC000_0201u32.to_be_bytes());
        tunnel.extend(0xC000_0232u32.to_be_bytes());
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 0xfe, 0x08, 0x00];
        f.extend([0x45, 0, 0, 20 + 8 + 60, 0, 1, 0, 0, 64, 1, 0, 0]);
        f.extend(0xC000_02FEu32.to_be_bytes());
        f.extend(dst.to_be_bytes());
        f.extend([icmp_type, code, 0, 0, 0, 0]);
        f.extend(mtu.to_be_bytes());
        f.extend(tunnel);
        f.extend(inner);
        for (start, end) in [(14, 34), (42, 62), (62, 82)] {
            let sum = crate::externs::checksum::csum16_bytes(&f[start..end]);
            f[start + 10..start + 12].copy_from_slice(&sum.to_be_bytes());
        }
        let sum = crate::externs::checksum::csum16_bytes(&f[34..]);
        f[36..38].copy_from_slice(&sum.to_be_bytes());
        f
    }

    /// Spec 3.2: a router's "fragmentation needed" about one of the
    /// director's IP-in-IP packets becomes one for the client, from the
    /// VIP, with the MTU less 20, and counts as an outgoing packet of the
    /// conn: the client's packet it quotes, 40 bytes (the kernel's
    /// `ip_vs_out_stats` after pulling the outer headers). Not sent, nor
    /// counted, for a client packet without DF, or with a wrong checksum;
    /// to another address it is routed, nothing counted.
    #[test]
    fn tunnel_errors_are_relayed_to_the_client() {
        const DIRECTOR: u32 = 0xC000_0201; // 192.0.2.1
        for backend in [Backend::Interp, Backend::Jit] {
            let conf_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../pcaps/lb_tun_dr/lb.conf");
            let conf = std::fs::read_to_string(conf_path).unwrap_or_else(|e| panic!("{conf_path}: {e}"));
            let mut sw = Switch::new(compile(&example("lb")), SwitchOptions { backend, trace: false })
                .unwrap_or_else(|e| panic!("{e}"));
            load_into_switch(&mut sw, &conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
            let send = |sw: &mut Switch, data: &[u8]| {
                let mut out = Vec::new();
                let o = sw.process(1, data, 1_000_000_000, &mut out);
                (o, out.pop())
            };
            for sport in [40000, 40001] {
                let mut syn = frame(CLIENT, sport, VIP, 80, SYN);
                if sport == 40001 {
                    syn[20] = 0; // no DF
                    syn[24..26].fill(0);
                    let sum = crate::externs::checksum::csum16_bytes(&syn[14..34]);
                    syn[24..26].copy_from_slice(&sum.to_be_bytes());
                }
                let (o, out) = send(&mut sw, &syn);
                assert_eq!((o, out.map(|p| be32(&p.data[30..34]))), (Outcome::Forwarded, Some(0xC000_0232)));
            }
            let stats = |sw: &Switch| *sw.externs().director().expect("director").lb.services.total_stats();
            let before = stats(&sw);

            let (o, out) = send(&mut sw, &tunnel_error(DIRECTOR, 3, 4, 1400, 40000, true));
            assert_eq!(o, Outcome::Forwarded, "{backend:?}");
            let d = out.expect("relayed").data;
            assert_eq!((be32(&d[26..30]), be32(&d[30..34])), (VIP, CLIENT), "{backend:?}: VIP -> client");
            // The first report is relayed with the old route MTU less 20
            // (1480): the path MTU 1400 is learnt, but Linux's cached route
            // to the real server has not seen it yet (pcaps/lb_tun_pmtu).
            assert_eq!((d[34], d[35], &d[38..42]), (3, 4, &[0, 0, 0x05, 0xC8][..]), "{backend:?}: MTU 1480");
            assert_eq!((be32(&d[54..58]), be32(&d[58..62])), (CLIENT, VIP), "{backend:?}: quotes the client's packet");
            // The whole client packet the router quoted (40 bytes), as Linux's
            // icmp_send quotes what is left after the tunnel header.
            assert_eq!(d.len(), 14 + 28 + 40, "{backend:?}");
            assert_eq!(crate::externs::checksum::csum16_bytes(&d[34..]), 0, "{backend:?}: ICMP checksum");
            let relayed = stats(&sw);
            assert_eq!((relayed.outpkts, relayed.outbytes), (before.outpkts + 1, before.outbytes + 40), "{backend:?}");
            assert_eq!((relayed.inpkts, relayed.inbytes), (before.inpkts, before.inbytes), "{backend:?}");

            let (o, out) = send(&mut sw, &tunnel_error(DIRECTOR, 3, 4, 1400, 40001, false));
            assert_eq!((o, out.is_none()), (Outcome::Dropped(DropReason::MarkToDrop), true), "{backend:?}: no DF");
            let mut bad = tunnel_error(DIRECTOR, 3, 4, 1400, 40000, true);
            bad[40] ^= 1;
            let (o, _) = send(&mut sw, &bad);
            assert_eq!(o, Outcome::Dropped(DropReason::MarkToDrop), "{backend:?}: wrong checksum");
            assert_eq!(stats(&sw), relayed, "{backend:?}: neither is counted");
            let drops = |sw: &Switch, i| sw.externs().counter("LbIngress.drops").and_then(|c| c.read(i)).map(|c| c.0);
            assert_eq!(
                (drops(&sw, 11), drops(&sw, 9)),
                (Some(1), Some(1)),
                "{backend:?}: DROP_TUNNEL_ICMP, DROP_BAD_ICMP"
            );

            let (o, out) = send(&mut sw, &tunnel_error(0xCB00_7109, 3, 4, 1400, 40000, true));
            let routed = out.expect("routed").data;
            assert_eq!((o, be32(&routed[30..34]), routed[34]), (Outcome::Forwarded, 0xCB00_7109, 3), "{backend:?}");
            assert_eq!(stats(&sw), relayed, "{backend:?}: a transit error counts nothing");
        }
    }
}
