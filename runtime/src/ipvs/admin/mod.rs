//! The load balancer's control plane: `lb.conf`, a file of ipvsadm command
//! lines plus the director's own network settings, checked as a whole and
//! applied all or nothing; and ipvsadm's listings, byte for byte.
//!
//! # `lb.conf`
//! One command per line; `#` starts a comment; blank lines are skipped.
//! A line is either
//! - an **ipvsadm command line** (it starts with `-`, or with the word
//!   `ipvsadm`), exactly as `ipvsadm -S` prints and `ipvsadm -R` reads:
//!   `-A/-E/-D` services, `-a/-e/-d` real servers, `-C`, `-Z`,
//!   `--set tcp tcpfin udp`, `--start-daemon`/`--stop-daemon` (the sync
//!   daemons, [`crate::ipvs::sync`]), and the listings `-L`/`-l` (with `-n`, `-c`,
//!   `--stats`, `--rate`, `--exact`, `--thresholds`, `--persistent-conn`,
//!   `--tun-info`, `--nosort`, `--timeout`, `--daemon`, `-t/-u vip:port`)
//!   and `-S`, whose output is returned. Syntax, defaults, validations and
//!   messages are ipvsadm 1.31's; see [`parse`] for the details and the few
//!   deliberate differences (one more: the kernel's refusal of `-y` above
//!   `-x`, which ipvsadm prints as the bare `strerror(ERANGE)`, "Numerical
//!   result out of range", gets the reason in parentheses); or
//! - a **keyword line** for the director itself: `port`, `neigh`, `route`,
//!   `sysctl`, `overhead`; see [`config`]; or
//! - a **`check` line**: a health check of real servers, see
//!   [`crate::ipvs::health::config`]. Check lines are checked with the file
//!   (the service, and with `-r` the real server, must exist once the file
//!   is applied) and kept in [`LbState::checks`]; a file with check lines
//!   replaces the checks, a file without keeps them.
//!
//! ```text
//! # director
//! port 0 name eth0 mac 02:00:00:00:00:01 addr 192.0.2.1/24 addr 198.51.100.10/32
//! port 1 name eth1 mac 02:00:00:00:01:01 addr 10.1.1.1/24
//! neigh 192.0.2.254 mac 02:00:00:00:00:fe
//! neigh 10.1.1.21 mac 02:00:00:00:01:21
//! neigh 10.1.1.22 mac 02:00:00:00:01:22
//! route default via 192.0.2.254
//! sysctl expire_nodest_conn 1
//!
//! # services
//! -A -t 198.51.100.10:80 -s wlc
//! -a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 1
//! -a -t 198.51.100.10:80 -r 10.1.1.22:8080 -m -w 2
//! -A -u 198.51.100.10:53 -s rr -p -M 255.255.255.0
//! -a -u 198.51.100.10:53 -r 10.1.1.31
//! ```
//!
//! # Two phases, all or nothing
//! [`parse_file`] reads the whole file and reports **every** line that is
//! wrong on its own (syntax, ranges, unknown scheduler, option
//! combinations, the network's cross-line checks) as `file:line: message`.
//! [`apply_file`] then runs the commands in order on a **copy** of the
//! [`LbState`]; a command the table refuses ("Service not defined",
//! "Destination already exists", ...) is reported with its line and the
//! remaining commands still run against the copy, so one pass reports every
//! such error. Only if there was none does the copy replace the state, so
//! a file applies entirely or not at all. [`load`] does both.
//!
//! # Where the settings go
//! [`LbState`] holds the service table, the network, the sysctls and the
//! `--set` timeouts. The connection table keeps its own copy of the
//! settings it uses: after applying a file, hand it
//! [`LbState::conn_config`].

pub mod config;
pub mod list;
pub mod parse;
pub mod rate;

pub use crate::control::CommandError;

use self::config::{build_net, parse_config_line, ConfigLine, NetConfig, SysctlSet, Sysctls, Timeouts, KEYWORDS};
use self::list::{ConnRow, ServiceRow};
use self::parse::{parse_ipvsadm, AdminCmd, ListWhat};
use self::rate::RateEstimator;
use crate::ipvs::conn::tcp::TcpState;
use crate::ipvs::conn::{ConnConfig, ConnTable};
use crate::ipvs::health::config::{parse_check_line, CheckSpec};
use crate::ipvs::service::{IpvsError, Overhead, ServiceKey, Services};
use crate::ipvs::sync::Daemons;

