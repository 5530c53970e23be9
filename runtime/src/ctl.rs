//! The control channel of a running switch: a line protocol on a Unix
//! socket, the commands it carries, and a client.
//!
//! # Protocol
//! ```text
//! request:  one line of UTF-8 (at most 64 KiB): a command and its words,
//!           separated by spaces    table_delete ipv4_lpm 0
//! reply:    any number of          out TEXT     (a line for the client's stdout)
//!                                  err TEXT     (a line for its stderr)
//!           then one status line   end 0        (done)
//!                              or  end 1        (refused: nothing changed)
//! ```
//! A connection may carry several requests; each is answered in order.
//! Blank lines and `#` comments are answered with a bare `end 0`. Reply
//! tags are three letters and a space, so a later protocol version can add
//! tags (a client treats unknown tags as an error, not as output).
//!
//! # Atomicity
//! The server thread only moves lines: [`serve`] hands each request to a
//! [`Submit`] function, which in live mode queues it for the switch thread
//! (see [`crate::live`]). The switch thread runs the whole command between
//! two packets, so a packet sees the tables before or after a command,
//! never half of it; a refused command changes nothing (BMv2 commands go
//! through [`Switch::apply_commands`], which is all or nothing).
//!
//! # Commands
//! Every BMv2 runtime-CLI command of [`crate::control`] (`table_add`,
//! `table_modify`, `table_dump`, `mc_*`, `counter_read`, `register_write`,
//! ...), run by the same code as a command file, so the two cannot drift;
//! here they also print BMv2's acknowledgements (`Entry has been added with
//! handle N`, [`control::Echo::Bmv2`]). Besides them: `report` and `help`.
//! More commands plug in as an [`Extension`]; [`Ipvsadm`] is the IPVS
//! director's (`-A -t ...`, `-Ln`, `neigh ...`, `weight ...`), and
//! [`crate::ipvs::health::HealthCommand`] adds `health`, the health checks'
//! state (live mode).

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use p4lite_compiler::diag::did_you_mean;

use crate::control;
use crate::ipvs::admin::config::{parse_config_line, ConfigLine, NetConfig, KEYWORDS};
use crate::ipvs::admin::parse::AdminCmd;
use crate::ipvs::{admin, director};
use crate::live::sys;
use crate::switch::Switch;

/// The longest request line.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Connections served at once; more are refused with an error reply.
const MAX_CONNECTIONS: usize = 16;
/// How often the server threads check for shutdown.
const TICK: Duration = Duration::from_millis(100);
/// A connection with no request for this long is closed.
const IDLE: Duration = Duration::from_secs(300);

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Done (`end 0`).
    Ok,
    /// Refused; nothing changed (`end 1`).
    Error,
}

impl Status {
    /// The client's exit status: 0 or 1.
    pub fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Error => 1,
        }
    }
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Lines for the client's stdout.
    pub out: Vec<String>,
    /// Lines for the client's stderr (error messages).
    pub err: Vec<String>,
    /// Done or refused.
    pub status: Status,
}

impl Reply {
    /// Done, printing `out`.
    pub fn ok(out: Vec<String>) -> Reply {
        Reply { out, err: Vec::new(), status: Status::Ok }
    }

    /// Refused, with one message.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply { out: Vec::new(), err: vec![message.into()], status: Status::Error }
    }

    /// Writes the reply in the wire format (module docs). A line with a
    /// newline inside becomes several lines.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        let mut text = String::new();
        for (tag, lines) in [("out", &self.out), ("err", &self.err)] {
            for line in lines.iter().flat_map(|l| l.split('\n')) {
                text.push_str(tag);
                text.push(' ');
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(&format!("end {}\n", self.status.code()));
        w.write_all(text.as_bytes())?;
        w.flush()
    }

    /// Reads one reply in the wire format.
    pub fn read_from(r: &mut impl BufRead) -> io::Result<Reply> {
        let mut reply = Reply::ok(Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the switch closed the connection mid-reply"));
            }
            let l = line.strip_suffix('\n').unwrap_or(&line);
            let (tag, text) = l.split_once(' ').unwrap_or((l, ""));
            match tag {
                "out" => reply.out.push(text.to_string()),
                "err" => reply.err.push(text.to_string()),
                "end" => {
                    reply.status = if text == "0" { Status::Ok } else { Status::Error };
                    return Ok(reply);
                }
                _ => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected reply line `{l}`"))),
            }
        }
    }
}

/// A request on its way to the switch thread, with where the reply goes.
pub struct Request {
    /// The request line (no newline).
    pub line: String,
    /// Where the switch thread sends the reply.
    pub reply: mpsc::Sender<Reply>,
}

/// Hands a request to whoever runs the switch; false when it has stopped.
pub type Submit = Arc<dyn Fn(Request) -> bool + Send + Sync>;

/// Submits `line` and waits for the reply; `None` when the switch stopped
/// before answering.
pub fn submit_blocking(submit: &Submit, line: &str) -> Option<Reply> {
    let (tx, rx) = mpsc::channel();
    if !submit(Request { line: line.to_string(), reply: tx }) {
        return None;
    }
    rx.recv().ok()
}

/// More commands for the control channel (the IPVS load balancer's
/// ipvsadm-style `-A`, `-a`, `-L`, ...).
pub trait Extension {
    /// The commands it handles, for `help`.
    fn commands(&self) -> Vec<String>;

