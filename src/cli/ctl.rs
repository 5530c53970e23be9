//! `p4lite ctl SOCKET COMMAND...`: one command to a running switch's
//! control channel (`p4lite run --iface ... --ctl SOCKET`), or, without a
//! command, one per line from stdin. Prints the replies; exits 0 when every
//! command was applied, 1 when one was refused, 2 when the switch cannot be
//! reached.
//!
//! Also here: [`run_live`], the live side of `p4lite run --iface`, which
//! serves that channel. `P4LITE_LIVE_IO=pnet` makes it move frames with
//! pnet's own `next()`/`send_to()` (for benchmarks; see BENCHMARKS.md).

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use p4lite_runtime::ctl::{Client, Dispatcher, Extension, Ipvsadm, Reply, Status};
use p4lite_runtime::ipvs::health;
use p4lite_runtime::live::{self, IoPath, LiveConfig, LiveError, PortSpec};
use p4lite_runtime::switch::Switch;

use super::{print_stdout, status};

/// Arguments of `p4lite ctl`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The switch's control socket (`p4lite run --ctl PATH`).
    #[arg(value_name = "SOCKET")]
    pub socket: PathBuf,
    /// Seconds to wait for each reply.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
    /// The command and its words (`table_add ipv4_lpm set_nhop 10.0.2.0/24
    /// '=>' 10.0.2.2 1`: quote `=>` in a shell; `counter_read per_port 1`;
    /// `help`). Without one, commands are read from stdin, one per line.
    #[arg(value_name = "COMMAND", trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Sends the command(s) and prints the replies.
pub fn run(args: Args) -> ExitCode {
    let timeout = Duration::from_secs(args.timeout.max(1));
    let mut client = match Client::connect(&args.socket, timeout) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "p4lite: cannot connect to {}: {e} (is `p4lite run --iface ... --ctl {}` running?)",
                args.socket.display(),
                args.socket.display()
            );
            return ExitCode::from(status::USAGE);
        }
    };
    if !args.command.is_empty() {
        let code = send(&mut client, &args.socket, &args.command.join(" "));
        if code != status::OK && args.command.iter().any(|w| w == "=") {
            eprintln!("p4lite: a lone `=`: the shell took the `>` of an unquoted `=>` as a redirection (and wrote a file named by the next word); quote it: '=>'");
        }
        return ExitCode::from(code);
    }
    if std::io::stdin().is_terminal() {
        eprintln!("p4lite: reading commands from the terminal, one per line (end with Ctrl-D)");
    }
    let mut worst = status::OK;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let code = send(&mut client, &args.socket, &line);
        if code == status::USAGE {
            return ExitCode::from(code);
        }
        worst = worst.max(code);
    }
    ExitCode::from(worst)
}

/// One request: prints the reply, returns the exit status it implies.
fn send(client: &mut Client, socket: &Path, line: &str) -> u8 {
    match client.request(line) {
        Ok(reply) => print_reply(&reply),
        Err(e) => {
            eprintln!("p4lite: {}: {e}", socket.display());
            status::USAGE
        }
    }
}

fn print_reply(reply: &Reply) -> u8 {
    if !reply.out.is_empty() {
        print_stdout(&(reply.out.join("\n") + "\n"));
    }
    let mut err = std::io::stderr().lock();
    for l in &reply.err {
        let _ = writeln!(err, "{l}");
    }
    match reply.status {
        Status::Ok => status::OK,
        Status::Error => status::ERRORS,
    }
}