/// Everything `lb.conf` configures.
#[derive(Clone, Debug, Default)]
pub struct LbState {
    /// Virtual services and real servers.
    pub services: Services,
    /// The director's ports, neighbours and routes.
    pub net: NetConfig,
    /// `net.ipv4.vs.*` settings.
    pub sysctls: Sysctls,
    /// `ipvsadm --set` timeouts.
    pub timeouts: Timeouts,
    /// The `check` lines (health checks; acted on in live mode only).
    pub checks: Vec<CheckSpec>,
    /// The sync daemons `--start-daemon` started.
    pub daemons: Daemons,
}

impl LbState {
    /// `base` with this state's timeouts and connection-table sysctls.
    pub fn conn_config(&self, base: &ConnConfig) -> ConnConfig {
        let mut cfg = base.clone();
        cfg.tcp_timeouts[TcpState::Established as usize] = self.timeouts.tcp;
        cfg.tcp_timeouts[TcpState::FinWait as usize] = self.timeouts.tcp_fin;
        cfg.udp_timeout = self.timeouts.udp;
        // Modes 1 and 2 switch to the DoS tables only under memory
        // pressure, which is not modelled; mode 3 always does.
        cfg.secure_tcp = self.sysctls.secure_tcp == 3;
        cfg.sloppy_tcp = self.sysctls.sloppy_tcp;
        // The kernel reads the int only as "non-zero" and "bit 2 set".
        let mode = self.sysctls.conn_reuse_mode;
        cfg.conn_reuse_mode = (mode & 2) as u8 | u8::from(mode != 0);
        cfg.expire_nodest_conn = self.sysctls.expire_nodest_conn;
        cfg.expire_quiescent_template = self.sysctls.expire_quiescent_template;
        cfg
    }
}

/// One checked command and its line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// 1-based line number.
    pub line: usize,
    /// What it does.
    pub op: Op,
}

/// What a command line does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// An ipvsadm command.
    Ipvsadm(AdminCmd),
    /// A `sysctl` line.
    Sysctl(SysctlSet),
    /// An `overhead` line.
    Overhead(Overhead),
    /// A `check` line.
    Check(Box<CheckSpec>),
}

impl Op {
    /// Whether the line only lists (`-L`, `-S`): it changes nothing.
    pub fn is_listing(&self) -> bool {
        matches!(self, Op::Ipvsadm(AdminCmd::List(_) | AdminCmd::Save(_)))
    }
}

/// A parsed and checked `lb.conf`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbFile {
    /// The file name, for error messages.
    pub file: String,
    /// The commands, in file order (network lines excluded).
    pub commands: Vec<Command>,
    /// The network its `port`/`neigh`/`route` lines declare; `None` if it
    /// has none (the current network is kept).
    pub net: Option<NetConfig>,
    /// The line of its first `port`/`neigh`/`route` line (0 if none).
    pub net_line: usize,
}

/// What the listings need besides the state.
#[derive(Clone, Copy, Default)]
pub struct ListEnv<'a> {
    /// The connection table and the current packet time in nanoseconds,
    /// for `-Lc` (no table: an empty listing).
    pub conns: Option<(&'a ConnTable, u64)>,
    /// Rate estimates for `--rate` (none: zeros).
    pub rates: Option<&'a RateEstimator>,
    /// The connection hash table size the banner shows (0: the kernel's
    /// default, 4096).
    pub conn_tab_size: u32,
}

