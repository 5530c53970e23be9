//! The per-switch IPVS director: the `lb.conf` state ([`LbState`]), the
//! connection table ([`ConnTable`]) and the rate estimator
//! ([`RateEstimator`]) that every `conn_table` and `scheduler` instance of a
//! program shares (the externs are in `crate::externs::ipvs`), and the
//! translation of `lb.conf` into the entries of the program's tables.
//!
//! # Time
//! Packet time, in nanoseconds. [`Director::advance`] runs with every packet
//! the switch processes (and before every IPVS extern call): connection
//! timers, the dest trash and lblc/lblcr garbage collection, and the
//! 2-second ticks of the rate estimator. Listings use the latest packet time.
//!
//! # Loading `lb.conf` ([`load_into_switch`])
//! 1. The file is parsed and applied to a copy of the state with
//!    [`admin::parse_file`] / [`admin::apply_file`] (every bad line is
//!    reported as `file:line: message`).
//! 2. The table entries below are generated from the new state and applied
//!    with the switch's control plane (`table_clear` of each director table
//!    the program has, then `table_add`s), all or nothing. When they are
//!    the same as the last load's (a weight edit, a new real server, a
//!    `--set`: nothing the tables hold changed), the tables are left alone,
//!    so their entry handles and hit counters carry on.
//! 3. Only if both succeeded does the new state replace the old one, and the
//!    connection table takes the new timeouts and sysctls. So a file applies
//!    entirely or not at all.
//!
//! # `conn_max N`: the connection table's size
//! A line `conn_max N` (this module's own directive, stripped before the
//! ipvsadm/`port` parser sees the file) overrides the `conn_table`
//! instance's size: at most `N` entries, templates included (0: unbounded).
//! A full table makes room as `ConnTable` documents (expired entries, then
//! the least recently active transient conn; ESTABLISHED conns are not
//! evicted), else the insert is refused and the packet dropped
//! (`IPVS_DROP`). The last such line of a file wins; a file without one
//! leaves the size as it was. Applied with the rest of the file, all or
//! nothing.
//!
//! # Timed lines: `@SECONDS LINE`
//! A line `@T LINE` (also this module's own directive) is not applied at
//! load: `LINE` is applied when packet time first reaches T seconds after
//! the first packet the director sees (T may have a fraction: `@400.5`),
//! before that packet is processed. Lines with the same T form one batch,
//! applied in file order and all or nothing; batches run in order of T.
//! Only lines that leave the program's tables alone may be timed: real
//! server changes (`-a`, `-e`, `-d`), `-Z`, `--set`, `sysctl` and
//! `overhead`. Each batch is checked at load time against the state the
//! earlier batches leave (errors name the lb.conf line), so a batch that
//! loads also applies; loading a file replaces the pending batches of the
//! previous one only if it has timed lines of its own.
//!
//! # The table contract with the program (`programs/lb.p4lite`)
//! Tables and actions are found by their unqualified names. The director
//! owns these five tables: loading clears and refills every one of them the
//! program has. A table the configuration needs but the program lacks is an
//! error naming the first line that needs it; a table the configuration
//! does not need may be missing.
//!
//! | table | keys | action | entries |
//! | --- | --- | --- | --- |
//! | `ipvs_services` | `hdr.ipv4.protocol` exact, `hdr.ipv4.dst_addr` exact, vport ternary | `set_service(bit<16> service)` | per virtual service `-A -t/-u VIP:PORT`: `(6 or 17, VIP, PORT &&& 0xffff)` priority 1; a port-0 service: `(proto, VIP, 0 &&& 0)` priority 2. `service` is the service model's `ServiceId` (what `scheduler.schedule` takes) |
//! | `director_addrs` | one of the director's addresses (exact; `lb.p4lite` looks up an ARP request's target, every IPv4 packet's source (one of these is martian), and the destination of an ICMP error about one of its IP-in-IP packets) | `own_address(bit<48> mac)` (the MAC address ARP answers with) | each address of each `port` line, with that port's MAC; each VIP that is not already one of them, with the MAC of the port whose connected subnet holds it, else of the lowest-numbered port (port 0 normally). No ports, no VIP entries |
//! | `ipv4_routes` | destination (lpm) | `set_nexthop(bit<32> nhop, bit<9> port)`; `local_broadcast()` if the table has it | each `route` line (`nhop` = the gateway, 0 for an on-link route) and each connected subnet of a `port` address (`nhop` 0: the destination itself). A static route wins over a connected subnet of the same prefix, the first line over later ones, the lowest port over higher ones: exactly [`NetConfig::route`]. With `local_broadcast`: also the broadcast address of each connected subnet, as a /32 that wins over any route of that prefix (see below) |
//! | `neighbours` | next hop (exact) | `set_dmac(bit<48> dmac)` | each `neigh` line, except for an address `director_addrs` holds (Linux's local route wins over a neighbour entry: such a line has no effect) |
//! | `port_info` | `std.egress_spec` (exact) | `set_port(bit<48> smac, bit<32> saddr, bit<16> mtu)` | each `port` line: its MAC, its first address (0.0.0.0 if none; the TUN outer source and the ICMP source), its MTU |
//!
//! Subnet broadcasts: Linux adds a broadcast route (`RTN_BROADCAST`, in
//! the local table, which wins over every route) for the broadcast address
//! of each connected subnet: the prefix with every host bit set, for a
//! prefix length under 31 and a network outside 0.0.0.0/8 (the kernel's
//! `fib_add_ifaddr`; since 5.14 the network address itself has none: it is
//! unicast). A packet to it is for the host stack, never forwarded
//! (`ip_route_input_slow`'s `brd_input`). When the program's `ipv4_routes`
//! has an action `local_broadcast()` (no parameters), each such address gets
//! a /32 entry to it (once, however many ports or addresses share the
//! subnet); `lb.p4lite` drops what it routes there (`DROP_FOR_DIRECTOR`).
//! A table without that action gets none. `lb.conf` has no `brd` setting,
//! so the kernel's explicitly assigned broadcast address has no equivalent.
//!
//! [`NetConfig::route`]: crate::ipvs::admin::config::NetConfig::route

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use p4lite_compiler::ir::Program;

use super::admin::config::{Mac, Prefix};
use super::admin::parse::AdminCmd;
use super::admin::rate::RateEstimator;
use super::admin::{self, CommandError, LbFile, LbState, ListEnv, Op};
use super::conn::{ConnConfig, ConnTable};
use super::sync::SyncRuntime;
use crate::switch::Switch;

