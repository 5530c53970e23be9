//! Connection synchronisation inside the table (spec section 5): which
//! inbound packets make a master director send a conn (5.4,
//! `ip_vs_sync_conn_needed()`), and how a backup director applies a
//! received record (5.2, `ip_vs_proc_conn()`).
//!
//! # Master
//! While a master sync daemon runs ([`ConnTable::set_sync_master`]), the
//! table keeps two bytes per arena slot beside the entries (nothing when no
//! master runs, so the 64-byte budget per conn holds): the conn's inbound
//! packet count (`cp->in_pkts`, kept modulo `sync_period`, or up to 255 when
//! the period is 0) and the state it was last sent in (`cp->old_state`).
//! Every inbound packet of a conn ([`ConnTable::lookup_in`] hits, and the
//! packet that creates it in [`ConnTable::insert`]) counts, then decides:
//! - a template is sent whenever it is asked (its rate is only limited by
//!   `sync_refresh_period`, which p4lite does not have);
//! - with `sync_persist_mode`, a conn controlled by a template is not sent;
//! - TCP is sent only in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT and
//!   TIME_WAIT; a change into one of these other than ESTABLISHED is sent
//!   at once;
//! - otherwise (ESTABLISHED, UDP) when the count modulo `sync_period`
//!   equals `sync_threshold` (the 3rd, 53rd, 103rd ... packet); with a
//!   period of 0, only at the `sync_threshold`-th packet.
//!
//! Then, whether the conn was sent or not, its controlling template is
//! offered, counted with its own counter (`ip_vs_sync_conn()` goes on to
//! `cp->control` in both cases, and for a one-packet conn, which is never
//! sent itself): so a template is sent with every inbound packet of the
//! conns it controls (spec 5.4: "Templates: whenever a conn they control is
//! synced"; also what makes `sync_persist_mode`, which sends only the
//! templates of persistent services, send anything).
//!
//! Differences, all from keeping the count only while a master runs: a
//! conn that existed before the master started counts from 0, not from its
//! real packet count.
//!
//! # Backup
//! [`ConnTable::sync_apply`] applies one received record: an existing conn
//! (a template: an existing template with the same key) takes the record's
//! INACTIVE bit (moving the dest's count between active and inactive), its
//! state and its timeout; a conn whose real server differs is expired at
//! once and created again, unless the record is INACTIVE (then it is the
//! stale expiry notice of the conn that was replaced, and is ignored). A
//! new entry is bound to the dest the caller found for it (and then takes
//! that dest's forwarding method, as `ip_vs_bind_dest()` does for synced
//! conns), or stays unbound (no dest found: the kernel keeps such conns
//! and forwards with the master's method). Synced conns are never linked
//! to a template (neither are the kernel's). The timer is armed with the
//! record's timeout, or (version 0 records, which carry none) the state's
//! timeout, 180 s for a template.

use super::store::{flag, Class, Entry, MAX_TIMEOUT_S, NIL};
use super::tcp::TcpState;
use super::{fwd_bits, Conn, ConnTable, DestAccounting, TemplateKey, Tuple, PROTO_TCP};
use crate::ipvs::service::{DestId, FwdMethod};
use crate::ipvs::sync::msg::{conn_flag, SyncConn};

/// Timeout of a template whose record carries none (version 0 messages).
pub const TEMPLATE_SYNC_TIMEOUT_S: u32 = 180;

/// The sysctls that decide when a master sends a conn (spec 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncPolicy {
    /// `sync_threshold`, first value (default 3).
    pub threshold: u8,
    /// `sync_threshold`, second value: `sync_period` (default 50; 0 = send
    /// only at the `threshold`-th packet). At most 255 here (the count is
    /// one byte), and `threshold` < `period` when the period is not 0;
    /// [`SyncPolicy::check`] says so.
    pub period: u8,
    /// `sync_persist_mode`: conns controlled by a template are not sent.
    pub persist_mode: bool,
}

impl Default for SyncPolicy {
    fn default() -> SyncPolicy {
        SyncPolicy { threshold: 3, period: 50, persist_mode: false }
    }
}