/// Parses and checks a whole file. Returns every error, in line order.
pub fn parse_file(text: &str, file: &str) -> Result<LbFile, Vec<CommandError>> {
    let mut commands = Vec::new();
    let mut net_lines = Vec::new();
    let mut errors: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("");
        let words: Vec<&str> = content.split_whitespace().collect();
        let Some(&first) = words.first() else { continue };
        if first == "check" {
            match parse_check_line(raw) {
                Ok(c) => commands.push(Command { line, op: Op::Check(Box::new(c)) }),
                Err(e) => errors.push((line, e)),
            }
            continue;
        }
        if first.starts_with('-') || first == "ipvsadm" {
            match parse_ipvsadm(&words) {
                Ok(cmd) => commands.push(Command { line, op: Op::Ipvsadm(cmd) }),
                Err(e) => errors.push((line, e)),
            }
            continue;
        }
        match parse_config_line(&words) {
            Some(Ok(ConfigLine::Sysctl(s))) => commands.push(Command { line, op: Op::Sysctl(s) }),
            Some(Ok(ConfigLine::Overhead(o))) => commands.push(Command { line, op: Op::Overhead(o) }),
            Some(Ok(net_line)) => net_lines.push((line, net_line)),
            Some(Err(e)) => errors.push((line, e)),
            None => errors.push((
                line,
                format!(
                    "unknown keyword `{first}' (expected an ipvsadm command line starting with '-', or one of: {}, conn_max, check, @T)",
                    KEYWORDS.join(", ")
                ),
            )),
        }
    }
    // A broken `port` line would make every neighbour and route on that
    // port fail as well; report it alone and check the rest next time.
    let port_failed = errors
        .iter()
        .any(|(l, _)| text.lines().nth(l - 1).is_some_and(|t| t.split_whitespace().next() == Some("port")));
    let net = if net_lines.is_empty() || port_failed {
        None
    } else {
        match build_net(&net_lines) {
            Ok(net) => Some(net),
            Err(errs) => {
                errors.extend(errs);
                None
            }
        }
    };
    if errors.is_empty() {
        let net_line = net_lines.first().map_or(0, |(l, _)| *l);
        return Ok(LbFile { file: file.to_string(), commands, net, net_line });
    }
    errors.sort_by_key(|(l, _)| *l);
    Err(errors.into_iter().map(|(line, message)| CommandError { file: file.to_string(), line, message }).collect())
}

/// Applies a parsed file to `state`, all or nothing (see the module
/// docs). Returns the output of its listing commands, one string per line.
pub fn apply_file(parsed: &LbFile, state: &mut LbState, env: &ListEnv<'_>) -> Result<Vec<String>, Vec<CommandError>> {
    let mut next = state.clone();
    if let Some(net) = &parsed.net {
        next.net = net.clone();
    }
    let mut output = Vec::new();
    let mut errors = Vec::new();
    let mut checks = Vec::new();
    for cmd in &parsed.commands {
        let result = match &cmd.op {
            Op::Ipvsadm(a) => {
                apply_ipvsadm(a, &mut next, env).map(|text| output.extend(text.lines().map(String::from)))
            }
            Op::Sysctl(s) => {
                apply_sysctl(*s, &mut next);
                Ok(())
            }
            Op::Overhead(o) => {
                let mut c = next.services.config();
                c.overhead = *o;
                next.services.set_config(c);
                Ok(())
            }
            Op::Check(c) => {
                checks.push((cmd.line, c));
                Ok(())
            }
        };
        if let Err(message) = result {
            errors.push(CommandError { file: parsed.file.clone(), line: cmd.line, message });
        }
    }
    // Checked against the file's final state, so a check may come before
    // the lines that add its service.
    for (line, c) in &checks {
        if let Err(message) = check_target(c, &next.services) {
            errors.push(CommandError { file: parsed.file.clone(), line: *line, message });
        }
    }
    // A file that declares the network must keep the running daemons' ports.
    if parsed.net.is_some() {
        if let Err(message) = next.daemons.check_net(&next.net) {
            errors.push(CommandError { file: parsed.file.clone(), line: parsed.net_line, message });
        }
    }
    errors.sort_by_key(|e| e.line);
    if !checks.is_empty() {
        next.checks = checks.into_iter().map(|(_, c)| (**c).clone()).collect();
    }
    if errors.is_empty() {
        *state = next;
        Ok(output)
    } else {
        Err(errors)
    }
}

/// [`parse_file`] then [`apply_file`].
pub fn load(text: &str, file: &str, state: &mut LbState, env: &ListEnv<'_>) -> Result<Vec<String>, Vec<CommandError>> {
    apply_file(&parse_file(text, file)?, state, env)
}

/// A check's service, and with `-r` its real server, must exist.
fn check_target(c: &CheckSpec, services: &Services) -> Result<(), String> {
    let k = &c.service;
    let Some(s) = services.find_service(k) else {
        return Err(format!(
            "check: service {} {}:{} is not defined (no -A line for it)",
            k.proto.name(),
            k.addr,
            k.port
        ));
    };
    match c.dest {
        Some((addr, port)) if services.find_dest(s, addr, port).is_none() => {
            Err(format!("check: service {} {}:{} has no real server {addr}:{port}", k.proto.name(), k.addr, k.port))
        }
        _ => Ok(()),
    }
}