/// The table names of the contract (module docs), with their action.
pub const TABLES: [(&str, &str); 5] = [
    ("ipvs_services", "set_service"),
    ("director_addrs", "own_address"),
    ("ipv4_routes", "set_nexthop"),
    ("neighbours", "set_dmac"),
    ("port_info", "set_port"),
];

/// The optional action of `ipv4_routes` for the connected subnets'
/// broadcast addresses (module docs: subnet broadcasts).
pub const BROADCAST_ACTION: &str = "local_broadcast";

/// The broadcast address Linux gives the connected subnet of interface
/// address `a` (`fib_add_ifaddr`): the network with every host bit set, for
/// a prefix length under 31 and a network outside 0.0.0.0/8; else none.
fn subnet_broadcast(a: &Prefix) -> Option<Ipv4Addr> {
    let network = u32::from(a.network());
    (a.len < 31 && network >> 24 != 0).then(|| Ipv4Addr::from(network | !a.mask()))
}

/// The director state one switch holds (module docs).
#[derive(Clone, Debug, Default)]
pub struct Director {
    /// Services, network, sysctls and timeouts from `lb.conf`.
    pub lb: LbState,
    /// The connection table.
    pub conns: ConnTable,
    /// Rates for `ipvsadm -L --rate`.
    pub rates: RateEstimator,
    /// The running sync daemons' machinery (`--start-daemon`).
    pub sync: SyncRuntime,
    /// The connection-table settings that do not come from `lb.conf`
    /// (the `conn_table` instance's `max_size`).
    base: ConnConfig,
    /// The latest packet time seen, in nanoseconds.
    now_ns: u64,
    /// The first packet time seen, the origin of timed lines' times.
    start_ns: Option<u64>,
    /// Timed batches not applied yet, earliest last: (offset ns, lines).
    pending: Vec<(u64, LbFile)>,
    /// The time [`Director::advance`] last ran every timer at (or found
    /// nothing due at), while no state change happened since: the switch
    /// advances before the pipeline and each IPVS extern again at the same
    /// packet time, and the second run would find nothing due.
    advanced_ns: Option<u64>,
    /// Until this packet time (exclusive) [`Director::advance`] has nothing
    /// to do but note the time, provided the connection table agrees
    /// ([`ConnTable::quiet_at`]): the next whole second after the last full
    /// run (the rate estimator works in seconds), the services' next timer
    /// (milliseconds), the next timed batch. Management operations bring
    /// the services' clock up to date themselves ([`Director::load`]).
    /// 0 after any state change. The switch advances before the pipeline
    /// and each IPVS extern again, at every packet.
    quiet_until_ns: u64,
    /// The table commands of the last successful load, to leave the tables
    /// untouched when a load would regenerate exactly the same entries.
    tables_loaded: Option<String>,
}

impl Director {
    /// An empty director whose connection table holds at most `max_conns`
    /// entries (0: unbounded).
    pub fn new(max_conns: u32) -> Director {
        let base = ConnConfig { max_conns, ..ConnConfig::default() };
        Director { conns: ConnTable::new(base.clone()), base, ..Director::default() }
    }

    /// Runs every timer due at `now_ns` (packet time; earlier times count as
    /// the latest one seen).
    #[inline]
    pub fn advance(&mut self, now_ns: u64) {
        if self.advanced_ns.is_some_and(|t| now_ns <= t) {
            return;
        }
        let latest = self.now_ns.max(now_ns);
        if latest < self.quiet_until_ns && self.conns.quiet_at(latest) {
            // Nothing is due: a full run would only move the clocks, and
            // every later operation moves them itself (the externs hand the
            // connection table this latest time).
            self.now_ns = latest;
            self.advanced_ns = Some(latest);
            return;
        }
        self.advance_full(latest);
    }

    /// [`Director::advance`] when something may be due (out of line: the
    /// per-packet case above stays small).
    #[inline(never)]
    fn advance_full(&mut self, latest: u64) {
        self.now_ns = latest;
        let now = self.now_ns;
        if self.start_ns.is_none() {
            self.lb.services.start_clock(now / 1_000_000);
        }
        let start = *self.start_ns.get_or_insert(now);
        while self.pending.last().is_some_and(|(at, _)| start.saturating_add(*at) <= now) {
            if let Some((at, batch)) = self.pending.pop() {
                let mut next = self.lb.clone();
                // Timers the batch starts run from its own time.
                next.services.advance(start.saturating_add(at) / 1_000_000);
                // Checked at load against the same state: cannot fail.
                if admin::apply_file(&batch, &mut next, &self.list_env()).is_ok() {
                    self.commit(next);
                }
            }
        }
        self.conns.expire(&mut self.lb.services, now);
        self.lb.services.advance(now / 1_000_000);
        self.rates.advance(&self.lb.services, now / 1_000_000_000);
        let next_second = (now / 1_000_000_000 + 1).saturating_mul(1_000_000_000);
        let services = self.lb.services.next_timer().saturating_mul(1_000_000);
        let batch = self.pending.last().map_or(u64::MAX, |(at, _)| start.saturating_add(*at));
        self.quiet_until_ns = next_second.min(services).min(batch);
        self.advanced_ns = Some(now);
    }

    /// The latest packet time seen, in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// The master sync daemon's frames due at the latest packet time (the
    /// conns the last packets chose, full messages, a partly filled one
    /// that waited 2 s), appended to `out` as (port, frame). Nothing
    /// without a master. The switch calls it after each packet.
    pub fn poll_sync(&mut self, out: &mut Vec<(u16, Vec<u8>)>) {
        if self.sync.master_running() {
            self.sync.poll(&mut self.conns, self.now_ns, out);
        }
    }

    /// A UDP datagram to `group:dport` arrived on `port` at `now_ns` with
    /// data `payload`: whether the backup sync daemon took it (it listens
    /// there; the message was then applied, or dropped or ignored, and
    /// counted in `sync.stats`).
    pub fn sync_receive(&mut self, port: u16, group: u32, dport: u16, payload: &[u8], now_ns: u64) -> bool {
        self.advance(now_ns);
        let now = self.now_ns;
        let Director { lb, conns, sync, .. } = self;
        let LbState { daemons, services, .. } = lb;
        let taken = sync.receive(daemons.backup.as_ref(), port, group, dport, payload, conns, services, now);
        if taken {
            // The table changed: the next advance must look at the timers.
            self.advanced_ns = None;
            self.quiet_until_ns = 0;
        }
        taken
    }

