//! IPVS connection synchronisation (spec section 5): the master and backup
//! sync daemons of `ipvsadm --start-daemon`, so that a backup director
//! knows the master's connections when it takes over.
//!
//! - [`msg`]: the wire format (versions 1 and 0), encoding and the
//!   backup's validation.
//! - The table's part, which packets make the master send a conn and how a
//!   backup applies a record, is in `ConnTable` (`conn::sync`).
//! - This module: the daemons' settings ([`Daemons`], kept with the rest of
//!   `lb.conf`'s state and listed by `ipvsadm -L --daemon`), the master's
//!   message packing and framing, and the backup's receive path
//!   ([`SyncRuntime`]).
//!
//! # How the messages travel
//! The kernel sends from a UDP socket of the director's own IP stack,
//! through the multicast interface. p4lite has no host stack, so the
//! runtime builds the whole frame itself, as that socket would leave it:
//! Ethernet to the group's multicast MAC (`01:00:5e` + the group's low 23
//! bits) from the port's MAC; IPv4 from the port's first address to the
//! group, TTL `--mcast-ttl` (1), TOS 0, DF clear (the kernel sets
//! `IP_PMTUDISC_DONT`), the IP ID counting from 0 per master; UDP from port
//! [`SYNC_SOURCE_PORT`] (the kernel binds an ephemeral port) to
//! `--mcast-port` (8848), with its checksum. The switch sends these frames
//! out of the port named by `--mcast-interface`, after the packet that
//! completed them ([`crate::switch::Switch::take_originated`]); they never
//! pass through the pipeline, and the switch does not read them back
//! (multicast loopback is off in the kernel too).
//!
//! A message is sent when the next record would not fit in `--sync-maxlen`
//! bytes (or it holds 255 records), and a partly filled one once packet
//! time is [`FLUSH_AFTER_NS`] (2 s) past its first record, checked after
//! every packet and on the live driver's idle ticks. The kernel's thread
//! sends a full message within 20 ms and checks the 2-second rule once a
//! second; here both happen at the first packet that reaches them. Stopping
//! the master discards what it had not sent, as the kernel does; the end of
//! a replay sends nothing more either.
//!
//! p4lite sends messages unfragmented: a master whose `--sync-maxlen` (by
//! default 1472) does not fit the port's MTU less 28 is refused at start.
//!
//! # Receiving
//! `lb.p4lite` hands a UDP datagram to a multicast group to
//! `conn_table.sync_receive` (with the port it arrived on, its group and
//! destination port); when a backup daemon listens there
//! ([`SyncRuntime::receive`]), the message is decoded and applied, and the
//! program drops the packet as delivered. As the kernel's receive socket
//! does, the backup reads at most its `sync-maxlen` bytes of a datagram (a
//! longer one fails the size check), takes messages of its `--syncid` only
//! (any with syncid 0), and applies records one by one: each finds its
//! service by protocol, virtual address and port and its real server by
//! address and port (then port 0), and creates or updates the entry
//! (`ConnTable::sync_apply`). Records p4lite cannot hold (IPv6, `NO_CPORT`,
//! persistence-engine data, protocols other than TCP and UDP) are skipped
//! and counted.

pub mod msg;

use std::net::Ipv4Addr;

use self::msg::{conn_flag, MessageBuilder, SyncConn, Version};
use crate::externs::checksum::csum16_bytes;
use crate::ipvs::admin::config::{Mac, NetConfig};
use crate::ipvs::conn::{flag, Conn, ConnTable, SyncApplied, SyncPolicy};
use crate::ipvs::service::{Protocol, Services};

/// A partly filled message is sent once it is this old (`IPVS_SYNC_FLUSH_TIME`).
pub const FLUSH_AFTER_NS: u64 = 2_000_000_000;
/// The UDP source port of the master's messages (the kernel binds an
/// ephemeral one; this is the first of Linux's default range).
pub const SYNC_SOURCE_PORT: u16 = 32768;
/// IPv4 and UDP headers: what the MTU must hold besides the message.
pub const IP_UDP_HEADERS: u16 = 28;
/// The smallest backup `sync-maxlen` (the kernel clamps to it).
pub const MIN_BACKUP_MAXLEN: u16 = 1024;
/// The largest `sync-maxlen`: a UDP datagram's payload.
pub const MAX_MAXLEN: u16 = u16::MAX - IP_UDP_HEADERS;