fn apply_sysctl(s: SysctlSet, state: &mut LbState) {
    let mut c = state.services.config();
    match s {
        SysctlSet::Ipvs(field, v) => state.sysctls.set(field, v),
        SysctlSet::LblcExpiration(secs) => c.lblc_expiration = secs,
        SysctlSet::LblcrExpiration(secs) => c.lblcr_expiration = secs,
        SysctlSet::SyncThreshold(t, p) => {
            state.sysctls.sync.policy.threshold = t;
            state.sysctls.sync.policy.period = p;
        }
        SysctlSet::SyncVersion(v) => state.sysctls.sync.version = v,
        SysctlSet::SyncPersistMode(b) => state.sysctls.sync.policy.persist_mode = b,
        SysctlSet::NoEffect => {}
    }
    state.services.set_config(c);
}

/// ipvsadm's message (`ipvs_strerror()`) for a refused operation. The
/// dest commands say "Service not defined" where the others say "No such
/// service".
fn message(e: IpvsError, dest_cmd: bool) -> String {
    match e {
        IpvsError::NoSuchService if dest_cmd => "Service not defined".to_string(),
        IpvsError::NoSuchService => "No such service".to_string(),
        IpvsError::ServiceExists => "Service already exists".to_string(),
        IpvsError::DestExists => "Destination already exists".to_string(),
        IpvsError::NoSuchDest => "No such destination".to_string(),
        // ERANGE has no entry in ipvsadm's table: it prints strerror().
        IpvsError::ThresholdRange => {
            "Numerical result out of range (the lower threshold -y is above the upper threshold -x)".to_string()
        }
        IpvsError::WeightRange => "Numerical result out of range".to_string(),
        other => other.to_string(),
    }
}

/// Runs one ipvsadm command; returns its output (listings) or ipvsadm's
/// error message.
fn apply_ipvsadm(cmd: &AdminCmd, state: &mut LbState, env: &ListEnv<'_>) -> Result<String, String> {
    let services = &mut state.services;
    // ipvsadm's wording: the dest commands say "Service not defined".
    let svc_err = |e| message(e, false);
    let dest_err = |e| message(e, true);
    let find = |services: &Services, key: &ServiceKey, dest_cmd: bool| {
        services.find_service(key).ok_or_else(|| message(IpvsError::NoSuchService, dest_cmd))
    };
    match cmd {
        AdminCmd::AddService(cfg) => services.add_service(cfg).map(drop).map_err(svc_err)?,
        AdminCmd::EditService(cfg) => services.edit_service(cfg).map(drop).map_err(svc_err)?,
        AdminCmd::DeleteService(key) => services.delete_service(key).map_err(svc_err)?,
        AdminCmd::Clear => services.clear(),
        AdminCmd::AddDest(key, d) => {
            let s = find(services, key, true)?;
            services.add_dest(s, d).map(drop).map_err(dest_err)?;
        }
        AdminCmd::EditDest(key, d) => {
            let s = find(services, key, true)?;
            services.edit_dest(s, d).map(drop).map_err(dest_err)?;
        }
        AdminCmd::DeleteDest(key, addr, port) => {
            let s = find(services, key, true)?;
            services.delete_dest(s, *addr, *port).map(drop).map_err(dest_err)?;
        }
        AdminCmd::Zero(key) => {
            let s = key.as_ref().map(|k| find(services, k, false)).transpose()?;
            services.zero(s).map_err(svc_err)?;
        }
        AdminCmd::SetTimeouts(t) => {
            let cur = &mut state.timeouts;
            for (new, old) in [(t.tcp, &mut cur.tcp), (t.tcp_fin, &mut cur.tcp_fin), (t.udp, &mut cur.udp)] {
                if new != 0 {
                    *old = new;
                }
            }
        }
        AdminCmd::Save(format) => return Ok(list::save_rules(&list::service_rows(services, env.rates), format)),
        AdminCmd::StartDaemon(req) => state.daemons.start(req, &state.net)?,
        AdminCmd::StopDaemon(kind) => state.daemons.stop(*kind)?,
        AdminCmd::List(req) => return list_output(req.what, &req.format, state, env),
    }
    Ok(String::new())
}

