//! Health checks of real servers, as keepalived does them (spec 6.1), and
//! weights that follow the servers' load (spec 6.3).
//!
//! # Configuration
//! `check` lines in `lb.conf` ([`config`] has the syntax and the defaults):
//! ```text
//! check -t 10.77.0.100:80 tcp connect_timeout 1 delay_loop 2 retry 1 delay_before_retry 0.5
//! check -t 10.77.0.100:80 -r 10.77.2.13:8000 http path /health status 200 expect ok delay_loop 5
//! check -t 10.77.0.100:80 misc "/usr/local/bin/load-weight %RIP" dynamic delay_loop 10 misc_timeout 3
//! ```
//! They are parsed and checked with the rest of the file (a bad one is
//! `lb.conf:LINE: message` and nothing is applied) and kept in the
//! director's state ([`crate::ipvs::admin::LbState::checks`]). They act in
//! live mode only (`p4lite run --iface ...`); a replay ignores them.
//!
//! # Rules
//! [`state`] is keepalived's state machine with time as a parameter: a
//! checker goes DOWN after `retry + 1` consecutive failures and UP after
//! one success; a server is UP when all its checkers are. A server going
//! DOWN keeps its place in the service with weight 0 (keepalived's
//! `inhibit_on_failure`, ldirectord's `quiescent`): its connections
//! continue and drain, new ones go to the others. Coming UP it gets back
//! the weight it had when it went down (or its misc-dynamic weight).
//!
//! # The monitor (live mode)
//! [`start`] runs one monitor thread and [`WORKERS`] probe threads beside
//! the switch. The monitor owns the [`state::Checks`]; probes run on the
//! workers ([`probe`]; each has a hard time limit), never on the switch
//! thread. The monitor talks to the switch only through the control
//! channel, exactly like `p4lite ctl`: it submits request lines
//! ([`ctl::submit_blocking`]) that the switch thread runs whole between two
//! packets, through the same dispatcher as a client's:
//! - every [`SYNC`] it asks for `-S -n` and hands the real servers it lists
//!   to [`state::Checks::sync`], so servers added or removed with
//!   `p4lite ctl` are followed and weights edited by someone else are seen;
//! - a weight change is the request `weight -t VIP:PORT -r RIP:PORT N`
//!   ([`crate::ctl::Ipvsadm`]): on the switch thread it reads the server's
//!   forwarding method and thresholds and runs the ipvsadm line
//!   `-e -t VIP:PORT -r RIP:PORT -m|-g|-i -w N -x U -y L` through the same
//!   code as a client's `-e` (plain `-e` without `-m` would turn a NAT
//!   server into a direct-routing one, as in ipvsadm). Read and edit are
//!   one request, so an operator's edit cannot slip in between; the reply
//!   tells the weight it replaced.
//!
//! Why requests and not a direct hook into the event loop: the event loop
//! stays as it is (a health check costs the packet path nothing unless
//! it changes something: one `-S -n` per [`SYNC`] and one request per
//! weight change), every change the monitor makes is a command an operator
//! could have typed, and listings, counters and table entries stay
//! consistent because they go through the one loader.
//!
//! # Log
//! Every state or weight change is one line on stderr with the wall-clock
//! time (UTC) and the reason:
//! ```text
//! health 2026-11-25T15:40:01.123Z: TCP 10.77.0.100:80 -> 10.77.2.11:8000 DOWN after 2 failed checks (connect: Connection refused); weight 3 -> 0
//! health 2026-11-25T15:40:09.870Z: TCP 10.77.0.100:80 -> 10.77.2.11:8000 UP (connected); weight 0 -> 3
//! health 2026-11-25T15:41:00.002Z: TCP 10.77.0.100:80 -> 10.77.2.13:8000 new weight (misc exit 7: weight 5); weight 3 -> 5
//! ```
//! The control command `health` lists every checked server: its state,
//! weight and the weight it will get back, and per check its state,
//! consecutive failures and last result with its time.
//!
//! # Weights that follow the load (spec 6.3)
//! A `misc ... dynamic` check is keepalived's `misc_dynamic`: the command
//! measures the server and exits 0 (up, weight unchanged), 1 (down), or
//! 2..=255: up with weight **exit − 2**, applied at once. A command that
//! turns the server's 1-minute load average L into the weight 100 / (1 + L)
//! (100 idle, 50 at load 1, 1 at load 99; fewer new connections to a
//! loaded server with `wlc`/`wrr`), and takes the server out when it
//! cannot be measured:
//! ```text
//! check -t 10.77.0.100:80 misc "load=$(ssh -o BatchMode=yes %RIP cat /proc/loadavg) || exit 1; set -- $load; exit $(( 100 / (1 + ${1%%.*}) + 2 ))" dynamic delay_loop 10 misc_timeout 5
//! ```
//! Any agent can also set weights itself over the control socket, with
//! `p4lite ctl SOCK weight -t VIP:PORT -r RIP:PORT N` (keeps the forwarding
//! method) or the plain ipvsadm line `p4lite ctl SOCK -e -t VIP:PORT -r
//! RIP:PORT -m -w N` (give the method: `-e` alone means `-g`), from cron
//! or a loop. A weight set that way while the server is DOWN becomes the
//! weight it gets back; the monitor keeps it at 0 until it is UP.