/// Which daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DaemonKind {
    /// Sends the director's connections.
    Master,
    /// Receives another director's.
    Backup,
}

impl DaemonKind {
    /// `master` or `backup`, as ipvsadm spells it.
    pub fn name(self) -> &'static str {
        match self {
            DaemonKind::Master => "master",
            DaemonKind::Backup => "backup",
        }
    }
}

/// `ipvsadm --start-daemon` as given: `None` takes the kernel's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonRequest {
    /// Master or backup.
    pub kind: DaemonKind,
    /// `--mcast-interface`: the name of a port of `lb.conf`.
    pub mcast_ifn: Option<String>,
    /// `--syncid` (0 by default).
    pub syncid: u8,
    /// `--sync-maxlen`.
    pub maxlen: Option<u16>,
    /// `--mcast-group` (224.0.0.81 by default).
    pub group: Option<Ipv4Addr>,
    /// `--mcast-port` (8848 by default).
    pub port: Option<u16>,
    /// `--mcast-ttl` (1 by default).
    pub ttl: Option<u8>,
}

/// A running daemon's settings, defaults filled in as the kernel fills
/// them (`start_sync_thread()`); what `ipvsadm -L --daemon` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonConfig {
    /// Master or backup.
    pub kind: DaemonKind,
    /// The interface (port) name.
    pub mcast_ifn: String,
    /// The switch port it names.
    pub port: u16,
    /// The sync id.
    pub syncid: u8,
    /// Largest message sent (master) or read (backup).
    pub maxlen: u16,
    /// The multicast group.
    pub group: Ipv4Addr,
    /// The UDP port.
    pub mcast_port: u16,
    /// The TTL of the messages sent.
    pub ttl: u8,
}

impl DaemonConfig {
    /// Starts a daemon of `req` on the director's network `net`: the
    /// interface must be one of its ports; the master's messages must fit
    /// that port's MTU unfragmented (module docs).
    pub fn new(req: &DaemonRequest, net: &NetConfig) -> Result<DaemonConfig, String> {
        let ifn = req.mcast_ifn.as_deref().unwrap_or("");
        let Some(p) = net.port_by_name(ifn) else {
            return Err(if ifn.is_empty() {
                "No such device (--mcast-interface names no port: give the name of a `port` line)".to_string()
            } else {
                format!("No such device (no `port` line of lb.conf is named `{ifn}')")
            });
        };
        let maxlen = match (req.kind, req.maxlen) {
            (DaemonKind::Master, Some(n)) => n.clamp(1, MAX_MAXLEN),
            (DaemonKind::Master, None) => msg::DEFAULT_MASTER_MAXLEN,
            (DaemonKind::Backup, Some(n)) => n.clamp(MIN_BACKUP_MAXLEN, MAX_MAXLEN),
            (DaemonKind::Backup, None) => p.mtu.clamp(1500, u16::MAX) - IP_UDP_HEADERS,
        };
        if req.kind == DaemonKind::Master {
            if p.addrs.is_empty() {
                return Err(format!(
                    "Cannot assign requested address (port `{ifn}' has no IPv4 address to send sync messages from)"
                ));
            }
            if u32::from(maxlen) + u32::from(IP_UDP_HEADERS) > u32::from(p.mtu) {
                return Err(format!(
                    "Message too long (sync-maxlen {maxlen} does not fit port `{ifn}' MTU {} less {IP_UDP_HEADERS}: \
                     p4lite does not fragment sync messages)",
                    p.mtu
                ));
            }
        }
        Ok(DaemonConfig {
            kind: req.kind,
            mcast_ifn: ifn.to_string(),
            port: p.number,
            syncid: req.syncid,
            maxlen,
            group: req.group.unwrap_or(Ipv4Addr::from(msg::SYNC_GROUP)),
            mcast_port: req.port.unwrap_or(msg::SYNC_PORT),
            ttl: req.ttl.unwrap_or(1),
        })
    }