    /// What listings read besides the state: the connection table at the
    /// latest packet time, and the rates.
    pub fn list_env(&self) -> ListEnv<'_> {
        ListEnv { conns: Some((&self.conns, self.now_ns)), rates: Some(&self.rates), conn_tab_size: 0 }
    }

    /// Parses and applies `lb.conf` text to this director alone (no tables;
    /// [`load_into_switch`] is the whole load). Returns the output of its
    /// listing commands.
    pub fn load(&mut self, text: &str, file: &str) -> Result<Vec<String>, Vec<CommandError>> {
        let LbText { conn_max, timed, parsed, .. } = parse_lb_file(text, file)?;
        let mut next = self.lb.clone();
        // The services' clock may lag the latest packet (the quiet path of
        // [`Director::advance`] leaves it): timers this load starts (a
        // deleted dest's trash timer, a new lblc table's collector) are
        // armed from the latest packet time, to the millisecond.
        next.services.advance(self.now_ns / 1_000_000);
        let out = admin::apply_file(&parsed, &mut next, &self.list_env())?;
        let pending = check_timed(timed, &next, &self.list_env(), file)?;
        self.set_conn_max(conn_max);
        self.set_pending(pending);
        self.commit(next);
        Ok(out)
    }

    /// Replaces the pending timed batches when the file had any.
    fn set_pending(&mut self, pending: Vec<(u64, LbFile)>) {
        if !pending.is_empty() {
            self.pending = pending;
        }
    }

    /// Applies a `conn_max` value (module docs); `None` keeps the size.
    fn set_conn_max(&mut self, conn_max: Option<u32>) {
        if let Some(n) = conn_max {
            self.base.max_conns = n;
        }
    }

    /// Replaces the state with `next` and hands the connection table the
    /// settings it keeps its own copy of.
    fn commit(&mut self, next: LbState) {
        self.advanced_ns = None;
        self.quiet_until_ns = 0;
        let deleted = next.services.dests_deleted_since(&self.lb.services);
        self.lb = next;
        // `-Z` zeroes the rates with the counters.
        self.rates.restart_zeroed(&self.lb.services);
        self.conns.set_config(self.lb.conn_config(&self.base));
        self.sync.reconcile(&self.lb.daemons, self.lb.sysctls.sync, &self.lb.net, &mut self.conns);
        if deleted && self.lb.sysctls.expire_nodest_conn {
            // The kernel's background job, queued when a dest is deleted
            // while the sysctl is on (spec 2.8). Turning the sysctl on
            // later queues nothing: older conns of deleted dests go at
            // their next packet or their timeout.
            self.conns.flush_unavailable(&mut self.lb.services, self.now_ns);
        }
    }

    /// Runs ipvsadm listing command lines (`-Ln --stats`, `-Lnc`, `-S`, ...)
    /// and returns their output, one string per line ([`parse_listing`]).
    pub fn list(&self, commands: &str) -> Result<Vec<String>, Vec<CommandError>> {
        let parsed = parse_listing(commands)?;
        let mut scratch = self.lb.clone();
        admin::apply_file(&parsed, &mut scratch, &self.list_env())
    }

    /// The BMv2 runtime-CLI commands that fill the director's tables of
    /// `program` from this state (module docs). `parsed` gives the lines
    /// errors are reported at.
    pub fn table_commands(&self, program: &Program, parsed: &LbFile, text: &str) -> Result<String, Vec<CommandError>> {
        table_commands(&self.lb, program, parsed, text)
    }
}

/// Parses ipvsadm listing command lines (`--ipvs-list`, a `ctl` listing):
/// `-L` and `-S` with their options. Any other line (`-A`, a `port` line,
/// ...) is refused: a listing changes nothing, so it would be lost.
pub fn parse_listing(commands: &str) -> Result<LbFile, Vec<CommandError>> {
    let parsed = admin::parse_file(commands, "--ipvs-list")?;
    let not_listing: Vec<usize> = parsed
        .commands
        .iter()
        .filter(|c| !c.op.is_listing())
        .map(|c| c.line)
        .chain(commands.lines().enumerate().filter_map(|(i, l)| {
            let first = l.split_whitespace().next();
            matches!(first, Some("port" | "neigh" | "route")).then_some(i + 1)
        }))
        .collect();
    if not_listing.is_empty() {
        return Ok(parsed);
    }
    let message = "not a listing command (only -L and -S, with their options)";
    Err(not_listing
        .into_iter()
        .map(|line| CommandError { file: "--ipvs-list".to_string(), line, message: message.to_string() })
        .collect())
}

/// Loads `lb.conf` into the switch: the director state and the tables, all
/// or nothing (module docs). Returns the output of the file's listing
/// commands. A program without `conn_table` or `scheduler` instances gets a
/// director too (its tables can still be filled).
pub fn load_into_switch(switch: &mut Switch, text: &str, file: &str) -> Result<Vec<String>, Vec<CommandError>> {
    let LbText { conn_max, timed, parsed, rest } = parse_lb_file(text, file)?;
    let text = rest.as_str();
    let director = switch.externs_mut().director_or_insert();
    let mut next = director.lb.clone();
    // As in [`Director::load`]: timers start from the latest packet time.
    next.services.advance(director.now_ns / 1_000_000);
    let out = admin::apply_file(&parsed, &mut next, &director.list_env())?;
    let pending = check_timed(timed, &next, &director.list_env(), file)?;
    let loaded = director.tables_loaded.clone();
    let commands = table_commands(&next, switch.program(), &parsed, text)?;
    let unchanged = loaded.as_deref() == Some(commands.as_str());
    if !unchanged {
        switch.apply_commands(&commands, "<lb.conf entries>").map_err(|errs| {
            errs.into_iter()
                .map(|e| {
                    let cmd = commands.lines().nth(e.line.saturating_sub(1)).unwrap_or("");
                    CommandError {
                        file: file.to_string(),
                        line: 0,
                        message: format!("generated table entry `{cmd}` refused: {}", e.message),
                    }
                })
                .collect::<Vec<_>>()
        })?;
    }
    let director = switch.externs_mut().director_or_insert();
    director.tables_loaded = Some(commands);
    director.set_conn_max(conn_max);
    director.set_pending(pending);
    director.commit(next);
    Ok(out)
}

/// One timed batch before checking: (offset ns, the text holding only its
/// lines, each at its own line number).
type TimedText = (u64, String);