fn list_output(
    what: ListWhat,
    format: &parse::ListFormat,
    state: &LbState,
    env: &ListEnv<'_>,
) -> Result<String, String> {
    let rows = || list::service_rows(&state.services, env.rates);
    Ok(match what {
        ListWhat::All => {
            let size = if env.conn_tab_size == 0 { list::DEFAULT_CONN_TAB_SIZE } else { env.conn_tab_size };
            list::list_services(&rows(), format, Some(size))
        }
        ListWhat::Service(key) => {
            let row: Vec<ServiceRow> = rows().into_iter().filter(|r| r.key == key).collect();
            if row.is_empty() {
                return Err(message(IpvsError::NoSuchService, false));
            }
            list::list_services(&row, format, None)
        }
        ListWhat::Connections => {
            let conns: Vec<ConnRow> = env.conns.map(|(t, now)| list::conn_rows(t, now)).unwrap_or_default();
            list::list_connections(&conns, format)
        }
        ListWhat::Timeouts => list::list_timeouts(&state.timeouts),
        ListWhat::Daemons => state.daemons.list(),
    })
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::ipvs::conn::{NewConn, Tuple};
    use crate::ipvs::sched::SchedKind;
    use crate::ipvs::service::{FwdMethod, Protocol};

    const LB_CONF: &str = "\
# director
port 0 name eth0 mac 02:00:00:00:00:01 addr 192.0.2.1/24 addr 198.51.100.10/32
port 1 name eth1 mac 02:00:00:00:01:01 addr 10.1.1.1/24
neigh 192.0.2.254 mac 02:00:00:00:00:fe
neigh 10.1.1.21 mac 02:00:00:00:01:21
route default via 192.0.2.254
sysctl expire_nodest_conn 1
sysctl lblc_expiration 600
overhead classic

# services
-A -t 198.51.100.10:80 -s wlc
-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m -w 1
-a -t 198.51.100.10:80 -r 10.1.1.22:8080 -m -w 2
ipvsadm -A -u 198.51.100.10:53 -s rr -p -M 255.255.255.0   # DNS
-a -u 198.51.100.10:53 -r 10.1.1.31 -w 0
--set 0 60 0
";

    fn errors(r: Result<impl std::fmt::Debug, Vec<CommandError>>) -> Vec<String> {
        r.expect_err("should fail").iter().map(ToString::to_string).collect()
    }

    #[test]
    fn loads_a_whole_file() {
        let mut st = LbState::default();
        let out = load(LB_CONF, "lb.conf", &mut st, &ListEnv::default()).unwrap();
        assert!(out.is_empty());
        assert_eq!(st.net.ports.len(), 2);
        assert_eq!(st.net.neighbour(Ipv4Addr::new(10, 1, 1, 21)).map(|n| n.port), Some(1));
        assert!(st.sysctls.expire_nodest_conn);
        assert_eq!(st.services.config().lblc_expiration, 600);
        assert_eq!(st.services.config().overhead, Overhead::Classic);
        assert_eq!(st.timeouts, Timeouts { tcp: 900, tcp_fin: 60, udp: 300 });
        let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 51, 100, 10), port: 80 };
        let s = st.services.find_service(&key).unwrap();
        let svc = st.services.service(s).unwrap();
        assert_eq!(svc.scheduler(), SchedKind::Wlc);
        // Kernel list order: the newest dest first.
        let order: Vec<Ipv4Addr> = svc.dests().iter().map(|&d| st.services.dest(d).addr).collect();
        assert_eq!(order, [Ipv4Addr::new(10, 1, 1, 22), Ipv4Addr::new(10, 1, 1, 21)]);
        let d = st.services.dest(svc.dests()[0]);
        assert_eq!((d.port, d.weight, d.fwd), (8080, 2, FwdMethod::Masq));
        let conn = st.conn_config(&ConnConfig::default());
        assert!(conn.expire_nodest_conn);
        assert_eq!(conn.tcp_timeouts[TcpState::FinWait as usize], 60);
    }

    /// `conn_reuse_mode` is an int the kernel tests for non-zero and for
    /// bit 2 only: 256 is "on, without the FIN_WAIT reuse" (it used to be
    /// clamped to 255, which has bit 2).
    #[test]
    fn conn_reuse_mode_keeps_the_kernels_reading() {
        for (mode, nonzero, bit2) in
            [(0, false, false), (1, true, false), (2, true, true), (256, true, false), (258, true, true)]
        {
            let mut st = LbState::default();
            load(&format!("sysctl conn_reuse_mode {mode}\n"), "lb.conf", &mut st, &ListEnv::default()).unwrap();
            let got = st.conn_config(&ConnConfig::default()).conn_reuse_mode;
            assert_eq!((got != 0, got & 2 != 0), (nonzero, bit2), "conn_reuse_mode {mode}");
        }
    }

    /// The spec's `ipvsadm -Ln` example, produced from command lines.
    #[test]
    fn listing_from_commands_matches_the_spec() {
        let mut st = LbState::default();
        load(LB_CONF, "lb.conf", &mut st, &ListEnv::default()).unwrap();
        // Connection counts come from the connection table; set them as
        // the spec's example has them.
        let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 51, 100, 10), port: 80 };
        let s = st.services.find_service(&key).unwrap();
        let ids = st.services.service(s).unwrap().dests().to_vec();
        for (d, (a, i)) in ids.into_iter().zip([(24, 81), (12, 40)]) {
            let dest = st.services.dest_mut(d);
            dest.activeconns = a;
            dest.inactconns = i;
        }
        let udp = ServiceKey { proto: Protocol::Udp, addr: Ipv4Addr::new(198, 51, 100, 10), port: 53 };
        let u = st.services.find_service(&udp).unwrap();
        let d = st.services.service(u).unwrap().dests()[0];
        st.services.dest_mut(d).inactconns = 7;
        let out = load("-Ln\n", "list.conf", &mut st, &ListEnv::default()).unwrap();
        let want = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.51.100.10:80 wlc
  -> 10.1.1.21:8080               Masq    1      12         40␣␣␣␣␣␣␣␣
  -> 10.1.1.22:8080               Masq    2      24         81␣␣␣␣␣␣␣␣