    /// Runs `words` (the request split at whitespace, `words[0]` the
    /// command) if it is one of this extension's commands; `None` otherwise.
    /// Must leave the switch unchanged when it refuses.
    fn execute(&mut self, switch: &mut Switch, words: &[&str]) -> Option<Reply>;
}

/// Runs control requests against a switch: the built-in commands first,
/// then each extension in the order added.
#[derive(Default)]
pub struct Dispatcher {
    extensions: Vec<Box<dyn Extension>>,
}

/// The built-in commands besides the BMv2 ones, with their usage.
const OWN_COMMANDS: [(&str, &str); 2] = [("report", "report"), ("help", "help")];

impl Dispatcher {
    /// The built-in commands only.
    pub fn new() -> Dispatcher {
        Dispatcher::default()
    }

    /// Adds an extension.
    pub fn with(mut self, ext: Box<dyn Extension>) -> Dispatcher {
        self.extensions.push(ext);
        self
    }

    /// Runs one request line against `switch`.
    pub fn execute(&mut self, switch: &mut Switch, line: &str) -> Reply {
        let line = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(&cmd) = words.first() else { return Reply::ok(Vec::new()) };
        if control::is_command(cmd) {
            return bmv2(switch, line);
        }
        match cmd {
            "report" => return Reply::ok(switch.report().lines().map(str::to_string).collect()),
            "help" => return Reply::ok(self.help()),
            _ => {}
        }
        for ext in &mut self.extensions {
            if let Some(reply) = ext.execute(switch, &words) {
                return reply;
            }
        }
        let mut known: Vec<String> =
            control::COMMANDS.iter().chain(OWN_COMMANDS.iter()).map(|c| c.0.to_string()).collect();
        known.extend(self.extensions.iter().flat_map(|e| e.commands()));
        let mut msg = format!("unknown command `{cmd}`");
        if let Some(s) = did_you_mean(cmd, known.iter().map(String::as_str)) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        }
        msg.push_str(" (`help` lists the commands)");
        Reply::error(msg)
    }

    fn help(&self) -> Vec<String> {
        let mut out = vec!["BMv2 runtime-CLI commands:".to_string()];
        out.extend(control::COMMANDS.iter().map(|c| format!("  {}", c.1)));
        out.push("Switch commands:".to_string());
        out.extend(OWN_COMMANDS.iter().map(|c| format!("  {}", c.1)));
        let more: Vec<String> = self.extensions.iter().flat_map(|e| e.commands()).collect();
        if !more.is_empty() {
            out.push("Extension commands:".to_string());
            out.extend(more.iter().map(|c| format!("  {c}")));
        }
        out
    }
}

/// A BMv2 command, all or nothing, through the same code as a command
/// file ([`Switch::run_commands`]), with BMv2's acknowledgements.
fn bmv2(switch: &mut Switch, line: &str) -> Reply {
    match switch.run_commands(line, "ctl", control::Echo::Bmv2) {
        Ok(out) => Reply::ok(out),
        Err(errs) => {
            Reply { out: Vec::new(), err: errs.into_iter().map(|e| e.message).collect(), status: Status::Error }
        }
    }
}

/// The IPVS director's commands on the control channel: ipvsadm command
/// lines (`-A/-E/-D/-C/-a/-e/-d/-Z/--set`, the listings `-L/-l` and `-S`)
/// and the director's keyword lines (`port`, `neigh`, `route`, `sysctl`,
/// `overhead`), exactly as `lb.conf` has them.
///
/// A request that changes the state goes through
/// [`director::load_into_switch`], the `lb.conf` loader: checked, applied to
/// a copy, the director tables regenerated from the copy, and only then
/// committed, so it applies whole or not at all and a new service is in
/// `ipvs_services` before the next packet. Refusals carry ipvsadm's wording
/// (`Service not defined`) without a file or line. A listing alone does not
/// touch the tables.
///
/// # The network
/// In a file the `port`, `neigh` and `route` lines declare the whole
/// network; one such line on its own would wipe the rest. So a request's
/// network line is merged into the current network instead: it replaces
/// the port of the same number, the neighbour of the same address or the
/// route of the same prefix, or is added. (There is no way to delete one;
/// reload a whole network for that.)
///
/// # Time
/// Listings show counters and connection timers at the current packet time.
/// In live mode ([`Ipvsadm::live`]) that is the monotonic clock the frames
/// are stamped with, so the director's timers first advance to "now": a
/// connection idle since the last packet shows its real remaining time.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ipvsadm {
    /// Where "now" comes from; `None`: the latest packet's time.
    clock: Option<fn() -> u64>,
}

impl Ipvsadm {
    /// Listings at the latest packet's time (replay, tests).
    pub fn new() -> Ipvsadm {
        Ipvsadm { clock: None }
    }

    /// Listings at the monotonic clock's time (live mode).
    pub fn live() -> Ipvsadm {
        Ipvsadm { clock: Some(sys::monotonic_ns) }
    }

