//! The IPVS TCP state machine (spec §2.3, kernel `ip_vs_proto_tcp.c`).
//!
//! IPVS does not track TCP the way a stack does: it only watches the four
//! flags of each segment, picks one *event* by priority (RST > SYN > FIN >
//! ACK; no flag at all → CLOSE unconditionally) and looks the next state up
//! in one of three tables chosen by the packet's direction:
//!
//! - **INPUT**: client → server packets of a conn whose replies are seen;
//! - **OUTPUT**: server → client packets (NAT replies, or DR/TUN replies that
//!   happen to traverse the director); the first one clears `NOOUTPUT`;
//! - **INPUT_ONLY**: client → server packets while the conn still has
//!   `NOOUTPUT` (every non-NAT conn starts with it).
//!
//! With `secure_tcp` ("DoS") the alternative tables apply, in which client
//! packets alone cannot reach ESTABLISHED.
//!
//! The tables below are the spec's, written row = event, column = current
//! state, exactly as printed there (so a reviewer can diff them by eye).

/// A TCP connection state; the numeric values are the kernel's (they go on
/// the wire in sync messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// No packet seen yet (only before the first transition).
    None = 0,
    /// ESTABLISHED.
    Established = 1,
    /// SYN_SENT.
    SynSent = 2,
    /// SYN_RECV.
    SynRecv = 3,
    /// FIN_WAIT.
    FinWait = 4,
    /// TIME_WAIT.
    TimeWait = 5,
    /// CLOSE.
    Close = 6,
    /// CLOSE_WAIT.
    CloseWait = 7,
    /// LAST_ACK.
    LastAck = 8,
    /// LISTEN.
    Listen = 9,
    /// SYNACK.
    SynAck = 10,
}

/// Number of TCP states (the kernel's `IP_VS_TCP_S_LAST`).
pub const TCP_STATE_COUNT: usize = 11;

impl TcpState {
    /// All states, in numeric order.
    pub const ALL: [TcpState; TCP_STATE_COUNT] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state with kernel number `n`, if there is one.
    pub fn from_u8(n: u8) -> Option<TcpState> {
        Self::ALL.get(n as usize).copied()
    }

    /// The kernel's name, as `ipvsadm -Lnc` and `/proc/net/ip_vs_conn` print it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a conn in this state counts in the dest's `activeconns`
    /// (spec §2.4: ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK; current kernels).
    pub fn is_active(self) -> bool {
        matches!(self, TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck)
    }
}

/// Default idle timeouts in seconds, indexed by state (`tcp_timeouts[]`).
pub const DEFAULT_TCP_TIMEOUTS: [u32; TCP_STATE_COUNT] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

/// Default UDP timeout in seconds (`udp_timeouts[IP_VS_UDP_S_NORMAL]`).
pub const DEFAULT_UDP_TIMEOUT: u32 = 300;

/// Timeout of a conn between its creation and its first transition
/// (`ip_vs_conn_new()` sets 3 s).
pub const INITIAL_TIMEOUT: u32 = 3;

/// Which table a packet's transition uses; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client → server.
    Input,
    /// Server → client.
    Output,
    /// Client → server while replies have not been seen (`NOOUTPUT`).
    InputOnly,
}

/// TCP header flag bits as they sit in the flags byte (offset 13).
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH (ignored by IPVS).
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The event a segment stands for; the discriminant is the table row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// SYN set (and RST not).
    Syn = 0,
    /// FIN set (and neither RST nor SYN).
    Fin = 1,
    /// ACK set (and none of RST, SYN, FIN).
    Ack = 2,
    /// RST set.
    Rst = 3,
}