pub mod config;
pub mod probe;
pub mod state;

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use self::config::CheckKind;
pub use self::config::CheckSpec;
use self::state::{Action, Checks, DestKey, DestView, JobId, Outcome, ServerStatus};
use crate::ctl::{self, Extension, Reply, Status};
use crate::ipvs::admin::{self, parse::AdminCmd, Op};
use crate::ipvs::service::Protocol;
use crate::switch::Switch;

/// Probe threads: at most this many probes run at once.
pub const WORKERS: usize = 8;
/// How often the monitor reads the director's real servers.
pub const SYNC: Duration = Duration::from_secs(1);
/// The longest the monitor waits before checking for shutdown.
const TICK: Duration = Duration::from_millis(100);
/// The longest the monitor's thread waits for the probe threads when it
/// ends (a misc command is killed within milliseconds of being cancelled).
pub const WIND_DOWN: Duration = Duration::from_secs(2);

/// What the `health` command shows, as the monitor last published it.
#[derive(Clone, Debug)]
pub struct Board {
    /// The `check` lines.
    pub specs: Vec<CheckSpec>,
    /// The wall-clock time of the monitor's time origin.
    pub origin: SystemTime,
    /// Every checked server.
    pub servers: Vec<ServerStatus>,
}

/// The shared [`Board`]: written by the monitor, read by [`HealthCommand`].
pub type SharedBoard = Arc<Mutex<Board>>;

/// A new board for `specs`, before the monitor starts.
pub fn board(specs: Vec<CheckSpec>) -> SharedBoard {
    Arc::new(Mutex::new(Board { specs, origin: SystemTime::now(), servers: Vec::new() }))
}

/// A probe with everything it needs, for a worker thread.
#[derive(Clone, Debug)]
enum Probe {
    Tcp {
        addr: SocketAddrV4,
        bind: Option<std::net::Ipv4Addr>,
        timeout: Duration,
    },
    Http {
        addr: SocketAddrV4,
        bind: Option<std::net::Ipv4Addr>,
        timeout: Duration,
        check: config::HttpCheck,
        host: String,
    },
    Misc {
        command: String,
        timeout: Duration,
        dynamic: bool,
    },
}

impl Probe {
    fn new(spec: &CheckSpec, dest: &DestKey) -> Probe {
        let addr = SocketAddrV4::new(dest.addr, spec.connect_port.unwrap_or(dest.port));
        match &spec.kind {
            CheckKind::Tcp => Probe::Tcp { addr, bind: spec.bindto, timeout: spec.connect_timeout },
            CheckKind::Http(h) => Probe::Http {
                addr,
                bind: spec.bindto,
                timeout: spec.connect_timeout,
                host: h.virtualhost.clone().unwrap_or_else(|| addr.to_string()),
                check: h.clone(),
            },
            CheckKind::Misc(m) => {
                Probe::Misc { command: substitute(&m.command, dest), timeout: m.timeout, dynamic: m.dynamic }
            }
        }
    }

    fn run(&self, cancel: &AtomicBool) -> Outcome {
        match self {
            Probe::Tcp { addr, bind, timeout } => probe::tcp(*addr, *bind, *timeout),
            Probe::Http { addr, bind, timeout, check, host } => probe::http(*addr, *bind, *timeout, check, host),
            Probe::Misc { command, timeout, dynamic } => probe::misc(command, *timeout, *dynamic, cancel),
        }
    }
}