impl SyncPolicy {
    /// The kernel's rule for `sync_threshold` (`proc_do_sync_threshold`:
    /// the threshold below a non-zero period), plus p4lite's one-byte count.
    pub fn check(threshold: u32, period: u32) -> Result<(u8, u8), String> {
        if period > 255 || (period == 0 && threshold > 254) {
            return Err(format!(
                "sysctl sync_threshold {threshold} {period}: p4lite counts a connection's packets in one byte \
                 (period at most 255; with period 0, threshold at most 254)"
            ));
        }
        if period != 0 && threshold >= period {
            return Err(format!("sysctl sync_threshold {threshold} {period}: the threshold must be below the period"));
        }
        Ok((threshold as u8, period as u8))
    }
}

/// What a master keeps per arena slot, and the conns it chose to send.
#[derive(Clone, Debug)]
pub(super) struct SyncTrack {
    policy: SyncPolicy,
    /// Per slot: inbound packets counted (modulo `period`; saturating at
    /// 255 when the period is 0).
    pkts: Vec<u8>,
    /// Per slot: the state the entry was last sent in (`cp->old_state`).
    old_state: Vec<u8>,
    /// Snapshots of the entries to send, in the order they were chosen.
    out: Vec<Conn>,
}

impl SyncTrack {
    fn new(policy: SyncPolicy) -> SyncTrack {
        SyncTrack { policy, pkts: Vec::new(), old_state: Vec::new(), out: Vec::new() }
    }

    /// Makes slot `i` exist in the side arrays.
    fn reach(&mut self, i: u32) {
        let n = i as usize + 1;
        if self.pkts.len() < n {
            let len = n.max(self.pkts.len() * 2).max(1024);
            self.pkts.resize(len, 0);
            self.old_state.resize(len, 0);
        }
    }

    /// A new entry in slot `i`: no packet yet, never sent (`old_state` NONE).
    fn reset(&mut self, i: u32) {
        self.reach(i);
        self.pkts[i as usize] = 0;
        self.old_state[i as usize] = 0;
    }

    /// Counts one more packet of slot `i` and returns the count.
    fn count(&mut self, i: u32) -> u8 {
        self.reach(i);
        let p = &mut self.pkts[i as usize];
        *p = if self.policy.period == 0 {
            p.saturating_add(1)
        } else {
            let next = *p + 1;
            if next == self.policy.period {
                0
            } else {
                next
            }
        };
        *p
    }

    /// `ip_vs_sync_conn_needed()` for entry `e` in slot `i` with count
    /// `pkts` (module docs); records the state sent.
    fn needed(&mut self, e: &Entry, i: u32, pkts: u8) -> bool {
        let template = e.flags & flag::TEMPLATE != 0;
        if !template {
            if self.policy.persist_mode && e.link != NIL {
                return false;
            }
            if e.proto == PROTO_TCP {
                if !syncs_in(e.state) {
                    return false;
                }
                let force = e.state != self.old_state[i as usize];
                if force && e.state != TcpState::Established as u8 {
                    self.old_state[i as usize] = e.state;
                    return true;
                }
            }
        }
        let p = self.policy;
        if p.period > 0 {
            if !template && pkts != p.threshold {
                return false;
            }
        } else if pkts != p.threshold {
            return false;
        }
        self.old_state[i as usize] = e.state;
        true
    }
}

/// The TCP states in which a conn is synchronised (spec 5.4).
fn syncs_in(state: u8) -> bool {
    [TcpState::Established, TcpState::FinWait, TcpState::Close, TcpState::CloseWait, TcpState::TimeWait]
        .iter()
        .any(|&s| s as u8 == state)
}

/// What [`ConnTable::sync_apply`] did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncApplied {
    /// A new conn or template was created.
    Created,
    /// An existing one took the record's state, INACTIVE bit and timeout.
    Updated,
    /// An INACTIVE record for a conn that now goes to another real server:
    /// the stale expiry notice of a replaced conn, ignored.
    Stale,
    /// The table is full and nothing could be evicted (counted in `refused`).
    Full,
}

impl ConnTable {
    /// Starts (`Some`) or stops (`None`) the master's bookkeeping. Starting
    /// again with another policy keeps the counts; stopping drops them and
    /// the conns not yet taken ([`ConnTable::take_sync`]), as stopping the
    /// kernel's master thread releases its unsent buffers.
    pub fn set_sync_master(&mut self, policy: Option<SyncPolicy>) {
        match (policy, self.sync.as_deref_mut()) {
            (None, _) => self.sync = None,
            (Some(p), Some(t)) => t.policy = p,
            (Some(p), None) => self.sync = Some(Box::new(SyncTrack::new(p))),
        }
    }