UDP  198.51.100.10:53 rr persistent 360 mask 255.255.255.0
  -> 10.1.1.31:53                 Route   0      0          7␣␣␣␣␣␣␣␣␣
"
        .replace('␣', " ");
        assert_eq!(out.join("\n") + "\n", want);
        // -S round-trips through the parser to the same table.
        let saved = load("-S -n\n", "save.conf", &mut st, &ListEnv::default()).unwrap();
        let mut again = LbState::default();
        load(&saved.join("\n"), "saved.conf", &mut again, &ListEnv::default()).unwrap();
        let relisted = load("-Ln\n", "list.conf", &mut again, &ListEnv::default()).unwrap();
        assert_eq!(relisted.len(), out.len());
        assert_eq!(relisted[3], "TCP  198.51.100.10:80 wlc");
        assert_eq!(relisted[6], "UDP  198.51.100.10:53 rr persistent 360 mask 255.255.255.0");
    }

    #[test]
    fn every_line_error_is_reported_and_nothing_applied() {
        let text = "\
-A -t 198.51.100.10:80 -s wlc
-A -t 198.51.100.10:80 -s fastest
-a -t 198.51.100.10:80 -r 10.1.1.21 -w 70000
port 0 mac 02:00:00:00:00:01
port 0 mac 02:00:00:00:00:02
vip 198.51.100.10
-a -t 198.51.100.10:80
neigh 10.9.9.9 mac 02:00:00:00:09:09
sysctl secure_tcp 9
-L -c --stats
-A -t 198.51.100.11
";
        let mut st = LbState::default();
        let errs = errors(load(text, "lb.conf", &mut st, &ListEnv::default()));
        assert_eq!(
            errs,
            [
                "lb.conf:2: Scheduler or persistence engine not found",
                "lb.conf:3: illegal weight specified",
                "lb.conf:5: port 0 is already defined at line 4",
                "lb.conf:6: unknown keyword `vip' (expected an ipvsadm command line starting with '-', or one of: port, neigh, route, sysctl, overhead, conn_max, check, @T)",
                "lb.conf:7: You need to supply the 'real-server' option for the 'add-server' command",
                "lb.conf:8: neighbour 10.9.9.9: no `port' given and no port has an address in its subnet",
                "lb.conf:9: sysctl secure_tcp: value must be 0..3",
                "lb.conf:10: options conflicts in the list command",
                "lb.conf:11: Zero port specified for non-persistent service",
            ]
        );
        assert_eq!(st.services.services().count(), 0);
    }

    #[test]
    fn table_errors_are_all_reported_and_nothing_applied() {
        let mut st = LbState::default();
        load(
            "-A -t 198.51.100.10:80\n-a -t 198.51.100.10:80 -r 10.1.1.21\n",
            "base.conf",
            &mut st,
            &ListEnv::default(),
        )
        .unwrap();
        let before = list::list_services(&list::service_rows(&st.services, None), &parse::ListFormat::default(), None);
        let text = "\
-A -t 198.51.100.10:443 -p
-a -t 198.51.100.10:443 -r 10.1.1.21
-A -t 198.51.100.10:80
-a -t 198.51.100.10:80 -r 10.1.1.21
-a -t 198.51.100.99:80 -r 10.1.1.21
-e -t 198.51.100.10:80 -r 10.1.1.99
-d -t 198.51.100.10:80 -r 10.1.1.99
-D -t 198.51.100.99:80
-E -u 198.51.100.10:53
-Z -t 198.51.100.99:80
-a -t 198.51.100.10:80 -r 10.1.1.23 -y 5
-L -t 198.51.100.99:80
sysctl expire_nodest_conn 1
";
        let errs = errors(load(text, "more.conf", &mut st, &ListEnv::default()));
        assert_eq!(
            errs,
            [
                "more.conf:3: Service already exists",
                "more.conf:4: Destination already exists",
                "more.conf:5: Service not defined",
                "more.conf:6: No such destination",
                "more.conf:7: No such destination",
                "more.conf:8: No such service",
                "more.conf:9: No such service",
                "more.conf:10: No such service",
                "more.conf:11: Numerical result out of range (the lower threshold -y is above the upper threshold -x)",
                "more.conf:12: No such service",
            ]
        );
        // Nothing applied: not the new service of line 1, not the sysctl.
        let after = list::list_services(&list::service_rows(&st.services, None), &parse::ListFormat::default(), None);
        assert_eq!(before, after);
        assert!(!st.sysctls.expire_nodest_conn);
    }

    #[test]
    fn check_lines_are_checked_with_the_file() {
        let mut st = LbState::default();
        let text = "\
check -t 10.0.0.1:80 tcp delay_loop 0.5   # before its service: fine
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.1.1.1:8080 -m
check -t 10.0.0.1:80 -r 10.1.1.1:8080 http path /health expect \"ok # not a comment\"
check -t 10.0.0.1:80 -r 10.1.1.1:8080 misc \"test -e /tmp/%RIP\" dynamic
";
        load(text, "lb.conf", &mut st, &ListEnv::default()).unwrap();
        assert_eq!(st.checks.len(), 3);
        assert_eq!(st.checks[0].delay_loop, std::time::Duration::from_millis(500));
        assert!(st.checks[1].to_string().contains("expect \"ok # not a comment\""), "{}", st.checks[1]);
        // A file without check lines keeps them.
        load("-a -t 10.0.0.1:80 -r 10.1.1.2:8080 -m\n", "more.conf", &mut st, &ListEnv::default()).unwrap();
        assert_eq!(st.checks.len(), 3);
        // Bad check lines: file:line, with the other errors, nothing applied.
        let bad = "\
check -t 10.0.0.1:80 ping
-A -t 10.0.0.2:80
check -t 10.0.0.9:80 tcp
check -t 10.0.0.1:80 -r 10.1.1.9:8080 tcp
check -u 10.0.0.1:80 tcp
-A -t 10.0.0.3:80 -s fastest
";
        let errs = errors(load(bad, "bad.conf", &mut st, &ListEnv::default()));
        assert_eq!(
            errs,
            [
                "bad.conf:1: check: unknown check kind `ping' (expected tcp, http or misc)",
                "bad.conf:6: Scheduler or persistence engine not found",
            ]
        );
        let errs = errors(load(
            &bad.replace("ping", "tcp").replace("fastest", "rr"),
            "bad.conf",
            &mut st,
            &ListEnv::default(),
        ));
        assert_eq!(
            errs,
            [
                "bad.conf:3: check: service TCP 10.0.0.9:80 is not defined (no -A line for it)",
                "bad.conf:4: check: service TCP 10.0.0.1:80 has no real server 10.1.1.9:8080",
                "bad.conf:5: check: service UDP 10.0.0.1:80 is not defined (no -A line for it)",
            ]
        );
        assert_eq!(st.checks.len(), 3);
        assert_eq!(st.services.services().count(), 1);
    }

    #[test]
    fn a_broken_port_line_does_not_cascade() {
        let text = "port 1 mac 01:00:00:00:00:01 addr 10.1.1.1/24\nneigh 10.1.1.21 mac 02:00:00:00:01:21\n";
        let errs = errors(parse_file(text, "lb.conf"));
        assert_eq!(errs, ["lb.conf:1: MAC address 01:00:00:00:00:01 is a multicast address"]);
    }

    #[test]
    fn files_without_network_lines_keep_the_network() {
        let mut st = LbState::default();
        load("port 0 mac 02:00:00:00:00:01 addr 192.0.2.1/24\n", "net.conf", &mut st, &ListEnv::default()).unwrap();
        load("-A -t 192.0.2.80:80\n", "svc.conf", &mut st, &ListEnv::default()).unwrap();
        assert_eq!(st.net.ports.len(), 1);
        // A file with network lines replaces the whole network.
        load("port 1 mac 02:00:00:00:00:02\n", "net2.conf", &mut st, &ListEnv::default()).unwrap();
        assert_eq!(st.net.ports.keys().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn other_commands_apply() {
        let mut st = LbState::default();
        let text = "\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.1.1.1:8080 -m
-e -t 10.0.0.1:80 -r 10.1.1.1:8080 -m -w 7 -x 10
-E -t 10.0.0.1:80 -s sh -b sh-port -p 100
-A -u 10.0.0.1:53
-a -u 10.0.0.1:53 -r 10.1.1.2
-d -u 10.0.0.1:53 -r 10.1.1.2
-D -u 10.0.0.1:53
-Z
-Z -t 10.0.0.1:80
-L --timeout
-L --daemon
-L -n -t 10.0.0.1:80 --thresholds
";
        let out = load(text, "lb.conf", &mut st, &ListEnv::default()).unwrap();
        assert_eq!(
            out,
            [
                "Timeout (tcp tcpfin udp): 900 120 300",
                "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ",
                "  -> RemoteAddress:Port",
                "TCP  10.0.0.1:80 sh (sh-port) persistent 100",
                "  -> 10.1.1.1:8080                10         0          0          0         ",
            ]
        );
        assert_eq!(st.services.services().count(), 1);
        load("-C\n", "clear.conf", &mut st, &ListEnv::default()).unwrap();
        assert_eq!(st.services.services().count(), 0);
    }

    #[test]
    fn connection_listing_reads_the_table() {
        let mut st = LbState::default();
        load(
            "-A -t 198.51.100.10:80\n-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m\n",
            "lb.conf",
            &mut st,
            &ListEnv::default(),
        )
        .unwrap();
        let key = ServiceKey { proto: Protocol::Tcp, addr: Ipv4Addr::new(198, 51, 100, 10), port: 80 };
        let s = st.services.find_service(&key).unwrap();
        let d = st.services.service(s).unwrap().dests()[0];
        let mut table = ConnTable::default();
        let t = Tuple::new(6, Ipv4Addr::new(203, 0, 113, 7), 40000, Ipv4Addr::new(198, 51, 100, 10), 80);
        let new = NewConn::for_packet(&t, d, u32::from(Ipv4Addr::new(10, 1, 1, 21)), 8080, FwdMethod::Masq);
        // A SYN at 0 s, an ACK at 1 s: ESTABLISHED until 901 s; listed at 3 s.
        table.insert(&mut st.services, &new, 0x02, 0).expect("insert");
        let _ = table.lookup_in(&mut st.services, &t, 0x10, 1_000_000_000);
        let env = ListEnv { conns: Some((&table, 3_000_000_000)), ..ListEnv::default() };
        let out = load("-Lnc\n", "list.conf", &mut st, &env).unwrap();
        assert_eq!(
            out,
            [
                "IPVS connection entries",
                "pro expire state       source             virtual            destination",
                "TCP 14:58  ESTABLISHED 203.0.113.7:40000  198.51.100.10:80   10.1.1.21:8080",
            ]
        );
    }
}