    /// Its `ipvsadm -L --daemon` line (ipvsadm's `list_daemon()`).
    pub fn list_line(&self) -> String {
        format!(
            "{} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})",
            self.kind.name(),
            self.mcast_ifn,
            self.syncid,
            self.maxlen,
            self.group,
            self.mcast_port,
            self.ttl
        )
    }
}

/// The sync daemons `lb.conf` and `p4lite ctl` started (part of the
/// director's state, applied all or nothing with the rest of a file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Daemons {
    /// The master daemon, if started.
    pub master: Option<DaemonConfig>,
    /// The backup daemon, if started.
    pub backup: Option<DaemonConfig>,
}

impl Daemons {
    fn slot(&mut self, kind: DaemonKind) -> &mut Option<DaemonConfig> {
        match kind {
            DaemonKind::Master => &mut self.master,
            DaemonKind::Backup => &mut self.backup,
        }
    }

    /// `--start-daemon`: one master and one backup at most (both may run).
    pub fn start(&mut self, req: &DaemonRequest, net: &NetConfig) -> Result<(), String> {
        let slot = self.slot(req.kind);
        if slot.is_some() {
            return Err("Daemon has already run".to_string());
        }
        *slot = Some(DaemonConfig::new(req, net)?);
        Ok(())
    }

    /// `--stop-daemon`.
    pub fn stop(&mut self, kind: DaemonKind) -> Result<(), String> {
        self.slot(kind).take().map(drop).ok_or_else(|| "No daemon is running".to_string())
    }

    /// `ipvsadm -L --daemon`: the master's line, then the backup's.
    pub fn list(&self) -> String {
        [&self.master, &self.backup].into_iter().flatten().map(|d| d.list_line() + "\n").collect()
    }

    /// Whether the running daemons' ports are still in `net` (a file that
    /// changes the network must keep them).
    pub fn check_net(&self, net: &NetConfig) -> Result<(), String> {
        for d in [&self.master, &self.backup].into_iter().flatten() {
            let req = DaemonRequest {
                kind: d.kind,
                mcast_ifn: Some(d.mcast_ifn.clone()),
                syncid: d.syncid,
                maxlen: Some(d.maxlen),
                group: Some(d.group),
                port: Some(d.mcast_port),
                ttl: Some(d.ttl),
            };
            DaemonConfig::new(&req, net)
                .map_err(|e| format!("the {} sync daemon's interface `{}': {e}", d.kind.name(), d.mcast_ifn))?;
        }
        Ok(())
    }
}

/// The sync sysctls (spec 2.9, section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncSysctls {
    /// `sync_version`: the format the master writes.
    pub version: Version,
    /// `sync_threshold` and `sync_persist_mode`.
    pub policy: SyncPolicy,
}

impl Default for SyncSysctls {
    fn default() -> SyncSysctls {
        SyncSysctls { version: Version::V1, policy: SyncPolicy::default() }
    }
}

/// What the director's sync daemons did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Messages the master sent.
    pub sent_messages: u64,
    /// Records in them.
    pub sent_records: u64,
    /// Messages a backup took (its group and port on its interface).
    pub received_messages: u64,
    /// Of those, ignored for another syncid.
    pub ignored_messages: u64,
    /// Of those, dropped as malformed, wholly or from a bad record on.
    pub dropped_messages: u64,
    /// Records that created an entry.
    pub created: u64,
    /// Records that updated one.
    pub updated: u64,
    /// Records ignored as the stale notice of a replaced conn.
    pub stale: u64,
    /// Records refused by a full table.
    pub refused: u64,
    /// Records skipped as p4lite cannot hold them (IPv6, `NO_CPORT`,
    /// persistence engines, other protocols, bad states).
    pub skipped: u64,
    /// Entries created unbound: no such service or real server here.
    pub unbound: u64,
}

/// A running master: packs the conns the table chose into messages.
#[derive(Clone, Debug)]
struct Master {
    cfg: DaemonConfig,
    version: Version,
    src_mac: Mac,
    src_ip: Ipv4Addr,
    builder: MessageBuilder,
    /// Packet time of the open message's first record.
    first_ns: u64,
    /// The next IPv4 ID.
    ip_id: u16,
}