    /// Appends the conns chosen for sending since the last call, oldest
    /// first, to `into`.
    pub fn take_sync(&mut self, into: &mut Vec<Conn>) {
        if let Some(t) = self.sync.as_deref_mut() {
            into.append(&mut t.out);
        }
    }

    /// Whether conns wait to be taken by [`ConnTable::take_sync`].
    pub fn sync_pending(&self) -> bool {
        self.sync.as_deref().is_some_and(|t| !t.out.is_empty())
    }

    /// An inbound packet of entry `i` has been applied: counts it and
    /// queues the entry (and its template) if the master must send it.
    /// Out of line: it runs only while a master runs.
    #[cold]
    #[inline(never)]
    pub(super) fn sync_inbound(&mut self, i: u32) {
        let Some(mut t) = self.sync.take() else { return };
        let pkts = t.count(i);
        let e = self.store.entries[i as usize];
        if t.needed(&e, i, pkts) {
            t.out.push(self.view(i));
        }
        self.sync = Some(t);
        if e.flags & flag::TEMPLATE == 0 && e.link != NIL {
            self.sync_template(e.link);
        }
    }

    /// Offers template `link` after a packet of a conn it controls (or of a
    /// one-packet conn, which is not stored), counting it.
    #[cold]
    #[inline(never)]
    pub(super) fn sync_template(&mut self, link: u32) {
        if !self.is_template(link) {
            return;
        }
        let Some(mut t) = self.sync.take() else { return };
        let pkts = t.count(link);
        let te = self.store.entries[link as usize];
        if t.needed(&te, link, pkts) {
            t.out.push(self.view(link));
        }
        self.sync = Some(t);
    }

    /// A new entry in slot `i` (no packet counted yet).
    #[cold]
    #[inline(never)]
    pub(super) fn sync_reset(&mut self, i: u32) {
        if let Some(t) = self.sync.as_deref_mut() {
            t.reset(i);
        }
    }