/// A misc command with `%RIP`, `%RPORT`, `%VIP` and `%VPORT` replaced.
pub fn substitute(command: &str, dest: &DestKey) -> String {
    command
        .replace("%RIP", &dest.addr.to_string())
        .replace("%RPORT", &dest.port.to_string())
        .replace("%VIP", &dest.service.addr.to_string())
        .replace("%VPORT", &dest.service.port.to_string())
}

/// `-t` or `-u`.
fn proto_switch(p: Protocol) -> &'static str {
    if p == Protocol::Udp {
        "-u"
    } else {
        "-t"
    }
}

/// The control request that sets `dest`'s weight (see [`crate::ctl::Ipvsadm`]).
pub fn weight_request(dest: &DestKey, weight: u32) -> String {
    let s = &dest.service;
    format!("weight {} {}:{} -r {}:{} {weight}", proto_switch(s.proto), s.addr, s.port, dest.addr, dest.port)
}

/// The weight a `weight` request replaced, from its reply
/// (`TCP 10.77.0.100:80 -> 10.77.2.11:8000: weight 3 -> 0`).
fn replaced_weight(reply: &Reply) -> Option<u32> {
    let line = reply.out.first()?;
    let (_, rest) = line.rsplit_once(": weight ")?;
    rest.split_once(" -> ")?.0.parse().ok()
}