impl Master {
    fn new(cfg: &DaemonConfig, version: Version, net: &NetConfig) -> Option<Master> {
        let p = net.ports.get(&cfg.port)?;
        Some(Master {
            cfg: cfg.clone(),
            version,
            src_mac: p.mac,
            src_ip: p.addrs.first()?.addr,
            builder: MessageBuilder::new(version, cfg.syncid, cfg.maxlen),
            first_ns: 0,
            ip_id: 0,
        })
    }

    /// The Ethernet frame that carries message `m` (module docs).
    fn frame(&mut self, m: &[u8]) -> Vec<u8> {
        let group = u32::from(self.cfg.group).to_be_bytes();
        let udp_len = (m.len() + 8) as u16;
        let ip_len = udp_len + 20;
        let mut f = Vec::with_capacity(usize::from(ip_len) + 14);
        f.extend_from_slice(&[0x01, 0x00, 0x5e, group[1] & 0x7f, group[2], group[3]]);
        f.extend_from_slice(&self.src_mac.0);
        f.extend_from_slice(&[0x08, 0x00]);
        let ip_at = f.len();
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0, 0, self.cfg.ttl, 17, 0, 0]);
        f[ip_at + 2..ip_at + 4].copy_from_slice(&ip_len.to_be_bytes());
        f[ip_at + 4..ip_at + 6].copy_from_slice(&self.ip_id.to_be_bytes());
        self.ip_id = self.ip_id.wrapping_add(1);
        f.extend_from_slice(&self.src_ip.octets());
        f.extend_from_slice(&group);
        let ip_csum = csum16_bytes(&f[ip_at..ip_at + 20]);
        f[ip_at + 10..ip_at + 12].copy_from_slice(&ip_csum.to_be_bytes());
        let udp_at = f.len();
        f.extend_from_slice(&SYNC_SOURCE_PORT.to_be_bytes());
        f.extend_from_slice(&self.cfg.mcast_port.to_be_bytes());
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(m);
        // The pseudo-header, then the datagram.
        let mut sum = Vec::with_capacity(12 + usize::from(udp_len));
        sum.extend_from_slice(&self.src_ip.octets());
        sum.extend_from_slice(&group);
        sum.extend_from_slice(&[0, 17]);
        sum.extend_from_slice(&udp_len.to_be_bytes());
        sum.extend_from_slice(&f[udp_at..]);
        let c = match csum16_bytes(&sum) {
            0 => 0xffff,
            c => c,
        };
        f[udp_at + 6..udp_at + 8].copy_from_slice(&c.to_be_bytes());
        f
    }

    /// Sends message `m`.
    fn send(&mut self, m: Vec<u8>, stats: &mut SyncStats, out: &mut Vec<(u16, Vec<u8>)>) {
        stats.sent_messages += 1;
        stats.sent_records += u64::from(m.get(if self.version == Version::V1 { 4 } else { 0 }).copied().unwrap_or(0));
        let f = self.frame(&m);
        out.push((self.cfg.port, f));
    }
}

/// The record of conn `c` (`ip_vs_sync_conn()`: the flags without HASHED).
pub fn record_of(c: &Conn) -> SyncConn {
    SyncConn {
        proto: c.proto,
        flags: u32::from(c.flags & !(flag::HASHED | flag::FREE)),
        state: u16::from(c.state),
        cport: c.cport,
        vport: c.vport,
        dport: c.dport,
        fwmark: 0,
        timeout_s: c.timeout_s,
        caddr: c.caddr,
        vaddr: c.vaddr,
        daddr: c.daddr,
        seq: None,
    }
}

/// The director's running sync machinery (module docs).
#[derive(Clone, Debug, Default)]
pub struct SyncRuntime {
    master: Option<Master>,
    /// What the daemons did.
    pub stats: SyncStats,
    /// Conns taken from the table, reused between packets.
    scratch: Vec<Conn>,
}