    /// Applies one record a backup received (module docs) at `now_ns`.
    /// `dest` is the real server the caller found for it (with its
    /// forwarding method), if any. Records with `NO_CPORT` or `ONE_PACKET`
    /// are the caller's to refuse (the decoder skips them).
    pub fn sync_apply<H: DestAccounting>(
        &mut self,
        h: &mut H,
        r: &SyncConn,
        dest: Option<(DestId, FwdMethod)>,
        now_ns: u64,
    ) -> SyncApplied {
        self.advance(h, now_ns, true);
        let template = r.flags & conn_flag::TEMPLATE != 0;
        let inactive = r.flags & conn_flag::INACTIVE != 0;
        let mut found = if template {
            self.find_template(&TemplateKey { proto: r.proto, caddr: r.caddr, vaddr: r.vaddr, vport: r.vport })
        } else {
            self.find_in(&Tuple { proto: r.proto, saddr: r.caddr, sport: r.cport, daddr: r.vaddr, dport: r.vport })
        };
        if let (Some(i), false) = (found, template) {
            let e = &self.store.entries[i as usize];
            if e.daddr != r.daddr || e.dport != r.dport {
                if inactive {
                    self.stats.sync_stale += 1;
                    return SyncApplied::Stale;
                }
                self.doom(i);
                found = None;
            }
        }
        let (i, outcome) = match found {
            Some(i) => {
                let e = &mut self.store.entries[i as usize];
                if !template && e.dest != NIL && (e.flags & flag::INACTIVE != 0) != inactive {
                    if inactive {
                        h.conn_deactivated(DestId(e.dest));
                    } else {
                        h.conn_activated(DestId(e.dest));
                    }
                }
                // IP_VS_CONN_F_BACKUP_UPD_MASK: INACTIVE (and the sequence
                // bits p4lite does not keep) come from the record.
                e.flags = (e.flags & !flag::INACTIVE) | if inactive { flag::INACTIVE } else { 0 };
                e.state = r.state as u8;
                if e.dest == NIL {
                    if let Some((d, fwd)) = dest {
                        // ip_vs_try_bind_dest()
                        e.flags = bound_flags(e.flags, fwd, template);
                        e.dest = d.0;
                        if template {
                            h.template_bound(d);
                        } else {
                            h.conn_bound_as(d, e.flags & flag::INACTIVE == 0);
                        }
                    }
                }
                self.stats.sync_updated += 1;
                (i, SyncApplied::Updated)
            }
            None => {
                if !self.make_room(h, NIL) {
                    self.stats.refused += 1;
                    self.reap_doomed(h);
                    return SyncApplied::Full;
                }
                let mask = flag::FWD_MASK | flag::NOOUTPUT | flag::INACTIVE | flag::TEMPLATE;
                let mut flags = (r.flags & u32::from(mask)) as u16;
                if let Some((_, fwd)) = dest {
                    flags = bound_flags(flags, fwd, template);
                }
                let i = self.store.alloc(Entry {
                    caddr: r.caddr,
                    vaddr: r.vaddr,
                    daddr: r.daddr,
                    expires: 0,
                    link: if template { 0 } else { NIL },
                    dest: dest.map_or(NIL, |(d, _)| d.0),
                    hnext: NIL,
                    qprev: NIL,
                    qnext: NIL,
                    cport: r.cport,
                    vport: r.vport,
                    dport: r.dport,
                    flags,
                    proto: r.proto,
                    state: r.state as u8,
                    queue: 0,
                });
                self.store.hash(i);
                if let Some((d, _)) = dest {
                    if template {
                        h.template_bound(d);
                    } else {
                        h.conn_bound_as(d, flags & flag::INACTIVE == 0);
                    }
                }
                self.stats.sync_created += 1;
                (i, SyncApplied::Created)
            }
        };
        let e = self.store.entries[i as usize];
        let timeout = if r.timeout_s != 0 {
            r.timeout_s.min(MAX_TIMEOUT_S)
        } else if template {
            TEMPLATE_SYNC_TIMEOUT_S
        } else if e.proto == PROTO_TCP {
            self.cfg.tcp_timeouts[usize::from(e.state).min(self.cfg.tcp_timeouts.len() - 1)]
        } else {
            self.cfg.udp_timeout
        };
        let class = if template {
            Class::Template
        } else if e.proto == PROTO_TCP && e.state == TcpState::Established as u8 {
            Class::Established
        } else {
            Class::Transient
        };
        let q = self.store.queue_for(timeout, class);
        let exp = self.deadline(timeout);
        match outcome {
            SyncApplied::Created => self.store.push(i, q, exp),
            _ => self.store.rearm(i, q, exp),
        }
        if let Some(t) = self.sync.as_deref_mut() {
            // The backup's count starts at the threshold (`in_pkts =
            // sync_threshold`), its last sent state at the record's.
            t.reach(i);
            t.pkts[i as usize] = t.policy.threshold;
            t.old_state[i as usize] = e.state;
        }
        self.reap_doomed(h);
        outcome
    }

    /// The template with key `key` (`ip_vs_ct_in_get()`), without the
    /// validity check of [`ConnTable::template_lookup`].
    pub(super) fn find_template(&self, key: &TemplateKey) -> Option<u32> {
        let mut p = self.store.chain(key.proto, key.caddr, 0);
        while p != NIL {
            let e = &self.store.entries[p as usize];
            if e.flags & flag::TEMPLATE != 0
                && e.proto == key.proto
                && e.caddr == key.caddr
                && e.cport == 0
                && e.vaddr == key.vaddr
                && e.vport == key.vport
            {
                return Some(p);
            }
            p = e.hnext;
        }
        None
    }
}

/// A synced entry's flags once bound to a dest with method `fwd`
/// (`ip_vs_bind_dest()` for `IP_VS_CONN_F_SYNC` entries): the method and
/// NOOUTPUT come from the dest; a conn keeps its INACTIVE bit, a template
/// is INACTIVE like every template.
fn bound_flags(flags: u16, fwd: FwdMethod, template: bool) -> u16 {
    let mut f = (flags & !(flag::FWD_MASK | flag::NOOUTPUT)) | fwd_bits(fwd);
    if fwd != FwdMethod::Masq {
        f |= flag::NOOUTPUT;
    }
    if template {
        f |= flag::INACTIVE;
    }
    f
}