/// The real servers an `-S -n` listing shows.
pub fn parse_saved(lines: &[String]) -> Result<Vec<DestView>, String> {
    let text = lines.join("\n");
    let parsed = admin::parse_file(&text, "-S")
        .map_err(|e| e.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; "))?;
    Ok(parsed
        .commands
        .iter()
        .filter_map(|c| match &c.op {
            Op::Ipvsadm(AdminCmd::AddDest(service, d)) => {
                Some(DestView { key: DestKey { service: *service, addr: d.addr, port: d.port }, weight: d.weight })
            }
            _ => None,
        })
        .collect())
}

/// A wall-clock time as `2026-11-25T15:40:01.123Z` (UTC, milliseconds).
pub fn utc(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Where the monitor's log lines go (stderr in `p4lite run`).
pub type Log = Box<dyn FnMut(&str) + Send>;

/// Starts the monitor for `board`'s checks (module docs): requests go to
/// `submit`, log lines to `log`; it ends when `stop` is set or the switch
/// stops answering. Its thread then cancels the probes in flight (a misc
/// command's process group is killed) and waits for the probe threads, at
/// most [`WIND_DOWN`]: so no command outlives `p4lite run`. A TCP or HTTP
/// probe blocked in a connect holds only a socket and is not waited for
/// beyond that.
pub fn start(board: SharedBoard, submit: ctl::Submit, stop: Arc<AtomicBool>, log: Log) -> io::Result<JoinHandle<()>> {
    let specs = board.lock().map(|b| b.specs.clone()).unwrap_or_default();
    let (job_tx, job_rx) = mpsc::channel::<(JobId, Probe)>();
    let (result_tx, result_rx) = mpsc::channel::<(JobId, Outcome)>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let cancel = Arc::new(AtomicBool::new(false));
    // Nothing is sent on it: it disconnects when every probe thread has ended.
    let (ended_tx, ended) = mpsc::channel::<()>();
    for i in 0..WORKERS {
        let (jobs, results, cancel, ended) = (job_rx.clone(), result_tx.clone(), cancel.clone(), ended_tx.clone());
        thread::Builder::new().name(format!("health-probe-{i}")).spawn(move || {
            let _ended = ended;
            loop {
                let job = match jobs.lock() {
                    Ok(rx) => rx.recv_timeout(TICK),
                    Err(_) => return,
                };
                match job {
                    Ok(_) if cancel.load(Ordering::Relaxed) => return,
                    Ok((id, probe)) => {
                        let outcome = probe.run(&cancel);
                        if results.send((id, outcome)).is_err() {
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) if !cancel.load(Ordering::Relaxed) => {}
                    Err(_) => return,
                }
            }
        })?;
    }
    drop((result_tx, ended_tx));
    let monitor = Monitor { checks: Checks::new(specs), submit, board, log, origin: Instant::now() };
    thread::Builder::new().name("health".into()).spawn(move || {
        monitor.run(&job_tx, &result_rx, &stop);
        cancel.store(true, Ordering::Relaxed);
        drop(job_tx);
        let _ = ended.recv_timeout(WIND_DOWN);
    })
}

/// The monitor thread's state.
struct Monitor {
    checks: Checks,
    submit: ctl::Submit,
    board: SharedBoard,
    log: Log,
    origin: Instant,
}

impl Monitor {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn run(
        mut self,
        jobs: &mpsc::Sender<(JobId, Probe)>,
        results: &mpsc::Receiver<(JobId, Outcome)>,
        stop: &AtomicBool,
    ) {
        if let Ok(mut b) = self.board.lock() {
            b.origin = SystemTime::now() - self.origin.elapsed();
        }
        let mut next_sync = Duration::ZERO;
        let mut sync_error = false;
        while !stop.load(Ordering::Relaxed) {
            let now = self.now();
            if now >= next_sync {
                let Some(reply) = ctl::submit_blocking(&self.submit, "-S -n") else { return };
                match parse_saved(&reply.out) {
                    Ok(views) if reply.status == Status::Ok => {
                        let actions = self.checks.sync(&views, now);
                        if !self.apply(actions) {
                            return;
                        }
                        sync_error = false;
                    }
                    other => {
                        if !sync_error {
                            let why = match other {
                                Err(e) => e,
                                Ok(_) => reply.err.join("; "),
                            };
                            self.log(&format!("cannot read the real servers (-S -n): {why}"));
                        }
                        sync_error = true;
                    }
                }
                next_sync = now + SYNC;
                self.publish();
            }
            for job in self.checks.due(now) {
                let probe = Probe::new(&self.checks.specs()[job.check], &job.dest);
                if jobs.send((job.id, probe)).is_err() {
                    return;
                }
            }
            let now = self.now();
            let due = self.checks.next_due().map_or(TICK, |d| d.saturating_sub(now));
            let wait = due.min(TICK).min(next_sync.saturating_sub(now));
            match results.recv_timeout(wait) {
                Ok(first) => {
                    let mut done = vec![first];
                    done.extend(results.try_iter());
                    for (id, outcome) in done {
                        let actions = self.checks.finish(id, outcome, self.now());
                        if !self.apply(actions) {
                            return;
                        }
                    }
                    self.publish();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Carries out `actions`; false when the switch has stopped.
    fn apply(&mut self, actions: Vec<Action>) -> bool {
        for a in actions {
            let weight = match a.weight {
                None => String::new(),
                Some((from, to)) if from == to => format!("; weight stays {to}"),
                Some((from, to)) => match ctl::submit_blocking(&self.submit, &weight_request(&a.dest, to)) {
                    None => return false,
                    Some(r) if r.status == Status::Ok => {
                        let old = replaced_weight(&r).unwrap_or(from);
                        self.checks.applied(&a.dest, old, to);
                        format!("; weight {old} -> {to}")
                    }
                    Some(r) => format!("; setting weight {from} -> {to} refused: {}", r.err.join("; ")),
                },
            };
            self.log(&format!("{} {}{weight}", a.dest, a.event));
        }
        true
    }

    fn log(&mut self, line: &str) {
        (self.log)(&format!("health {}: {line}", utc(SystemTime::now())));
    }

    fn publish(&self) {
        if let Ok(mut b) = self.board.lock() {
            b.servers = self.checks.status();
        }
    }
}

/// The `health` control command (module docs). Without checks (`None`) it
/// says how to configure them.
pub struct HealthCommand {
    board: Option<SharedBoard>,
}

impl HealthCommand {
    /// The command for the monitor publishing on `board`, if any.
    pub fn new(board: Option<SharedBoard>) -> HealthCommand {
        HealthCommand { board }
    }
}

impl Extension for HealthCommand {
    fn commands(&self) -> Vec<String> {
        vec!["health (checked real servers: state, weight, each check's failures and last result)".to_string()]
    }

    fn execute(&mut self, switch: &mut Switch, words: &[&str]) -> Option<Reply> {
        if words.first() != Some(&"health") {
            return None;
        }
        if words.len() > 1 {
            return Some(Reply::error("usage: health"));
        }
        let Some(board) = &self.board else {
            return Some(Reply::ok(vec![
                "no health checks: lb.conf has no `check` lines (check -t VIP:PORT tcp|http|misc ...)".to_string(),
            ]));
        };
        let board = match board.lock() {
            Ok(b) => b.clone(),
            Err(_) => return Some(Reply::error("the health monitor failed")),
        };
        let current = |d: &DestKey| {
            let services = &switch.externs().director()?.lb.services;
            let s = services.find_service(&d.service)?;
            Some(services.dest(services.find_dest(s, d.addr, d.port)?).weight)
        };
        Some(Reply::ok(render(&board, current)))
    }
}

/// The `health` listing; `current` gives a server's weight in the director.
pub fn render(board: &Board, current: impl Fn(&DestKey) -> Option<u32>) -> Vec<String> {
    let down = board.servers.iter().filter(|s| !s.up).count();
    let mut out = vec![format!(
        "Health checks: {} check lines, {} servers checked, {down} DOWN",
        board.specs.len(),
        board.servers.len()
    )];
    let mut service = None;
    for s in &board.servers {
        let svc = s.dest.service;
        if service != Some(svc) {
            out.push(format!("{}  {}:{}", svc.proto.name(), svc.addr, svc.port));
            service = Some(svc);
        }
        let weight = current(&s.dest).unwrap_or(s.weight);
        let mut line =
            format!("  -> {:<21} {:<4}  weight {weight}", format!("{}:{}", s.dest.addr, s.dest.port), state(s.up));
        if !s.up || s.restore != weight {
            let _ = write!(line, " (restores {})", s.restore);
        }
        out.push(line);
        for c in &s.checkers {
            let label = board.specs.get(c.check).map_or_else(String::new, |spec| spec.label(s.dest.port));
            let last = match &c.last {
                Some((o, at)) => format!("{}  at {}", o.detail, utc(board.origin + *at)),
                None => "not checked yet".to_string(),
            };
            out.push(format!("       {label:<20} {:<4}  {} failures  {last}", state(c.up), c.fails));
        }
    }
    out
}

fn state(up: bool) -> &'static str {
    if up {
        "UP"
    } else {
        "DOWN"
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;
    use crate::ipvs::director;
    use crate::ipvs::service::ServiceKey;
    use crate::switch::SwitchOptions;

    #[test]
    fn wall_clock_format() {
        assert_eq!(utc(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_621_201_123);
        assert_eq!(utc(t), "2026-11-25T15:40:01.123Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(utc(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn misc_substitution_and_requests() {
        let d = DestKey {
            service: ServiceKey { proto: Protocol::Udp, addr: Ipv4Addr::new(10, 77, 0, 100), port: 53 },
            addr: Ipv4Addr::new(10, 77, 2, 11),
            port: 5353,
        };
        assert_eq!(
            substitute("probe %RIP:%RPORT for %VIP:%VPORT %X", &d),
            "probe 10.77.2.11:5353 for 10.77.0.100:53 %X"
        );
        assert_eq!(weight_request(&d, 0), "weight -u 10.77.0.100:53 -r 10.77.2.11:5353 0");
        let r = Reply::ok(vec!["UDP 10.77.0.100:53 -> 10.77.2.11:5353: weight 3 -> 0".into()]);
        assert_eq!(replaced_weight(&r), Some(3));
        let saved: Vec<String> = ["-A -t 10.77.0.100:80 -s wrr", "-a -t 10.77.0.100:80 -r 10.77.2.11:8000 -m -w 3"]
            .map(String::from)
            .to_vec();
        let views = parse_saved(&saved).unwrap();
        assert_eq!(views.len(), 1);
        assert_eq!((views[0].key.addr, views[0].key.port, views[0].weight), (Ipv4Addr::new(10, 77, 2, 11), 8000, 3));
    }

    #[test]
    fn the_documented_load_command_parses_and_runs() {
        let line = "check -t 10.77.0.100:80 misc \"load=$(ssh -o BatchMode=yes %RIP cat /proc/loadavg) || exit 1; \
                    set -- $load; exit $(( 100 / (1 + ${1%%.*}) + 2 ))\" dynamic delay_loop 10 misc_timeout 5";
        let spec = config::parse_check_line(line).unwrap();
        let CheckKind::Misc(m) = &spec.kind else { panic!("{spec:?}") };
        assert!(m.dynamic && m.timeout == Duration::from_secs(5));
        // With the measurement replaced by a load of 3.40: weight 25.
        let cmd = m.command.replace("ssh -o BatchMode=yes %RIP cat /proc/loadavg", "echo 3.40 2.00 1.00 1/99 42");
        let o = probe::misc(&cmd, Duration::from_secs(5), true, &AtomicBool::new(false));
        assert_eq!(o, Outcome { ok: true, detail: "misc exit 27: weight 25".into(), weight: Some(25) });
        let failing = m.command.replace("ssh -o BatchMode=yes %RIP cat /proc/loadavg", "false");
        assert!(!probe::misc(&failing, Duration::from_secs(5), true, &AtomicBool::new(false)).ok);
    }

    #[test]
    fn check_lines_cannot_be_timed() {
        let mut d = director::Director::new(0);
        let e = d.load("-A -t 10.0.0.1:80\n@5 check -t 10.0.0.1:80 tcp\n", "lb.conf").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "lb.conf:2: this line cannot be timed (only -a, -e, -d, -Z, --set, sysctl and overhead)"
        );
    }

    /// The monitor against a real director, its requests run by a thread
    /// standing in for the switch thread: a listener goes away, the
    /// server's weight goes to 0 keeping NAT; it comes back, so does the weight.
    #[test]
    fn monitor_sets_weights_through_the_control_channel() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let src = std::fs::read_to_string(format!("{root}/programs/lb.p4lite")).unwrap();
        let mut sw = Switch::new(crate::switch::tests::compile(&src), SwitchOptions::default()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let other = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = format!(
            "-A -t 10.77.0.100:80 -s wrr\n\
             -a -t 10.77.0.100:80 -r 127.0.0.1:{port} -m -w 3 -x 40 -y 7\n\
             -a -t 10.77.0.100:80 -r 127.0.0.1:{other} -m -w 2\n\
             check -t 10.77.0.100:80 -r 127.0.0.1:{port} tcp connect_timeout 0.5 delay_loop 0.1 retry 1 delay_before_retry 0.05\n"
        );
        director::load_into_switch(&mut sw, &conf, "lb.conf").unwrap();
        let specs = sw.externs().director().unwrap().lb.checks.clone();
        assert_eq!(specs.len(), 1);
        let board = board(specs);
        let (tx, rx) = mpsc::channel::<ctl::Request>();
        let tx = Mutex::new(tx);
        let submit: ctl::Submit = Arc::new(move |r| tx.lock().map(|t| t.send(r).is_ok()).unwrap_or(false));
        let stop = Arc::new(AtomicBool::new(false));
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = lines.clone();
        let log: Log = Box::new(move |l| sink.lock().unwrap().push(l.to_string()));
        let monitor = start(board.clone(), submit, stop.clone(), log).unwrap();
        let mut d =
            ctl::Dispatcher::new().with(Box::new(ctl::Ipvsadm::new())).with(Box::new(HealthCommand::new(Some(board))));
        // The service's listing and the health listing.
        let listing = |d: &mut ctl::Dispatcher, sw: &mut Switch| {
            let mut out = d.execute(sw, "-L -n -t 10.77.0.100:80").out;
            out.extend(d.execute(sw, "health").out);
            out.join("\n")
        };
        // Runs requests for up to `secs` until `until` holds.
        let serve = |sw: &mut Switch, d: &mut ctl::Dispatcher, until: &dyn Fn(&str) -> bool| {
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(r) = rx.recv_timeout(Duration::from_millis(20)) {
                    let reply = d.execute(sw, &r.line);
                    let _ = r.reply.send(reply);
                }
                if until(&listing(d, sw)) {
                    return true;
                }
            }
            false
        };
        // "Masq 3" for the server on `port`, from `-L -n` text.
        let row = |text: &str, port: u16| {
            let addr = format!("127.0.0.1:{port}");
            let line = text.lines().find(|l| l.split_whitespace().nth(1) == Some(&addr))?.to_string();
            Some(line.split_whitespace().skip(2).take(2).collect::<Vec<_>>().join(" "))
        };
        drop(listener);
        let down = |l: &str| row(l, port).as_deref() == Some("Masq 0") && l.contains("1 DOWN");
        assert!(
            serve(&mut sw, &mut d, &down),
            "{}\n{:?}\n{:?}",
            listing(&mut d, &mut sw),
            d.execute(&mut sw, "health").out,
            lines.lock().unwrap()
        );
        assert_eq!(row(&listing(&mut d, &mut sw), other).as_deref(), Some("Masq 2"));
        let health = d.execute(&mut sw, "health").out;
        assert!(health[0].starts_with("Health checks: 1 check lines, 1 servers checked, 1 DOWN"), "{health:?}");
        assert!(health[2].contains("DOWN  weight 0 (restores 3)"), "{health:?}");
        assert!(health[3].contains("connect: Connection refused"), "{health:?}");
        // The port comes back: weight 3 again.
        let back = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let up = |l: &str| row(l, port).as_deref() == Some("Masq 3") && l.contains("0 DOWN");
        assert!(serve(&mut sw, &mut d, &up), "{}", listing(&mut d, &mut sw));
        stop.store(true, Ordering::Relaxed);
        drop(rx);
        monitor.join().unwrap();
        drop(back);
        let lines = lines.lock().unwrap();
        assert!(lines[0].starts_with("health 20"), "{lines:?}");
        assert!(
            lines[0].ends_with(&format!(
                ": TCP 10.77.0.100:80 -> 127.0.0.1:{port} DOWN after 2 failed checks (connect: Connection refused); weight 3 -> 0"
            )),
            "{lines:?}"
        );
        assert!(
            lines[1].ends_with(&format!(": TCP 10.77.0.100:80 -> 127.0.0.1:{port} UP (connected); weight 0 -> 3")),
            "{lines:?}"
        );
        // The thresholds were kept (and the method: "Masq" above).
        let t = d.execute(&mut sw, "-L -n --thresholds").out.join("\n");
        let line = t.lines().find(|l| l.contains(&format!("127.0.0.1:{port}"))).unwrap_or_default();
        assert_eq!(line.split_whitespace().skip(2).take(2).collect::<Vec<_>>(), ["40", "7"], "{t}");
    }

    /// A misc command still running when the monitor ends (here: the
    /// switch stops answering) is killed before the monitor's thread
    /// returns, so it cannot outlive `p4lite run`: the probe threads are
    /// cancelled and waited for.
    #[test]
    fn a_misc_command_in_flight_is_killed_before_the_monitor_ends() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let src = std::fs::read_to_string(format!("{root}/programs/lb.p4lite")).unwrap();
        let mut sw = Switch::new(crate::switch::tests::compile(&src), SwitchOptions::default()).unwrap();
        let pidfile = std::env::temp_dir().join(format!("p4lite-health-misc-{}.pid", std::process::id()));
        let _ = std::fs::remove_file(&pidfile);
        let conf = format!(
            "-A -t 10.77.0.100:80 -s wrr\n\
             -a -t 10.77.0.100:80 -r 127.0.0.1:9 -m -w 3\n\
             check -t 10.77.0.100:80 -r 127.0.0.1:9 misc \"echo $$ > {}; exec sleep 30\" misc_timeout 60 delay_loop 0.1\n",
            pidfile.display()
        );
        director::load_into_switch(&mut sw, &conf, "lb.conf").unwrap();
        let board = board(sw.externs().director().unwrap().lb.checks.clone());
        let (tx, rx) = mpsc::channel::<ctl::Request>();
        let tx = Mutex::new(tx);
        let submit: ctl::Submit = Arc::new(move |r| tx.lock().map(|t| t.send(r).is_ok()).unwrap_or(false));
        let stop = Arc::new(AtomicBool::new(false));
        let monitor = start(board.clone(), submit, stop, Box::new(|_| {})).unwrap();
        let mut d = ctl::Dispatcher::new().with(Box::new(ctl::Ipvsadm::new()));
        // Answer the monitor until the command runs (at most 10 s).
        let mut pid = None;
        for _ in 0..500 {
            if let Ok(r) = rx.recv_timeout(Duration::from_millis(20)) {
                let _ = r.reply.send(d.execute(&mut sw, &r.line));
            }
            pid = std::fs::read_to_string(&pidfile).ok().and_then(|t| t.trim().parse::<u32>().ok());
            if pid.is_some() {
                break;
            }
        }
        let _ = std::fs::remove_file(&pidfile);
        let pid = pid.expect("the misc command started");
        let proc = format!("/proc/{pid}");
        assert!(std::path::Path::new(&proc).exists());
        // The switch goes away; the monitor notices at its next request.
        drop(rx);
        monitor.join().unwrap();
        assert!(!std::path::Path::new(&proc).exists(), "the misc command (pid {pid}) outlived the monitor");
    }
}