/// `p4lite run PROG --iface PORT=IFACE... [--ctl SOCKET]`: runs `switch` on
/// the interfaces until SIGINT or SIGTERM, then prints the live port
/// counters and the switch's report, and the ipvsadm `listings` (the
/// `--ipvs-list` requests; `-Ln` when only `--ipvs` was given). Exits 0
/// after a signal, 2 when an interface cannot be opened or fails while
/// running (the message names it and the OS error). An interface that goes
/// down while running is one notice line on stderr; the run goes on.
///
/// When the switch has an IPVS director, the control channel also takes
/// ipvsadm command lines and `lb.conf`'s director lines ([`Ipvsadm`]) and
/// `health`; when `lb.conf` has `check` lines, the health monitor runs
/// beside the switch and logs its changes on stderr
/// (`p4lite_runtime::ipvs::health`).
pub fn run_live(
    switch: &mut Switch,
    ports: &[PortSpec],
    ctl: Option<&Path>,
    trace: bool,
    listings: &[String],
) -> ExitCode {
    // A benchmarking knob, not an option: pnet's own per-frame I/O path.
    let io = match std::env::var("P4LITE_LIVE_IO").as_deref() {
        Ok("pnet") => IoPath::Pnet,
        _ => IoPath::Direct,
    };
    let config = LiveConfig { ports: ports.to_vec(), ctl: ctl.map(Path::to_path_buf), io };
    let mut dispatcher = Dispatcher::new();
    // The health monitor runs when lb.conf has `check` lines.
    let checks = switch.externs().director().map(|d| d.lb.checks.clone()).unwrap_or_default();
    let board = (!checks.is_empty()).then(|| health::board(checks));
    if switch.externs().director().is_some() {
        dispatcher =
            dispatcher.with(Box::new(Ipvsadm::live())).with(Box::new(health::HealthCommand::new(board.clone())));
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    if let Err(e) = live::check_ports(switch.program(), ports) {
        eprintln!("p4lite: {e}");
        return ExitCode::from(status::USAGE);
    }
    let mut started = match live::start(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("p4lite: {e}");
            return ExitCode::from(status::USAGE);
        }
    };
    // A link going down and coming back: one line each on stderr.
    started.live_mut().set_notices(Box::new(|line| eprintln!("p4lite: {line}")));
    if let Some(board) = board {
        let live = started.live_mut();
        let log: health::Log = Box::new(|line| eprintln!("{line}"));
        match health::start(board, live.submitter(), live.stop_flag(), log) {
            Ok(monitor) => live.adopt(monitor),
            Err(e) => {
                eprintln!("p4lite: cannot start the health monitor: {e}");
                return ExitCode::from(status::USAGE);
            }
        }
    }
    let names: Vec<String> = ports.iter().map(PortSpec::to_string).collect();
    eprintln!("p4lite: running on {}; stop with Ctrl-C or SIGTERM", names.join(", "));
    let result = started.run(switch, &mut dispatcher, if trace { Some(&mut lock as &mut dyn Write) } else { None });
    drop(lock);
    match result {
        Ok(report) => {
            let text = format!("{}\n{}", report.render(), switch.report());
            print_stdout(&append_listings(text, &ipvs_listings(switch, listings)));
            ExitCode::from(status::OK)
        }
        Err(e @ LiveError::PortFailed { .. }) => {
            // Packets did flow: the counters are worth seeing.
            let text = switch.report();
            print_stdout(&append_listings(text, &ipvs_listings(switch, listings)));
            eprintln!("p4lite: {e}");
            ExitCode::from(status::USAGE)
        }
        Err(e) => {
            eprintln!("p4lite: {e}");
            ExitCode::from(status::USAGE)
        }
    }
}

/// `text`, then a blank line and `listed` unless that is empty.
fn append_listings(mut text: String, listed: &str) -> String {
    if !listed.is_empty() {
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.push('\n');
        text.push_str(listed);
    }
    text
}

/// The ipvsadm listings `requests` (`-Ln`, `-Lnc`, ...) of the switch's
/// director at the monotonic clock's time (the live packet time), one text;
/// empty without a director or requests. A refused request prints its error.
fn ipvs_listings(switch: &mut Switch, requests: &[String]) -> String {
    if switch.externs().director().is_none() {
        return String::new();
    }
    let mut ipvsadm = Ipvsadm::live();
    let mut text = String::new();
    for r in requests {
        let words: Vec<&str> = r.split_whitespace().collect();
        let Some(reply) = ipvsadm.execute(switch, &words) else {
            eprintln!("p4lite: --ipvs-list \"{r}\": not an ipvsadm listing");
            continue;
        };
        for l in &reply.err {
            eprintln!("p4lite: --ipvs-list \"{r}\": {l}");
        }
        for l in &reply.out {
            text.push_str(l);
            text.push('\n');
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    #[test]
    fn hyphenated_commands_pass_through() {
        let cli = Cli::try_parse_from(["p4lite", "ctl", "/tmp/s", "-A", "-t", "10.0.0.1:80", "-s", "rr"]).unwrap();
        let crate::cli::Command::Ctl(a) = cli.command else { panic!("not ctl") };
        assert_eq!(a.command, ["-A", "-t", "10.0.0.1:80", "-s", "rr"]);
        let cli = Cli::try_parse_from(["p4lite", "ctl", "--timeout", "3", "/tmp/s", "table_dump", "t"]).unwrap();
        let crate::cli::Command::Ctl(a) = cli.command else { panic!("not ctl") };
        assert_eq!((a.timeout, a.command.len()), (3, 2));
    }

    #[test]
    fn exit_listings_read_the_director() {
        use p4lite_runtime::switch::Backend;
        let build = |p: &str| crate::cli::run::build_switch(Path::new(p), Backend::Interp, false).ok().unwrap();
        let mut sw = build("programs/lb.p4lite");
        let conf = std::fs::read_to_string("pcaps/lb_nat/lb.conf").unwrap();
        p4lite_runtime::ipvs::director::load_into_switch(&mut sw, &conf, "lb.conf").unwrap();
        let text = ipvs_listings(&mut sw, &["-Ln".into(), "-L -t 198.51.100.10:53 -n".into()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "IP Virtual Server version 1.2.1 (size=4096)");
        assert_eq!(lines[3], "TCP  198.51.100.10:80 wrr");
        assert_eq!(lines[lines.len() - 2], "UDP  198.51.100.10:53 rr");
        assert_eq!(append_listings("report\n".into(), "x\n"), "report\n\nx\n");
        assert_eq!(append_listings("report".into(), ""), "report");
        // No director (a router), no listing.
        assert_eq!(ipvs_listings(&mut build("programs/ipv4_router.p4lite"), &["-Ln".into()]), "");
    }

    #[test]
    fn unreachable_socket_exits_2() {
        let args = Args { socket: "/nonexistent/p4lite.sock".into(), timeout: 1, command: vec!["help".into()] };
        assert_eq!(run(args), ExitCode::from(status::USAGE));
    }
}