/// The event of a segment with TCP flags `f`, by IPVS's priority
/// (RST > SYN > FIN > ACK); `None` when none of the four is set.
pub fn event_of(f: u8) -> Option<Event> {
    if f & flags::RST != 0 {
        Some(Event::Rst)
    } else if f & flags::SYN != 0 {
        Some(Event::Syn)
    } else if f & flags::FIN != 0 {
        Some(Event::Fin)
    } else if f & flags::ACK != 0 {
        Some(Event::Ack)
    } else {
        None
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI, SynAck as SA,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// One direction's table: `[event][current state] -> next state`.
type Table = [[TcpState; TCP_STATE_COUNT]; 4];

// Columns:            NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
const INPUT: Table = [
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];
const OUTPUT: Table = [
    /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const INPUT_ONLY: Table = [
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

// secure_tcp tables: the normal ones with the differences listed in §2.3.
const SECURE_INPUT: Table = [
    /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
    /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
    /* ack */ [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];
const SECURE_OUTPUT: Table = [
    /* syn */ [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
    /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const SECURE_INPUT_ONLY: Table = [
    /* syn */ [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
    /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// The next state of a conn in `state` that sees a segment with TCP flags
/// `tcp_flags` in direction `dir` (already adjusted for `NOOUTPUT`).
pub fn next_state(state: TcpState, dir: Direction, tcp_flags: u8, secure: bool) -> TcpState {
    let Some(ev) = event_of(tcp_flags) else {
        return TcpState::Close;
    };
    let table = match (dir, secure) {
        (Direction::Input, false) => &INPUT,
        (Direction::Output, false) => &OUTPUT,
        (Direction::InputOnly, false) => &INPUT_ONLY,
        (Direction::Input, true) => &SECURE_INPUT,
        (Direction::Output, true) => &SECURE_OUTPUT,
        (Direction::InputOnly, true) => &SECURE_INPUT_ONLY,
    };
    table[ev as usize][state as usize]
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;
    use TcpState::None as NO;

    fn run(dir_flags: &[(Direction, u8)], secure: bool) -> Vec<TcpState> {
        let mut s = TcpState::None;
        dir_flags
            .iter()
            .map(|&(d, f)| {
                s = next_state(s, d, f, secure);
                s
            })
            .collect()
    }

    #[test]
    fn event_priority_rst_syn_fin_ack() {
        assert_eq!(event_of(RST | SYN | FIN | ACK), Some(Event::Rst));
        assert_eq!(event_of(SYN | FIN | ACK), Some(Event::Syn));
        assert_eq!(event_of(FIN | ACK | PSH), Some(Event::Fin));
        assert_eq!(event_of(ACK | PSH), Some(Event::Ack));
        assert_eq!(event_of(PSH), None);
        assert_eq!(event_of(0), None);
        // No flag: CLOSE whatever the state and table.
        for s in TcpState::ALL {
            for d in [Direction::Input, Direction::Output, Direction::InputOnly] {
                assert_eq!(next_state(s, d, PSH, false), TcpState::Close);
                assert_eq!(next_state(s, d, 0, true), TcpState::Close);
            }
        }
    }

    #[test]
    fn typical_nat_flow_of_the_spec() {
        use Direction::*;
        let got = run(
            &[(Input, SYN), (Output, SYN | ACK), (Input, ACK), (Input, FIN | ACK), (Output, FIN | ACK), (Input, ACK)],
            false,
        );
        assert_eq!(got, vec![SR, SR, ES, CW, TW, TW]);
    }

    #[test]
    fn typical_dr_flow_of_the_spec() {
        use Direction::*;
        let got = run(
            &[(InputOnly, SYN), (InputOnly, ACK), (InputOnly, ACK | PSH), (InputOnly, FIN | ACK), (InputOnly, ACK)],
            false,
        );
        assert_eq!(got, vec![SR, ES, ES, FW, FW]);
        assert_eq!(next_state(ES, InputOnly, RST, false), CL);
    }

    #[test]
    fn secure_tables_differ_exactly_where_the_spec_says() {
        use Direction::*;
        let mut diffs = Vec::new();
        for d in [Input, Output, InputOnly] {
            for (row, f) in [(0, SYN), (1, FIN), (2, ACK), (3, RST)] {
                for s in TcpState::ALL {
                    let a = next_state(s, d, f, false);
                    let b = next_state(s, d, f, true);
                    if a != b {
                        diffs.push((d, row, s, b));
                    }
                }
            }
        }
        let want = vec![
            (Input, 0, SA, SA),
            (Input, 1, SA, SA),
            (Input, 2, SR, SR),
            (Input, 2, SA, SA),
            (Input, 3, SA, CL),
            (Output, 0, SR, SA),
            (Output, 0, SA, SA),
            (InputOnly, 0, NO, SA),
            (InputOnly, 0, FW, SA),
            (InputOnly, 0, TW, SA),
            (InputOnly, 0, CL, SA),
            (InputOnly, 0, CW, SA),
            (InputOnly, 0, LA, SA),
            (InputOnly, 0, LI, SA),
            (InputOnly, 0, SA, SA),
        ];
        assert_eq!(diffs, want);
        // Effect: with NAT the path to ESTABLISHED needs the server.
        let got = run(&[(Input, SYN), (Output, SYN | ACK), (Input, ACK), (Output, ACK)], true);
        assert_eq!(got, vec![SR, SA, SA, ES]);
    }

    #[test]
    fn spot_checks_against_the_printed_tables() {
        use Direction::*;
        // A few cells read off the spec by hand, one per table and event.
        assert_eq!(next_state(SR, Input, RST, false), SR);
        assert_eq!(next_state(LA, Input, ACK, false), CL);
        assert_eq!(next_state(LI, Output, ACK, false), ES);
        assert_eq!(next_state(TW, Output, RST, false), TW);
        assert_eq!(next_state(CW, Output, FIN, false), TW);
        assert_eq!(next_state(SA, InputOnly, RST, false), CL);
        assert_eq!(next_state(ES, InputOnly, FIN, false), FW);
        assert_eq!(next_state(NO, Output, SYN, false), SS);
        assert_eq!(next_state(NO, Input, ACK, false), ES); // sloppy_tcp path
    }

    #[test]
    fn names_numbers_and_activity() {
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            assert_eq!(TcpState::from_u8(i as u8), Some(*s));
        }
        assert_eq!(TcpState::from_u8(11), None);
        assert_eq!(TcpState::SynAck.name(), "SYNACK");
        let active: Vec<_> = TcpState::ALL.iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, vec![&ES, &SS, &SR, &SA]);
        assert_eq!(DEFAULT_TCP_TIMEOUTS[ES as usize], 900);
        assert_eq!(DEFAULT_TCP_TIMEOUTS[CL as usize], 10);
    }
}