/// The `@T LINE` lines of `text` (module docs): the text with them blanked
/// and the batches in order of T.
fn split_timed(text: &str, file: &str) -> (String, Vec<TimedText>, Vec<CommandError>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len());
    let mut batches: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix('@') else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        out.push('\n');
        let t = rest.split_whitespace().next().unwrap_or("");
        match t.parse::<f64>() {
            Ok(s) if (0.0..1e9).contains(&s) => {
                batches.entry((s * 1e9).round() as u64).or_default().push(i);
            }
            _ => errors.push(CommandError {
                file: file.to_string(),
                line: i + 1,
                message: format!("timed line: bad time `@{t}' (expected @SECONDS LINE, seconds >= 0)"),
            }),
        }
    }
    let timed = batches
        .into_iter()
        .map(|(at, idx)| {
            let mut batch = vec![""; lines.len()];
            for i in idx {
                let rest = lines[i].trim_start().trim_start_matches('@');
                batch[i] = rest.split_once(char::is_whitespace).map_or("", |(_, l)| l);
            }
            (at, batch.join("\n") + "\n")
        })
        .collect();
    (out, timed, errors)
}

/// Parses the timed batches and checks each against the state the earlier
/// ones leave (module docs); returns them earliest last, for popping.
fn check_timed(
    timed: Vec<TimedText>,
    state: &LbState,
    env: &ListEnv<'_>,
    file: &str,
) -> Result<Vec<(u64, LbFile)>, Vec<CommandError>> {
    let mut state = state.clone();
    let mut out = Vec::new();
    for (at, text) in timed {
        let parsed = admin::parse_file(&text, file)?;
        let mut errors: Vec<CommandError> = parsed
            .commands
            .iter()
            .filter(|c| {
                !matches!(
                    c.op,
                    Op::Ipvsadm(
                        AdminCmd::AddDest(..)
                            | AdminCmd::EditDest(..)
                            | AdminCmd::DeleteDest(..)
                            | AdminCmd::Zero(_)
                            | AdminCmd::SetTimeouts(_)
                    ) | Op::Sysctl(_)
                        | Op::Overhead(_)
                )
            })
            .map(|c| CommandError {
                file: file.to_string(),
                line: c.line,
                message: "this line cannot be timed (only -a, -e, -d, -Z, --set, sysctl and overhead)".to_string(),
            })
            .collect();
        if parsed.net.is_some() {
            errors.push(CommandError {
                file: file.to_string(),
                line: 0,
                message: "port, neigh and route lines cannot be timed".to_string(),
            });
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        admin::apply_file(&parsed, &mut state, env)?;
        out.push((at, parsed));
    }
    out.reverse();
    Ok(out)
}

/// The `conn_max N` lines of `text` (module docs): the text with those lines
/// blanked (so the other lines keep their numbers) and the last value.
fn split_conn_max(text: &str, file: &str) -> (String, Option<u32>, Vec<CommandError>) {
    let mut out = String::with_capacity(text.len());
    let mut value = None;
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let words: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().collect();
        if words.first() != Some(&"conn_max") {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        out.push('\n');
        match words[1..] {
            [n] => match n.parse::<u32>() {
                Ok(n) => value = Some(n),
                Err(_) => errors.push(CommandError {
                    file: file.to_string(),
                    line: i + 1,
                    message: format!("conn_max: bad value `{n}' (expected a number of entries, 0 for unbounded)"),
                }),
            },
            _ => errors.push(CommandError {
                file: file.to_string(),
                line: i + 1,
                message: "usage: conn_max N".to_string(),
            }),
        }
    }
    (out, value, errors)
}

/// A parsed `lb.conf` ([`parse_lb_file`]).
struct LbText {
    /// The last `conn_max` value.
    conn_max: Option<u32>,
    /// The timed batches, unparsed ([`check_timed`] parses them).
    timed: Vec<TimedText>,
    /// The other lines.
    parsed: LbFile,
    /// The text of the other lines (the rest blanked, so line numbers hold).
    rest: String,
}

/// Parses a whole `lb.conf`: its `conn_max` lines, its timed (`@T`) lines
/// and the rest ([`admin::parse_file`]). Every line that does not parse is
/// reported, whichever kind it is, in line order; the lines are applied
/// (and checked against the state) only when all of them parse.
fn parse_lb_file(text: &str, file: &str) -> Result<LbText, Vec<CommandError>> {
    let (text, conn_max, mut errors) = split_conn_max(text, file);
    let (rest, timed, timed_errors) = split_timed(&text, file);
    errors.extend(timed_errors);
    match admin::parse_file(&rest, file) {
        Ok(parsed) if errors.is_empty() => return Ok(LbText { conn_max, timed, parsed, rest }),
        Ok(_) => {}
        Err(more) => errors.extend(more),
    }
    errors.sort_by_key(|e| e.line);
    Err(errors)
}

/// The first line of `text` whose first word is `keyword` (1-based; 0 if none).
fn first_line(text: &str, keyword: &str) -> usize {
    text.lines()
        .position(|l| l.split('#').next().unwrap_or("").split_whitespace().next() == Some(keyword))
        .map_or(0, |i| i + 1)
}

/// See [`Director::table_commands`].
fn table_commands(lb: &LbState, program: &Program, parsed: &LbFile, text: &str) -> Result<String, Vec<CommandError>> {
    let file = parsed.file.as_str();
    let net = &lb.net;
    let service_line =
        parsed.commands.iter().find(|c| matches!(c.op, Op::Ipvsadm(AdminCmd::AddService(_)))).map_or(0, |c| c.line);
    let port_line = first_line(text, "port");
    // Why each table is needed: the line to blame, or None when it is not.
    let has_services = lb.services.services().next().is_some();
    let has_addrs = net.ports.values().any(|p| !p.addrs.is_empty());
    let needed: [Option<usize>; 5] = [
        has_services.then_some(service_line),
        (has_addrs || (has_services && !net.ports.is_empty())).then_some(if has_addrs {
            port_line
        } else {
            service_line
        }),
        (has_addrs || !net.routes.is_empty()).then(|| {
            if net.routes.is_empty() {
                port_line
            } else {
                first_line(text, "route")
            }
        }),
        (!net.neighbours.is_empty()).then(|| first_line(text, "neigh")),
        (!net.ports.is_empty()).then_some(port_line),
    ];
    let mut errors = Vec::new();
    let mut present = [false; 5];
    // Whether ipv4_routes has the optional `local_broadcast` action.
    let mut broadcast_routes = false;
    for (i, (table, action)) in TABLES.iter().enumerate() {
        let found: Vec<_> = program.tables.iter().filter(|t| t.name.rsplit('.').next() == Some(*table)).collect();
        let err = |line: usize, message: String| CommandError { file: file.to_string(), line, message };
        match (found.as_slice(), needed[i]) {
            ([], Some(line)) => errors.push(err(
                line,
                format!("the program has no table `{table}` (with action `{action}`), which this configuration needs"),
            )),
            ([], None) => {}
            ([t], need) => {
                let has = |name: &str| {
                    t.actions.iter().any(|&a| program.actions[a.index()].name.rsplit('.').next() == Some(name))
                };
                let has_action = has(action);
                broadcast_routes |= *table == "ipv4_routes" && has(BROADCAST_ACTION);
                if !has_action {
                    errors.push(err(need.unwrap_or(0), format!("table `{}` has no action `{action}`", t.name)));
                } else if t.entries_const {
                    if let Some(line) = need {
                        errors.push(err(
                            line,
                            format!("table `{}` has const entries; the director cannot fill it", t.name),
                        ));
                    }
                } else {
                    present[i] = true;
                }
            }
            (_, _) => errors.push(err(
                needed[i].unwrap_or(0),
                format!("the program has several tables named `{table}`; the director needs exactly one"),
            )),
        }
    }
    let mut cmds = String::new();
    // An entry `KEY => PARAMS` of table `i` (of TABLES) to `action`.
    let mut add = |i: usize, action: &str, entry: String| {
        if present[i] {
            cmds.push_str(&format!("table_add {} {action} {entry}\n", TABLES[i].0));
        }
    };
    // ipvs_services
    for svc in lb.services.services() {
        let Ok(id) = u16::try_from(svc.id.0) else {
            errors.push(CommandError {
                file: file.to_string(),
                line: service_line,
                message: format!("service id {} does not fit `set_service`'s bit<16>", svc.id.0),
            });
            continue;
        };
        let k = svc.key;
        let proto = k.proto.number();
        if k.port != 0 {
            add(0, TABLES[0].1, format!("{proto} {} {}&&&0xffff => {id} 1", k.addr, k.port));
        } else {
            add(0, TABLES[0].1, format!("{proto} {} 0&&&0 => {id} 2", k.addr));
        }
    }
    // director_addrs
    let mut addrs: BTreeMap<Ipv4Addr, Mac> = BTreeMap::new();
    for p in net.ports.values() {
        for a in &p.addrs {
            addrs.entry(a.addr).or_insert(p.mac);
        }
    }
    let fallback = net.ports.values().next().map(|p| p.mac);
    for svc in lb.services.services() {
        let vip = svc.key.addr;
        let mac = net.connected_port(vip).and_then(|n| net.ports.get(&n)).map(|p| p.mac).or(fallback);
        if let Some(mac) = mac {
            addrs.entry(vip).or_insert(mac);
        }
    }
    for (ip, mac) in &addrs {
        add(1, TABLES[1].1, format!("{ip} => {mac}"));
    }
    // ipv4_routes: the subnets' broadcast addresses first (they win over
    // any route, as Linux's local table does), then static routes, so that
    // they win a tie (first line first), then connected subnets (lowest
    // port first).
    // Each prefix's action and parameters (None: `local_broadcast`).
    let mut routes: BTreeMap<(u32, u8), Option<(Ipv4Addr, u16)>> = BTreeMap::new();
    if broadcast_routes {
        for b in net.ports.values().flat_map(|p| &p.addrs).filter_map(subnet_broadcast) {
            routes.entry((u32::from(b), 32)).or_insert(None);
        }
    }
    for r in &net.routes {
        let key = (u32::from(r.prefix.network()), r.prefix.len);
        routes.entry(key).or_insert(Some((r.via.unwrap_or(Ipv4Addr::UNSPECIFIED), r.port)));
    }
    for p in net.ports.values() {
        for a in &p.addrs {
            routes.entry((u32::from(a.network()), a.len)).or_insert(Some((Ipv4Addr::UNSPECIFIED, p.number)));
        }
    }
    for ((net_addr, len), hop) in &routes {
        let prefix = format!("{}/{len}", Ipv4Addr::from(*net_addr));
        match hop {
            Some((nhop, port)) => add(2, TABLES[2].1, format!("{prefix} => {nhop} {port}")),
            None => add(2, BROADCAST_ACTION, format!("{prefix} =>")),
        }
    }
    // neighbours, except the director's own addresses: Linux's local
    // route wins over any neighbour entry (a packet to one is delivered
    // locally), and lb.p4lite tells its own addresses by the neighbour miss.
    for n in net.neighbours.values().filter(|n| !addrs.contains_key(&n.ip)) {
        add(3, TABLES[3].1, format!("{} => {}", n.ip, n.mac));
    }
    // port_info
    for p in net.ports.values() {
        let saddr = p.addrs.first().map_or(Ipv4Addr::UNSPECIFIED, |a| a.addr);
        add(4, TABLES[4].1, format!("{} => {} {saddr} {}", p.number, p.mac, p.mtu));
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line);
        return Err(errors);
    }
    let mut out = String::new();
    for (i, (table, _)) in TABLES.iter().enumerate() {
        if present[i] {
            out.push_str(&format!("table_clear {table}\n"));
        }
    }
    out.push_str(&cmds);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipvs::service::{Protocol, ServiceKey};
    use crate::switch::tests::compile;
    use crate::switch::SwitchOptions;

    /// A program with the five director tables of the contract.
    fn program(tables: &[&str]) -> Program {
        program_with(tables, "")
    }

    /// `program`, its `ipv4_routes` with `extra_route_action` (declared
    /// with no parameters) too when not empty.
    fn program_with(tables: &[&str], extra_route_action: &str) -> Program {
        let (extra_decl, extra_name) = if extra_route_action.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("action {extra_route_action}() {{}}"), format!("{extra_route_action};"))
        };
        let routes = format!(
            "action set_nexthop(bit<32> nhop, bit<9> port) {{ meta.nhop = nhop; std.egress_spec = port; }}
             {extra_decl}
             table ipv4_routes {{ key = {{ hdr.ipv4.dst_addr: lpm; }} actions = {{ set_nexthop; {extra_name} }} }}"
        );
        let all = [
            "action set_service(bit<16> service) { meta.service = service; }
             table ipvs_services { key = { hdr.ipv4.protocol: exact; hdr.ipv4.dst_addr: exact; meta.vport: ternary; }
                                   actions = { set_service; } }",
            "action own_address(bit<48> mac) { meta.mac = mac; }
             table director_addrs { key = { hdr.ipv4.src_addr: exact; } actions = { own_address; } }",
            routes.as_str(),
            "action set_dmac(bit<48> dmac) { meta.mac = dmac; }
             table neighbours { key = { meta.nhop: exact; } actions = { set_dmac; } }",
            "action set_port(bit<48> smac, bit<32> saddr, bit<16> mtu) { meta.mac = smac; meta.nhop = saddr; meta.vport = mtu; }
             table port_info { key = { std.egress_spec: exact; } actions = { set_port; } }",
        ];
        let decls: String = TABLES
            .iter()
            .zip(all)
            .filter(|((name, _), _)| tables.contains(name))
            .map(|(_, d)| d)
            .collect::<Vec<_>>()
            .join("\n");
        let applies: String =
            TABLES.iter().filter(|(n, _)| tables.contains(n)).map(|(n, _)| format!("{n}.apply(); ")).collect();
        compile(&format!(
            r#"
            header ipv4_t {{ bit<8> protocol; bit<32> src_addr; bit<32> dst_addr; }}
            struct hs {{ ipv4_t ipv4; }}
            struct m_t {{ bit<16> service; bit<16> vport; bit<48> mac; bit<32> nhop; }}
            parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t std) {{
                state start {{ pkt.extract(hdr.ipv4); transition accept; }}
            }}
            control C(inout hs hdr, inout m_t meta, inout standard_metadata_t std) {{
                {decls}
                apply {{ {applies} }}
            }}
            control D(packet_out pkt, in hs hdr) {{ apply {{ pkt.emit(hdr.ipv4); }} }}
            Pipeline(P(), C(), D()) main;
            "#
        ))
    }

    fn switch(tables: &[&str]) -> Switch {
        Switch::new(program(tables), SwitchOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    const CONF: &str = "\
port 0 name eth0 mac 02:00:00:00:00:01 addr 192.0.2.1/24 addr 198.51.100.10/32
port 1 name eth1 mac 02:00:00:00:01:01 addr 10.1.1.1/24 mtu 9000
neigh 192.0.2.254 mac 02:00:00:00:00:fe
neigh 10.1.1.21 mac 02:00:00:00:01:21
route default via 192.0.2.254
route 10.1.1.0/24 port 1
route 10.2.0.0/16 via 10.1.1.254
-A -t 198.51.100.10:80 -s wlc
-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m
-A -u 198.51.100.11:0 -p
-a -u 198.51.100.11:0 -r 10.1.1.22 -m
";

    /// `-Z` sent while traffic flows shows zero rates in the next `--rate`
    /// listing, as the kernel's `ip_vs_zero_stats()` does (they used to
    /// stay until the estimator's next 2-second tick).
    #[test]
    fn zeroing_shows_zero_rates_at_once() {
        let mut d = Director::new(0);
        d.load(CONF, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let vs = ServiceKey { proto: Protocol::Tcp, addr: "198.51.100.10".parse().unwrap(), port: 80 };
        let svc = d.lb.services.find_service(&vs).unwrap();
        let dest = d.lb.services.find_dest(svc, "10.1.1.21".parse().unwrap(), 8080).unwrap();
        for t in 0..10u64 {
            for _ in 0..100 {
                d.lb.services.count_in(dest, 60);
            }
            d.advance(t * 1_000_000_000 + 1);
        }
        let rate_row = |d: &Director| {
            let out = d.list("-Ln --rate").unwrap_or_else(|e| panic!("{e:?}"));
            out.iter().find(|l| l.starts_with("TCP  198.51.100.10:80")).cloned().unwrap_or_default()
        };
        assert!(rate_row(&d).split_whitespace().nth(3).is_some_and(|pps| pps != "0"), "{}", rate_row(&d));
        d.load("-Z", "ctl").unwrap_or_else(|e| panic!("{e:?}"));
        let row = rate_row(&d);
        assert_eq!(row.split_whitespace().skip(2).collect::<Vec<_>>(), ["0"; 5], "{row}");
    }

    /// `expire_nodest_conn`'s flush of a deleted dest's conns runs when a
    /// dest is deleted with the sysctl on, as the kernel queues it, and
    /// not when the sysctl is turned on after the deletion (it used to run
    /// on every commit, so `sysctl expire_nodest_conn 1` alone removed the
    /// conns of dests deleted long before).
    #[test]
    fn expire_nodest_conn_flushes_only_on_a_deletion() {
        let mut d = Director::new(0);
        let conf = format!("{CONF}-a -t 198.51.100.10:80 -r 10.1.1.23:8080 -m\n");
        d.load(&conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let vs = ServiceKey { proto: Protocol::Tcp, addr: "198.51.100.10".parse().unwrap(), port: 80 };
        let svc = d.lb.services.find_service(&vs).unwrap().0 as u16;
        let syn = |sport: u16, t: u64| crate::externs::ipvs::Packet {
            proto: 6,
            saddr: 0xC000_0264,
            sport,
            daddr: 0xC633_640A,
            dport: 80,
            tcp_flags: 0x02,
            l3_len: 40,
            now_ns: t,
        };
        // wlc over two idle dests: one conn each.
        for sport in [1000, 1001] {
            let r = crate::externs::ipvs::schedule(&mut d, svc, &syn(sport, 1_000_000));
            assert_eq!(r.code, crate::externs::ipvs::IPVS_HIT);
        }
        assert_eq!(d.conns.len(), 2);
        d.load("-d -t 198.51.100.10:80 -r 10.1.1.21:8080", "ctl").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.conns.len(), 2, "the sysctl is off: the conn stays");
        d.load("sysctl expire_nodest_conn 1", "ctl").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.conns.len(), 2, "turning the sysctl on flushes nothing");
        d.load("-e -t 198.51.100.10:80 -r 10.1.1.23:8080 -m -w 2", "ctl").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.conns.len(), 2, "an edit deletes no dest");
        d.load("-d -t 198.51.100.10:80 -r 10.1.1.23:8080", "ctl").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.conns.len(), 0, "a deletion with the sysctl on flushes every unavailable dest's conns");
    }

    /// A `neigh` line for one of the director's own addresses (a port's,
    /// a VIP) is accepted, as `ip neigh add` accepts it, and has no effect,
    /// as in Linux, where the local route wins: no `neighbours` entry, so
    /// lb.p4lite still delivers such packets locally (its neighbour miss).
    #[test]
    fn own_addresses_get_no_neighbour_entry() {
        let conf =
            format!("{CONF}neigh 10.1.1.1 mac 02:00:00:00:0a:01\nneigh 198.51.100.11 mac 02:00:00:00:0a:02 port 0\n");
        let mut d = Director::new(0);
        d.load(&conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let parsed = admin::parse_file(&conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let cmds = d.table_commands(&program(&TABLES.map(|t| t.0)), &parsed, &conf).unwrap_or_else(|e| panic!("{e:?}"));
        let neighbours: Vec<&str> = cmds.lines().filter(|l| l.starts_with("table_add neighbours")).collect();
        assert_eq!(
            neighbours,
            [
                "table_add neighbours set_dmac 10.1.1.21 => 02:00:00:00:01:21",
                "table_add neighbours set_dmac 192.0.2.254 => 02:00:00:00:00:fe"
            ]
        );
    }

    #[test]
    fn entries_follow_the_contract() {
        let lb = {
            let mut d = Director::new(0);
            d.load(CONF, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
            d
        };
        let parsed = admin::parse_file(CONF, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let cmds = lb.table_commands(&program(&TABLES.map(|t| t.0)), &parsed, CONF).unwrap_or_else(|e| panic!("{e:?}"));
        let want = "\
table_clear ipvs_services
table_clear director_addrs
table_clear ipv4_routes
table_clear neighbours
table_clear port_info
table_add ipvs_services set_service 6 198.51.100.10 80&&&0xffff => 0 1
table_add ipvs_services set_service 17 198.51.100.11 0&&&0 => 1 2
table_add director_addrs own_address 10.1.1.1 => 02:00:00:00:01:01
table_add director_addrs own_address 192.0.2.1 => 02:00:00:00:00:01
table_add director_addrs own_address 198.51.100.10 => 02:00:00:00:00:01
table_add director_addrs own_address 198.51.100.11 => 02:00:00:00:00:01
table_add ipv4_routes set_nexthop 0.0.0.0/0 => 192.0.2.254 0
table_add ipv4_routes set_nexthop 10.1.1.0/24 => 0.0.0.0 1
table_add ipv4_routes set_nexthop 10.2.0.0/16 => 10.1.1.254 1
table_add ipv4_routes set_nexthop 192.0.2.0/24 => 0.0.0.0 0
table_add ipv4_routes set_nexthop 198.51.100.10/32 => 0.0.0.0 0
table_add neighbours set_dmac 10.1.1.21 => 02:00:00:00:01:21
table_add neighbours set_dmac 192.0.2.254 => 02:00:00:00:00:fe
table_add port_info set_port 0 => 02:00:00:00:00:01 192.0.2.1 1500
table_add port_info set_port 1 => 02:00:00:00:01:01 10.1.1.1 9000
";
        assert_eq!(cmds, want);
        // The routes reproduce the network model's lookup.
        for (dst, port, via) in
            [("10.2.3.4", 1, "10.1.1.254"), ("10.1.1.9", 1, "10.1.1.9"), ("8.8.8.8", 0, "192.0.2.254")]
        {
            let ip: Ipv4Addr = dst.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            let hop = lb.lb.net.route(ip).map(|h| (h.port, h.ip.to_string()));
            assert_eq!(hop, Some((port, via.to_string())), "{dst}");
        }
        // Applied to a switch: every table is filled.
        let mut sw = switch(&TABLES.map(|t| t.0));
        load_into_switch(&mut sw, CONF, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let sizes: Vec<usize> = sw.tables().iter().map(|(_, t)| t.len()).collect();
        assert_eq!(sizes, [2, 4, 5, 2, 2]);
        // Loading again replaces the entries instead of duplicating them.
        load_into_switch(&mut sw, "-D -u 198.51.100.11:0\n", "more.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let sizes: Vec<usize> = sw.tables().iter().map(|(_, t)| t.len()).collect();
        assert_eq!(sizes, [1, 3, 5, 2, 2]);
        // A load that changes nothing the tables hold (a weight edit, a new
        // real server) leaves them alone: an entry added by hand survives
        // it, and the next load that does change them replaces it.
        let extra = "table_add port_info set_port 7 => 02:00:00:00:00:07 192.0.2.7 1500\n";
        sw.apply_commands(extra, "extra").unwrap_or_else(|e| panic!("{e:?}"));
        let edits = "-e -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 5\n-a -t 198.51.100.10:80 -r 10.1.1.23:8080 -m\n";
        load_into_switch(&mut sw, edits, "edit.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let sizes: Vec<usize> = sw.tables().iter().map(|(_, t)| t.len()).collect();
        assert_eq!(sizes, [1, 3, 5, 2, 3]);
        load_into_switch(&mut sw, "-D -t 198.51.100.10:80\n", "more.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let sizes: Vec<usize> = sw.tables().iter().map(|(_, t)| t.len()).collect();
        assert_eq!(sizes, [0, 3, 5, 2, 2]);
    }

    /// With `local_broadcast` in `ipv4_routes`, each connected subnet's
    /// broadcast address is a /32 to it, as Linux's `fib_add_ifaddr` adds
    /// them: any prefix length under 31 (none for /31 and /32, nor for a
    /// network in 0.0.0.0/8), once per subnet, winning over a static route
    /// of the same /32; the network address stays unicast.
    #[test]
    fn subnet_broadcasts_go_to_local_broadcast() {
        let conf = "\
port 0 mac 02:00:00:00:00:01 addr 192.0.2.1/24 addr 192.0.2.2/24 addr 198.51.100.10/32 addr 10.0.0.1/31
port 1 mac 02:00:00:00:01:01 addr 172.16.5.9/12 addr 10.9.9.2/30 addr 10.1.1.1/24 addr 1.2.3.4/4
port 2 mac 02:00:00:00:02:01 addr 10.1.1.2/24
route 192.0.2.255/32 via 192.0.2.254
";
        let mut d = Director::new(0);
        d.load(conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let parsed = admin::parse_file(conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let program = program_with(&TABLES.map(|t| t.0), BROADCAST_ACTION);
        let cmds = d.table_commands(&program, &parsed, conf).unwrap_or_else(|e| panic!("{e:?}"));
        let routes: Vec<&str> = cmds.lines().filter(|l| l.starts_with("table_add ipv4_routes")).collect();
        assert_eq!(
            routes,
            [
                "table_add ipv4_routes set_nexthop 0.0.0.0/4 => 0.0.0.0 1",
                "table_add ipv4_routes set_nexthop 10.0.0.0/31 => 0.0.0.0 0",
                "table_add ipv4_routes set_nexthop 10.1.1.0/24 => 0.0.0.0 1",
                "table_add ipv4_routes local_broadcast 10.1.1.255/32 =>",
                "table_add ipv4_routes set_nexthop 10.9.9.0/30 => 0.0.0.0 1",
                "table_add ipv4_routes local_broadcast 10.9.9.3/32 =>",
                "table_add ipv4_routes set_nexthop 172.16.0.0/12 => 0.0.0.0 1",
                "table_add ipv4_routes local_broadcast 172.31.255.255/32 =>",
                "table_add ipv4_routes set_nexthop 192.0.2.0/24 => 0.0.0.0 0",
                "table_add ipv4_routes local_broadcast 192.0.2.255/32 =>",
                "table_add ipv4_routes set_nexthop 198.51.100.10/32 => 0.0.0.0 0",
            ]
        );
        // The entries load into a switch; a program without the action
        // gets none of them (entries_follow_the_contract).
        let mut sw = Switch::new(program, SwitchOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        load_into_switch(&mut sw, conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let sizes: Vec<usize> = sw.tables().iter().map(|(_, t)| t.len()).collect();
        assert_eq!(sizes, [0, 9, 11, 0, 3]);
    }

    /// The messages of a load of `text` as `lb.conf` that must fail.
    fn load_errors(sw: &mut Switch, text: &str) -> Vec<String> {
        load_into_switch(sw, text, "lb.conf").err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_bad_file_applies_nothing() {
        let mut sw = switch(&TABLES.map(|t| t.0));
        let bad = format!("{CONF}-a -t 198.51.100.99:80 -r 10.1.1.21\nneigh 10.1.1.22 mac 01:00:00:00:00:01\n");
        let errs = load_errors(&mut sw, &bad);
        assert_eq!(errs, ["lb.conf:13: MAC address 01:00:00:00:00:01 is a multicast address"]);
        let bad = format!("{CONF}-a -t 198.51.100.99:80 -r 10.1.1.21\n");
        let errs = load_errors(&mut sw, &bad);
        assert_eq!(errs, ["lb.conf:12: Service not defined"]);
        assert!(sw.tables().iter().all(|(_, t)| t.is_empty()));
        let d = sw.externs().director();
        assert_eq!(d.map(|d| d.lb.services.services().count()), Some(0));
    }

    #[test]
    fn conn_max_sets_the_table_size_and_keeps_line_numbers() {
        let mut d = Director::new(1_048_576);
        d.load(&format!("conn_max 4  # small\n{CONF}"), "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.conns.config().max_conns, 4);
        // A file without the line keeps the size.
        d.load("-A -t 198.51.100.99:80\n", "more.conf").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(d.conns.config().max_conns, 4);
        let errs: Vec<String> = d
            .load("conn_max 0\nconn_max lots\n-a -t 198.51.100.98:80 -r 10.1.1.21\nconn_max\n", "bad.conf")
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                "bad.conf:2: conn_max: bad value `lots' (expected a number of entries, 0 for unbounded)",
                "bad.conf:4: usage: conn_max N"
            ]
        );
        assert_eq!(d.conns.config().max_conns, 4);
    }

    #[test]
    fn list_refuses_what_is_not_a_listing() {
        let mut d = Director::new(0);
        d.load(CONF, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(d.list("-Ln\n-S -n\n").is_ok());
        let errs = d.list("-Ln\n-A -t 1.1.1.1:80\n").err().unwrap_or_default();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].to_string(), "--ipvs-list:2: not a listing command (only -L and -S, with their options)");
        assert!(d.list("sysctl expire_nodest_conn 1\n").is_err());
        let errs = d.list("-Ln\nroute default via 192.0.2.254\n").err().unwrap_or_default();
        assert_eq!(errs.iter().map(|e| e.line).collect::<Vec<_>>(), [2]);
    }

    /// A bad `conn_max` or timed line does not hide the other lines that
    /// do not parse: every one is reported, in line order, and nothing is
    /// applied.
    #[test]
    fn every_line_that_does_not_parse_is_reported() {
        let mut d = Director::new(1_048_576);
        d.load(CONF, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let before = d.list("-Ln\n").unwrap_or_else(|e| panic!("{e:?}"));
        let text = "sysctl bogus 1\n@x -Z\n-A -t 198.51.100.99:80\nconn_max -1\noverhead foo\n";
        let errs: Vec<String> =
            d.load(text, "bad.conf").err().unwrap_or_default().iter().map(ToString::to_string).collect();
        let lines: Vec<&str> = errs.iter().map(|e| e.split(':').take(2).collect::<Vec<_>>()[1]).collect();
        assert_eq!(lines, ["1", "2", "4", "5"], "{errs:#?}");
        assert_eq!(d.list("-Ln\n").unwrap_or_else(|e| panic!("{e:?}")), before, "nothing applied");
        assert_eq!(d.conns.config().max_conns, 1_048_576);
    }

    #[test]
    fn timed_lines_apply_when_packet_time_reaches_them() {
        let mut d = Director::new(0);
        let conf = format!("{CONF}@10 -e -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 0\n@2.5 -Z\n");
        d.load(&conf, "lb.conf").unwrap_or_else(|e| panic!("{e:?}"));
        let weight = |d: &Director| {
            d.lb.services
                .services()
                .flat_map(|s| s.dests().iter())
                .map(|x| d.lb.services.dest(*x).weight)
                .collect::<Vec<_>>()
        };
        let before = weight(&d);
        assert!(before.iter().all(|w| *w > 0), "{before:?}");
        d.advance(5_000_000_000);
        d.advance(14_999_999_999);
        assert_eq!(weight(&d), before);
        d.advance(15_000_000_000);
        assert!(weight(&d).contains(&0));
        let errs: Vec<String> =
            d.load("@x -Z\n", "a.conf").err().unwrap_or_default().iter().map(ToString::to_string).collect();
        assert_eq!(errs, ["a.conf:1: timed line: bad time `@x' (expected @SECONDS LINE, seconds >= 0)"]);
        let errs: Vec<String> = d
            .load("\n@3 -A -t 198.51.100.50:80\n", "b.conf")
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs, ["b.conf:2: this line cannot be timed (only -a, -e, -d, -Z, --set, sysctl and overhead)"]);
    }

    #[test]
    fn missing_tables_are_named_with_the_line_that_needs_them() {
        let mut sw = switch(&["ipvs_services", "ipv4_routes"]);
        let errs = load_errors(&mut sw, CONF);
        assert_eq!(
            errs,
            [
                "lb.conf:1: the program has no table `director_addrs` (with action `own_address`), which this configuration needs",
                "lb.conf:1: the program has no table `port_info` (with action `set_port`), which this configuration needs",
                "lb.conf:3: the program has no table `neighbours` (with action `set_dmac`), which this configuration needs",
            ]
        );
        assert!(sw.tables().iter().all(|(_, t)| t.is_empty()));
        // Services alone need only `ipvs_services`.
        load_into_switch(&mut sw, "-A -t 198.51.100.10:80\n", "svc.conf").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(sw.tables().iter().map(|(_, t)| t.len()).collect::<Vec<_>>(), [1, 0]);
    }
}