    /// Runs one request (`words` as the dispatcher splits it).
    fn run(&self, switch: &mut Switch, words: &[&str]) -> Reply {
        let Some(director) = switch.externs_mut().director_mut() else {
            return Reply::error(
                "this switch has no IPVS director (the program has no conn_table or scheduler, and no --ipvs lb.conf was loaded)",
            );
        };
        if let Some(clock) = self.clock {
            director.advance(clock());
        }
        let line = words.join(" ");
        let messages = |errs: Vec<admin::CommandError>| Reply {
            out: Vec::new(),
            err: errs.into_iter().map(|e| e.message).collect(),
            status: Status::Error,
        };
        let is_net = matches!(words.first(), Some(&("port" | "neigh" | "route")));
        let text = if is_net { merged_network(&director.lb.net, words, &line) } else { line };
        let parsed = match admin::parse_file(&text, "ctl") {
            Ok(p) => p,
            Err(e) => return messages(e),
        };
        let listing_only =
            !parsed.commands.is_empty() && parsed.net.is_none() && parsed.commands.iter().all(|c| c.op.is_listing());
        let result = if listing_only { director.list(&text) } else { director::load_into_switch(switch, &text, "ctl") };
        match result {
            Ok(out) => Reply::ok(out),
            Err(e) => messages(e),
        }
    }
}

impl Ipvsadm {
    /// `weight -t|-u VIP:PORT -r RIP[:PORT] WEIGHT`: the ipvsadm line `-e
    /// ... -w WEIGHT` with the server's current forwarding method and
    /// thresholds (ipvsadm's `-e` without `-g/-i/-m` would make it `-g`),
    /// run like any `-e`. Prints `TCP VIP:PORT -> RIP:PORT: weight OLD -> NEW`.
    /// The health monitor sets weights with it (`crate::ipvs::health`).
    fn weight(&self, switch: &mut Switch, words: &[&str]) -> Reply {
        const USAGE: &str = "usage: weight -t|-u VIP:PORT -r RIP[:PORT] WEIGHT";
        let ["weight", sw @ ("-t" | "-u"), vip, "-r", rip, w] = words else { return Reply::error(USAGE) };
        // `-m` only so that the parser keeps RIP's port (-g and -i force
        // the service's); the real method is read below.
        let (key, cfg) = match crate::ipvs::admin::parse::parse_ipvsadm(&["-e", sw, vip, "-r", rip, "-m", "-w", w]) {
            Ok(AdminCmd::EditDest(key, cfg)) => (key, cfg),
            Ok(_) => return Reply::error(USAGE),
            Err(e) => return Reply::error(e),
        };
        let Some(director) = switch.externs().director() else {
            return Reply::error("this switch has no IPVS director (no --ipvs lb.conf was loaded)");
        };
        let services = &director.lb.services;
        let Some(s) = services.find_service(&key) else { return Reply::error("Service not defined") };
        let Some(d) = services.find_dest(s, cfg.addr, cfg.port) else { return Reply::error("No such destination") };
        let dest = services.dest(d);
        let old = dest.weight;
        let method = match dest.fwd {
            crate::ipvs::service::FwdMethod::Masq => "-m",
            crate::ipvs::service::FwdMethod::Tunnel => "-i",
            crate::ipvs::service::FwdMethod::Route => "-g",
        };
        let line = format!(
            "-e {sw} {}:{} -r {}:{} {method} -w {} -x {} -y {}",
            key.addr, key.port, cfg.addr, cfg.port, cfg.weight, dest.u_threshold, dest.l_threshold
        );
        let edit: Vec<&str> = line.split_whitespace().collect();
        let reply = self.run(switch, &edit);
        if reply.status != Status::Ok {
            return reply;
        }
        Reply::ok(vec![format!(
            "{} {}:{} -> {}:{}: weight {old} -> {}",
            key.proto.name(),
            key.addr,
            key.port,
            cfg.addr,
            cfg.port,
            cfg.weight
        )])
    }
}

/// The current network as `lb.conf` lines, less what `words` (a `port`,
/// `neigh` or `route` line) replaces, then `line` itself.
fn merged_network(net: &NetConfig, words: &[&str], line: &str) -> String {
    let new = parse_config_line(words).and_then(Result::ok);
    let mut text = String::new();
    for p in net.ports.values() {
        if matches!(&new, Some(ConfigLine::Port(q)) if q.number == p.number) {
            continue;
        }
        text.push_str(&format!("port {} name {} mac {}", p.number, p.name, p.mac));
        for a in &p.addrs {
            text.push_str(&format!(" addr {a}"));
        }
        text.push_str(&format!(" mtu {}\n", p.mtu));
    }
    for n in net.neighbours.values() {
        if matches!(&new, Some(ConfigLine::Neigh { ip, .. }) if *ip == n.ip) {
            continue;
        }
        text.push_str(&format!("neigh {} mac {} port {}\n", n.ip, n.mac, n.port));
    }
    for r in &net.routes {
        if matches!(&new, Some(ConfigLine::Route { prefix, .. }) if *prefix == r.prefix) {
            continue;
        }
        let via = r.via.map(|v| format!(" via {v}")).unwrap_or_default();
        text.push_str(&format!("route {}{via} port {}\n", r.prefix, r.port));
    }
    text.push_str(line);
    text.push('\n');
    text
}

impl Extension for Ipvsadm {
    fn commands(&self) -> Vec<String> {
        [
            "-A|-E -t|-u VIP:PORT [-s SCHEDULER] [-p [TIMEOUT]] [-M NETMASK] [-b SCHED-FLAGS]",
            "-D -t|-u VIP:PORT",
            "-C",
            "-a|-e -t|-u VIP:PORT -r RIP[:PORT] [-g|-i|-m] [-w WEIGHT] [-x UPPER] [-y LOWER]",
            "-d -t|-u VIP:PORT -r RIP[:PORT]",
            "-Z [-t|-u VIP:PORT]",
            "--set TCP TCPFIN UDP",
            "-L|-l [-n] [-c] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [-t|-u VIP:PORT]",
            "-S [-n]",
            "port|neigh|route ... (merged into the director's network)",
            "sysctl NAME VALUE",
            "overhead current|classic",
            "weight -t|-u VIP:PORT -r RIP[:PORT] WEIGHT (like -e -w, keeping the method and thresholds)",
        ]
        .map(String::from)
        .to_vec()
    }