impl SyncRuntime {
    /// Brings the running master in line with the state after a change:
    /// started, restarted with new settings (unsent records discarded), or
    /// stopped; the table's bookkeeping follows.
    pub fn reconcile(&mut self, daemons: &Daemons, sysctls: SyncSysctls, net: &NetConfig, conns: &mut ConnTable) {
        let wanted = daemons.master.as_ref();
        let same = match (&self.master, wanted) {
            (Some(m), Some(w)) => m.cfg == *w && m.version == sysctls.version,
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.master = wanted.and_then(|w| Master::new(w, sysctls.version, net));
        }
        conns.set_sync_master(self.master.as_ref().map(|_| sysctls.policy));
    }

    /// Whether a master runs.
    pub fn master_running(&self) -> bool {
        self.master.is_some()
    }

    /// After a packet (or on an idle tick) at `now_ns`: packs the conns
    /// the table chose, then sends every full message and a partly filled
    /// one that has waited [`FLUSH_AFTER_NS`]; the frames go to `out` as
    /// (port, frame).
    pub fn poll(&mut self, conns: &mut ConnTable, now_ns: u64, out: &mut Vec<(u16, Vec<u8>)>) {
        let Some(m) = self.master.as_mut() else { return };
        conns.take_sync(&mut self.scratch);
        for c in self.scratch.drain(..) {
            if let Some(full) = m.builder.push(&record_of(&c)) {
                m.send(full, &mut self.stats, out);
            }
            if m.builder.pending() == 1 {
                m.first_ns = now_ns;
            }
        }
        if m.builder.pending() > 0 && now_ns.saturating_sub(m.first_ns) >= FLUSH_AFTER_NS {
            if let Some(msg) = m.builder.take() {
                m.send(msg, &mut self.stats, out);
            }
        }
    }

    /// A UDP datagram for `group:dport` arrived on `port` at `now_ns`,
    /// `payload` its data: if the backup daemon `backup` listens there,
    /// decodes and applies it (module docs) and returns true.
    #[allow(clippy::too_many_arguments)]
    pub fn receive(
        &mut self,
        backup: Option<&DaemonConfig>,
        port: u16,
        group: u32,
        dport: u16,
        payload: &[u8],
        conns: &mut ConnTable,
        services: &mut Services,
        now_ns: u64,
    ) -> bool {
        let Some(b) = backup else { return false };
        if port != b.port || group != u32::from(b.group) || dport != b.mcast_port {
            return false;
        }
        let st = &mut self.stats;
        st.received_messages += 1;
        // The receive buffer holds `maxlen` bytes: a longer datagram is
        // cut, and the cut message fails the size check.
        let read = &payload[..payload.len().min(usize::from(b.maxlen))];
        let d = match msg::decode(read, b.syncid) {
            Err(_) => {
                st.dropped_messages += 1;
                return true;
            }
            Ok(None) => {
                st.ignored_messages += 1;
                return true;
            }
            Ok(Some(d)) => d,
        };
        st.skipped += d.skipped.len() as u64;
        if d.error.is_some() {
            st.dropped_messages += 1;
        }
        for r in &d.conns {
            let template = r.flags & conn_flag::TEMPLATE != 0;
            if r.flags & conn_flag::NO_CPORT != 0 || (!template && r.cport == 0) {
                st.skipped += 1;
                continue;
            }
            // ip_vs_find_dest(): the service, then the real server by
            // address and port, else by address and port 0.
            let dest = Protocol::from_number(r.proto)
                .and_then(|p| services.lookup_service(p, Ipv4Addr::from(r.vaddr), r.vport))
                .and_then(|s| {
                    let daddr = Ipv4Addr::from(r.daddr);
                    services.find_dest(s, daddr, r.dport).or_else(|| services.find_dest(s, daddr, 0))
                })
                .map(|d| (d, services.dest(d).fwd));
            match conns.sync_apply(services, r, dest, now_ns) {
                SyncApplied::Created => {
                    st.created += 1;
                    if dest.is_none() {
                        st.unbound += 1;
                    }
                }
                SyncApplied::Updated => st.updated += 1,
                SyncApplied::Stale => st.stale += 1,
                SyncApplied::Full => st.refused += 1,
            }
        }
        true
    }
}