    fn execute(&mut self, switch: &mut Switch, words: &[&str]) -> Option<Reply> {
        let first = *words.first()?;
        match first {
            "weight" => return Some(self.weight(switch, words)),
            "check" => {
                return Some(Reply::error(
                    "check lines are read from lb.conf when the switch starts (`health` lists them); \
                     they cannot be added over the control channel",
                ))
            }
            _ => {}
        }
        let ours = first.starts_with('-') || first == "ipvsadm" || KEYWORDS.contains(&first);
        ours.then(|| self.run(switch, words))
    }
}

/// Serves the control channel on the Unix socket `path` until `stop` is
/// set: one thread accepts, one thread per connection reads requests and
/// hands them to `submit`. A stale socket file (nobody listening) is
/// replaced; a live one is an error. The socket is made owner-only (0600)
/// and removed when the server stops.
pub fn serve(path: &Path, submit: Submit, stop: Arc<AtomicBool>) -> io::Result<JoinHandle<()>> {
    let listener = bind(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    let path = path.to_path_buf();
    thread::Builder::new().name("ctl".into()).spawn(move || {
        accept_loop(&listener, &submit, &stop);
        // Only remove what is still ours (nobody replaced it meanwhile).
        let _ = fs::remove_file(&path);
    })
}

fn bind(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let meta = fs::symlink_metadata(path)?;
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, "the path exists and is not a socket"));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "another process is serving on it"));
            }
            fs::remove_file(path)?;
            UnixListener::bind(path)
        }
        r => r,
    }
}

fn accept_loop(listener: &UnixListener, submit: &Submit, stop: &Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match sys::wait_readable(listener.as_raw_fd(), TICK.as_millis() as i32) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(_) => {
                thread::sleep(TICK);
                continue;
            }
        }
        let Ok((mut stream, _)) = listener.accept() else { continue };
        if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            let _ = stream.set_write_timeout(Some(TICK));
            let _ =
                Reply::error(format!("too many control connections (at most {MAX_CONNECTIONS})")).write_to(&mut stream);
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let (submit, stop, count) = (submit.clone(), stop.clone(), active.clone());
        let spawned = thread::Builder::new().name("ctl-conn".into()).spawn(move || {
            // Errors only end this connection; the client sees it closed.
            let _ = connection(stream, &submit, &stop);
            count.fetch_sub(1, Ordering::Relaxed);
        });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Serves one connection: request lines in, replies out, until EOF, a
/// long idle time, shutdown or an oversized request.
fn connection(stream: UnixStream, submit: &Submit, stop: &AtomicBool) -> io::Result<()> {
    stream.set_read_timeout(Some(TICK))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut idle = Duration::ZERO;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // `read_until` keeps what it read before a timeout, so a slow
        // client's line is assembled across ticks.
        let limit = (MAX_REQUEST + 1 - line.len().min(MAX_REQUEST)) as u64;
        match (&mut reader).take(limit).read_until(b'\n', &mut line) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                idle += TICK;
                if idle >= IDLE {
                    return Ok(());
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        idle = Duration::ZERO;
        if line.last() != Some(&b'\n') {
            if line.len() > MAX_REQUEST {
                return Reply::error(format!("request longer than {MAX_REQUEST} bytes")).write_to(&mut writer);
            }
            continue; // more to come
        }
        let reply = match std::str::from_utf8(&line) {
            Err(_) => Reply::error("the request is not UTF-8"),
            Ok(text) => {
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() || text.trim_start().starts_with('#') {
                    Reply::ok(Vec::new())
                } else {
                    submit_blocking(submit, text).unwrap_or_else(|| Reply::error("the switch has stopped"))
                }
            }
        };
        line.clear();
        reply.write_to(&mut writer)?;
    }
}

/// A control-channel client: one connection, any number of requests.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`; each reply must come within `timeout`.
    pub fn connect(path: &Path, timeout: Duration) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Client { writer: stream.try_clone()?, reader: BufReader::new(stream) })
    }

    /// Sends one request line and reads its reply.
    pub fn request(&mut self, line: &str) -> io::Result<Reply> {
        if line.contains(['\n', '\r']) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a request is one line"));
        }
        if line.len() > MAX_REQUEST {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("request longer than {MAX_REQUEST} bytes"),
            ));
        }
        self.writer.write_all(format!("{line}\n").as_bytes())?;
        Reply::read_from(&mut self.reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::mem::tests::{frame_to, router_ir};
    use crate::switch::{Backend, SwitchOptions};

    fn router() -> Switch {
        Switch::new(router_ir(), SwitchOptions { backend: Backend::Interp, trace: false }).unwrap()
    }

    fn run(d: &mut Dispatcher, sw: &mut Switch, line: &str) -> Reply {
        d.execute(sw, line)
    }

    #[test]
    fn reply_wire_format_round_trips() {
        let r = Reply { out: vec!["a b".into(), "two\nlines".into()], err: vec!["oops".into()], status: Status::Error };
        let mut buf = Vec::new();
        r.write_to(&mut buf).unwrap();
        assert_eq!(String::from_utf8(buf.clone()).unwrap(), "out a b\nout two\nout lines\nerr oops\nend 1\n");
        let back = Reply::read_from(&mut &buf[..]).unwrap();
        assert_eq!(back.out, ["a b", "two", "lines"]);
        assert_eq!(back.err, ["oops"]);
        assert_eq!(back.status, Status::Error);
        assert_eq!(Reply::read_from(&mut &b"out x\n"[..]).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(Reply::read_from(&mut &b"zzz x\nend 0\n"[..]).unwrap_err().kind(), io::ErrorKind::InvalidData);
        assert_eq!(Reply::read_from(&mut &b"end 0\n"[..]).unwrap(), Reply::ok(Vec::new()));
    }

    #[test]
    fn table_commands_report_handles_and_refusals_change_nothing() {
        let (mut d, mut sw) = (Dispatcher::new(), router());
        let r = run(&mut d, &mut sw, "table_add routes fwd 10.0.0.0/8 => 1");
        let added = |h: u32| {
            vec![
                "Adding entry to lpm match table I.routes".to_string(),
                format!("Entry has been added with handle {h}"),
            ]
        };
        assert_eq!(r, Reply::ok(added(0)));
        let r = run(&mut d, &mut sw, "table_add I.routes fwd 10.1.0.0/16 => 2");
        assert_eq!(r.out, added(1));
        let dump = run(&mut d, &mut sw, "table_dump routes");
        assert_eq!(dump.status, Status::Ok);
        // Duplicate key, bad action, bad width: refused, the table unchanged.
        for bad in [
            "table_add routes fwd 10.0.0.0/8 => 3",
            "table_add routes nosuch 10.2.0.0/16 => 1",
            "table_add routes fwd 10.2.0.0/16 => 600",
            "table_delete routes 7",
        ] {
            let r = run(&mut d, &mut sw, bad);
            assert_eq!(r.status, Status::Error, "{bad}: {r:?}");
            assert!(!r.err.is_empty() && !r.err[0].starts_with("ctl:"), "{bad}: {r:?}");
            assert_eq!(run(&mut d, &mut sw, "table_dump routes"), dump, "{bad}");
        }
        assert_eq!(run(&mut d, &mut sw, "table_delete routes 0").status, Status::Ok);
        // The freed handle is reused.
        let r = run(&mut d, &mut sw, "table_add routes fwd 10.0.0.0/8 => 1");
        assert_eq!(r.out, added(0));
        // table_modify: BMv2's words, the same handle; a bad handle or a
        // bad action changes nothing.
        let r = run(&mut d, &mut sw, "table_modify routes fwd 0 => 5");
        assert_eq!(r, Reply::ok(vec!["Modifying entry 0 for lpm match table I.routes".into()]));
        let dump = run(&mut d, &mut sw, "table_dump routes");
        assert!(dump.out.contains(&"Action entry: I.fwd - 0005".to_string()), "{dump:?}");
        for (bad, msg) in [
            ("table_modify routes fwd 9 1", "table `I.routes` has no entry with handle 9"),
            ("table_modify routes fwd 0 1 2", "action `I.fwd` takes 1 parameter(s) (port), got 2"),
        ] {
            assert_eq!(run(&mut d, &mut sw, bad).err, [msg], "{bad}");
            assert_eq!(run(&mut d, &mut sw, "table_dump routes"), dump, "{bad}");
        }
        assert_eq!(run(&mut d, &mut sw, "table_num_entries routes").out, ["2"]);
        assert_eq!(run(&mut d, &mut sw, "table_set_default routes fwd 3").status, Status::Ok);
        assert_eq!(run(&mut d, &mut sw, "  # just a comment").status, Status::Ok);
    }

    #[test]
    fn counters_and_registers() {
        let (mut d, mut sw) = (Dispatcher::new(), router());
        run(&mut d, &mut sw, "table_add routes fwd 10.0.0.0/8 => 2");
        let mut out = Vec::new();
        sw.process(0, &frame_to(0x0a01_0203), 1, &mut out);
        sw.process(0, &frame_to(0x0a01_0203), 2, &mut out);
        let r = run(&mut d, &mut sw, "counter_read per_port 2");
        assert_eq!(r.out, ["per_port[2]= (68 bytes, 2 packets)"]);
        assert_eq!(run(&mut d, &mut sw, "register_read I.last_len 0").out, ["I.last_len[0]= 34"]);
        assert_eq!(run(&mut d, &mut sw, "register_write last_len 1 0xffffffff").status, Status::Ok);
        assert_eq!(run(&mut d, &mut sw, "register_read last_len 1").out, ["last_len[1]= 4294967295"]);
        let r = run(&mut d, &mut sw, "register_write last_len 1 0x100000000");
        assert_eq!(r.err, ["`0x100000000` does not fit register `I.last_len` (bit<32>)"]);
        let r = run(&mut d, &mut sw, "counter_write per_port 1 3 300");
        assert_eq!(r.out, ["per_port[1] has been updated"]);
        assert_eq!(run(&mut d, &mut sw, "register_reset last_len").status, Status::Ok);
        assert_eq!(run(&mut d, &mut sw, "register_read last_len").out, ["last_len= 0, 0, 0, 0"]);
        assert_eq!(run(&mut d, &mut sw, "counter_reset per_port").status, Status::Ok);
        assert_eq!(run(&mut d, &mut sw, "counter_read per_port 2").out, ["per_port[2]= (0 bytes, 0 packets)"]);
        let r = run(&mut d, &mut sw, "counter_read per_prot 2");
        assert_eq!(r.err, ["no counter named `per_prot`; did you mean `per_port`? (counters: I.per_port)"]);
        let r = run(&mut d, &mut sw, "counter_read per_port 4");
        assert_eq!(r.err, ["index 4 is out of range: `I.per_port` has 4 cells (0 to 3)"]);
        assert_eq!(run(&mut d, &mut sw, "counter_read per_port").err, ["usage: counter_read COUNTER INDEX"]);
    }

    #[test]
    fn unknown_commands_suggest_and_extensions_plug_in() {
        struct Ipvs;
        impl Extension for Ipvs {
            fn commands(&self) -> Vec<String> {
                vec!["-L [-n]".into()]
            }
            fn execute(&mut self, _: &mut Switch, words: &[&str]) -> Option<Reply> {
                (words[0] == "-L").then(|| Reply::ok(vec!["IP Virtual Server version 1.2.1".into()]))
            }
        }
        let mut d = Dispatcher::new().with(Box::new(Ipvs));
        let mut sw = router();
        assert_eq!(run(&mut d, &mut sw, "-L -n").out, ["IP Virtual Server version 1.2.1"]);
        let r = run(&mut d, &mut sw, "table_ad routes");
        assert_eq!(r.err, ["unknown command `table_ad`; did you mean `table_add`? (`help` lists the commands)"]);
        let help = run(&mut d, &mut sw, "help").out.join("\n");
        assert!(help.contains("counter_read COUNTER INDEX") && help.contains("-L [-n]"), "{help}");
        assert!(run(&mut d, &mut sw, "report").out[0].starts_with("Packets: 0 received"));
    }

    /// `programs/lb.p4lite` with `pcaps/lb_nat/lb.conf` loaded.
    fn load_balancer() -> Switch {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let src = fs::read_to_string(format!("{root}/programs/lb.p4lite")).unwrap();
        let conf = fs::read_to_string(format!("{root}/pcaps/lb_nat/lb.conf")).unwrap();
        let mut sw = Switch::new(crate::switch::tests::compile(&src), SwitchOptions::default()).unwrap();
        director::load_into_switch(&mut sw, &conf, "lb.conf").unwrap();
        sw
    }

    /// The entries of the table whose name ends in `.name`.
    fn entries(sw: &Switch, name: &str) -> usize {
        let id = sw.program().tables.iter().position(|t| t.name.ends_with(&format!(".{name}"))).unwrap();
        sw.tables().iter().nth(id).map_or(0, |(_, t)| t.len())
    }

    /// A TCP SYN from 192.0.2.50:`sport` to 198.51.100.10:80, to the
    /// director's wan port, with correct checksums.
    fn syn(sport: u16) -> Vec<u8> {
        fn sum(data: &[u8]) -> u16 {
            let mut acc: u32 = data.chunks(2).map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0))).sum();
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
            !(acc as u16)
        }
        let (src, dst) = ([192, 0, 2, 50], [198, 51, 100, 10]);
        let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = sum(&ip).to_be_bytes();
        ip[10..12].copy_from_slice(&c);
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&sport.to_be_bytes());
        tcp.extend_from_slice(&80u16.to_be_bytes());
        tcp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        let mut pseudo = [&src[..], &dst[..], &[0, 6, 0, 20]].concat();
        pseudo.extend_from_slice(&tcp);
        let c = sum(&pseudo).to_be_bytes();
        tcp[16..18].copy_from_slice(&c);
        let mut f = vec![0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0xfe, 0x08, 0x00];
        f.extend(ip);
        f.extend(tcp);
        f
    }

    #[test]
    fn ipvsadm_commands_change_the_director_and_its_tables() {
        let mut d = Dispatcher::new().with(Box::new(Ipvsadm::new()));
        let mut sw = load_balancer();
        assert_eq!(entries(&sw, "ipvs_services"), 3);
        // A new service is in `ipvs_services` at once.
        assert_eq!(run(&mut d, &mut sw, "-A -t 198.51.100.11:80 -s rr"), Reply::ok(Vec::new()));
        assert_eq!(entries(&sw, "ipvs_services"), 4);
        assert_eq!(run(&mut d, &mut sw, "ipvsadm -D -t 198.51.100.10:443").status, Status::Ok);
        assert_eq!(entries(&sw, "ipvs_services"), 3);
        // Bad commands: ipvsadm's words, nothing changed.
        let before = run(&mut d, &mut sw, "-S -n");
        for (bad, msg) in [
            ("-A -t 198.51.100.11:80", "Service already exists"),
            ("-D -t 1.2.3.4:80", "No such service"),
            ("-a -t 198.51.100.10:80 -r 10.1.1.21:8080 -m", "Destination already exists"),
            ("-A -t 198.51.100.12:80 -s fastest", "Scheduler or persistence engine not found"),
            ("-L -t 1.2.3.4:80", "No such service"),
        ] {
            let r = run(&mut d, &mut sw, bad);
            assert_eq!((r.status, r.err.as_slice()), (Status::Error, [msg.to_string()].as_slice()), "{bad}");
        }
        assert_eq!(run(&mut d, &mut sw, "-S -n"), before);
        assert_eq!(before.out[0], "-A -t 198.51.100.10:80 -s wrr");
        // Network lines merge into the network instead of replacing it.
        assert_eq!(entries(&sw, "neighbours"), 7);
        assert_eq!(run(&mut d, &mut sw, "neigh 10.1.1.24 mac 02:00:00:00:01:24").status, Status::Ok);
        assert_eq!(run(&mut d, &mut sw, "neigh 10.1.1.21 mac 02:00:00:00:01:99").status, Status::Ok);
        assert_eq!(entries(&sw, "neighbours"), 8);
        let net = &sw.externs().director().unwrap().lb.net;
        assert_eq!(net.ports.len(), 2);
        let n = net.neighbour(std::net::Ipv4Addr::new(10, 1, 1, 21)).unwrap();
        assert_eq!(n.mac.to_string(), "02:00:00:00:01:99");
        assert_eq!(run(&mut d, &mut sw, "route 10.2.0.0/16 via 10.1.1.254").status, Status::Ok);
        // 4 connected routes, 2 subnet broadcasts (local_broadcast), the default and this one.
        assert_eq!(entries(&sw, "ipv4_routes"), 8);
        let r = run(&mut d, &mut sw, "route 10.3.0.0/16 via 10.9.9.9");
        assert_eq!(r.err, ["route 10.3.0.0/16: gateway 10.9.9.9 is not in a connected subnet of any port"]);
        assert_eq!(entries(&sw, "ipv4_routes"), 8);
        assert_eq!(run(&mut d, &mut sw, "sysctl expire_nodest_conn 1").status, Status::Ok);
        assert!(sw.externs().director().unwrap().lb.sysctls.expire_nodest_conn);
        // Without a director the commands say why.
        let r = run(&mut d, &mut router(), "-Ln");
        assert!(r.err[0].starts_with("this switch has no IPVS director"), "{r:?}");
        assert!(run(&mut d, &mut sw, "help").out.iter().any(|l| l.contains("-d -t|-u VIP:PORT -r RIP[:PORT]")));
    }

    #[test]
    fn weight_keeps_the_method_and_thresholds() {
        let mut d = Dispatcher::new()
            .with(Box::new(Ipvsadm::new()))
            .with(Box::new(crate::ipvs::health::HealthCommand::new(None)));
        let mut sw = load_balancer();
        assert_eq!(
            run(&mut d, &mut sw, "-e -t 198.51.100.10:80 -r 10.1.1.22:8080 -m -w 2 -x 40 -y 5").status,
            Status::Ok
        );
        let r = run(&mut d, &mut sw, "weight -t 198.51.100.10:80 -r 10.1.1.22:8080 0");
        assert_eq!(r, Reply::ok(vec!["TCP 198.51.100.10:80 -> 10.1.1.22:8080: weight 2 -> 0".into()]));
        let t = run(&mut d, &mut sw, "-L -n -t 198.51.100.10:80 --thresholds").out.join("\n");
        assert!(t.contains("  -> 10.1.1.22:8080               40         5 "), "{t}");
        let l = run(&mut d, &mut sw, "-L -n -t 198.51.100.10:80").out.join("\n");
        assert!(l.contains("  -> 10.1.1.22:8080               Masq    0 "), "{l}");
        for (bad, msg) in [
            ("weight -t 198.51.100.10:80 -r 10.1.1.99:8080 1", "No such destination"),
            ("weight -t 198.51.100.99:80 -r 10.1.1.22:8080 1", "Service not defined"),
            ("weight -t 198.51.100.10:80 -r 10.1.1.22:8080 70000", "illegal weight specified"),
            ("weight -t 198.51.100.10:80 10.1.1.22:8080 1", "usage: weight -t|-u VIP:PORT -r RIP[:PORT] WEIGHT"),
        ] {
            assert_eq!(run(&mut d, &mut sw, bad).err, [msg], "{bad}");
        }
        let r = run(&mut d, &mut sw, "check -t 198.51.100.10:80 tcp");
        assert!(r.status == Status::Error && r.err[0].starts_with("check lines are read from lb.conf"), "{r:?}");
        let r = run(&mut d, &mut sw, "health");
        assert!(r.out[0].starts_with("no health checks: lb.conf has no `check` lines"), "{r:?}");
    }

    /// The brief's scenario: a SYN through the live loop, then real servers
    /// added, deleted and re-weighted over the control channel.
    #[test]
    fn ipvsadm_over_the_live_loop() {
        let mut live = crate::live::Live::new();
        let (p1, w1) = crate::live::mem::wire(1, "wan");
        let (p2, w2) = crate::live::mem::wire(2, "lan");
        live.add_port(p1).unwrap();
        live.add_port(p2).unwrap();
        // Over a real control socket, as `p4lite ctl` talks to it.
        let dir = std::env::temp_dir().join(format!("p4lite-ctl-ipvs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        live.adopt(serve(&path, live.submitter(), live.stop_flag()).unwrap());
        let stopper = live.stopper();
        let driver = thread::spawn(move || {
            let client = std::cell::RefCell::new(Client::connect(&path, Duration::from_secs(10)).unwrap());
            let ctl = |line: &str| client.borrow_mut().request(line).unwrap();
            w1.inject(syn(40000));
            let out = w2.take(Duration::from_secs(10)).expect("the SYN forwarded to a real server");
            assert_eq!(&out[30..34], &[10, 1, 1, 21], "wrr's first pick");
            let conns = ctl("-Lnc");
            assert_eq!(
                conns.out[..2],
                ["IPVS connection entries", "pro expire state       source             virtual            destination"]
            );
            assert_eq!(conns.out.len(), 3, "{conns:?}");
            assert!(conns.out[2].starts_with("TCP 00:5"), "{conns:?}");
            assert!(
                conns.out[2].ends_with("SYN_RECV    192.0.2.50:40000   198.51.100.10:80   10.1.1.21:8080"),
                "{conns:?}"
            );
            let listing = |r: Reply| (r.out.join("\n") + "\n").replace(' ', "␣");
            let before = ctl("-Ln");
            assert_eq!(
                listing(before.clone()),
                "\
IP␣Virtual␣Server␣version␣1.2.1␣(size=4096)
Prot␣LocalAddress:Port␣Scheduler␣Flags
␣␣->␣RemoteAddress:Port␣␣␣␣␣␣␣␣␣␣␣Forward␣Weight␣ActiveConn␣InActConn
TCP␣␣198.51.100.10:80␣wrr
␣␣->␣10.1.1.21:8080␣␣␣␣␣␣␣␣␣␣␣␣␣␣␣Masq␣␣␣␣3␣␣␣␣␣␣1␣␣␣␣␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣
␣␣->␣10.1.1.22:8080␣␣␣␣␣␣␣␣␣␣␣␣␣␣␣Masq␣␣␣␣2␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣
␣␣->␣10.1.1.23:8080␣␣␣␣␣␣␣␣␣␣␣␣␣␣␣Masq␣␣␣␣1␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣
TCP␣␣198.51.100.10:443␣rr
UDP␣␣198.51.100.10:53␣rr
␣␣->␣10.1.1.22:5353␣␣␣␣␣␣␣␣␣␣␣␣␣␣␣Masq␣␣␣␣1␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣
"
            );
            // A bad command: ipvsadm's error, nothing changed.
            let bad = ctl("-a -t 1.2.3.4:80 -r 10.1.1.24:8080 -m");
            assert_eq!((bad.status, bad.err.clone()), (Status::Error, vec!["Service not defined".to_string()]));
            assert_eq!(ctl("-Ln"), before);
            for cmd in [
                "-a -t 198.51.100.10:80 -r 10.1.1.24:8080 -m",
                "-d -t 198.51.100.10:80 -r 10.1.1.23:8080",
                "-e -t 198.51.100.10:80 -r 10.1.1.22:8080 -m -w 0",
            ] {
                assert_eq!(ctl(cmd), Reply::ok(Vec::new()), "{cmd}");
            }
            let after = listing(ctl("-Ln"));
            let tcp80: Vec<&str> = after.lines().skip(3).take(4).collect();
            assert_eq!(
                tcp80,
                [
                    "TCP␣␣198.51.100.10:80␣wrr",
                    "␣␣->␣10.1.1.21:8080␣␣␣␣␣␣␣␣␣␣␣␣␣␣␣Masq␣␣␣␣3␣␣␣␣␣␣1␣␣␣␣␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣",
                    "␣␣->␣10.1.1.22:8080␣␣␣␣␣␣␣␣␣␣␣␣␣␣␣Masq␣␣␣␣0␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣",
                    "␣␣->␣10.1.1.24:8080␣␣␣␣␣␣␣␣␣␣␣␣␣␣␣Masq␣␣␣␣1␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣␣0␣␣␣␣␣␣␣␣␣",
                ]
            );
            assert!(!after.contains("10.1.1.23"), "{after}");
            // The connection is still there, its timer running.
            assert_eq!(ctl("-Lnc").out.len(), 3);
            assert!(stopper.stop("test"));
        });
        let mut sw = load_balancer();
        let mut d = Dispatcher::new().with(Box::new(Ipvsadm::live()));
        let report = live.run(&mut sw, &mut d, None);
        driver.join().unwrap();
        assert_eq!(report.unwrap().control_requests, 9);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn server_and_client_over_a_socket() {
        let dir = std::env::temp_dir().join(format!("p4lite-ctl-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        // The "switch thread": answers every request with its line reversed.
        let (tx, rx) = mpsc::channel::<Request>();
        let tx = std::sync::Mutex::new(tx);
        let submit: Submit = Arc::new(move |r| tx.lock().map(|t| t.send(r).is_ok()).unwrap_or(false));
        let stop = Arc::new(AtomicBool::new(false));
        let server = serve(&path, submit, stop.clone()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A second server on the same live socket is refused.
        let again = serve(&path, Arc::new(|_| false), Arc::new(AtomicBool::new(true)));
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AddrInUse);
        let worker = thread::spawn(move || {
            for r in rx.iter().take(2) {
                let _ = r.reply.send(Reply::ok(vec![r.line.chars().rev().collect()]));
            }
        });
        let mut c = Client::connect(&path, Duration::from_secs(5)).unwrap();
        assert_eq!(c.request("abc").unwrap().out, ["cba"]);
        assert_eq!(c.request("").unwrap(), Reply::ok(Vec::new()));
        assert_eq!(c.request("x y").unwrap().out, ["y x"]);
        assert!(c.request("two\nlines").is_err());
        worker.join().unwrap();
        // The worker is gone: the server answers that the switch stopped.
        assert_eq!(c.request("late").unwrap().err, ["the switch has stopped"]);
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
        assert!(!path.exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn stale_socket_files_are_replaced() {
        let dir = std::env::temp_dir().join(format!("p4lite-ctl-stale-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        drop(UnixListener::bind(&path).unwrap()); // leaves the file, nobody listening
        let stop = Arc::new(AtomicBool::new(true));
        let server = serve(&path, Arc::new(|_| false), stop).unwrap();
        server.join().unwrap();
        fs::write(&path, "not a socket").unwrap();
        let e = serve(&path, Arc::new(|_| false), Arc::new(AtomicBool::new(true))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let _ = fs::remove_dir_all(&dir);
    }
}
