//! Pcap replay: captured packets in, through a [`Switch`], packets out.
//!
//! Inputs are pcap or pcapng files (Ethernet link type), one or more per
//! ingress port. The packets of all inputs are merged by capture time into
//! one stream; equal timestamps go in port order, then input order, and
//! packets of one input keep their file order (a capture whose clock steps
//! back is replayed as recorded, not re-sorted). Each packet runs through
//! [`Switch::process`] with its capture time in nanoseconds, and each output
//! packet goes to an [`OutputSink`] with the timestamp of the input packet
//! that caused it.
//!
//! Output files are classic pcap with nanosecond timestamps and the
//! Ethernet link type, which tcpdump, tshark and scapy all read.
//!
//! Everything streams: one packet per input is held in memory at a time,
//! so a replay's memory does not grow with the capture.

pub mod decode;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pcap_file::pcap::{PcapHeader, PcapReader, PcapWriter, RawPcapPacket};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::switch::{OutPacket, Outcome, Switch, HINT_DISTANCE};

/// One captured packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// The bytes, starting with the Ethernet header.
    pub data: Vec<u8>,
}

/// Why a capture could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file, or a damaged one.
    #[error("{path}: {message}")]
    Format { path: String, message: String },
    /// A link type other than Ethernet.
    #[error("{path}: link type {linktype} is not Ethernet; only Ethernet captures can be replayed")]
    LinkType { path: String, linktype: String },
}

impl CaptureError {
    fn format(path: &str, message: impl std::fmt::Display) -> CaptureError {
        CaptureError::Format { path: path.to_string(), message: message.to_string() }
    }

    /// A pcap-file error in words: its own Display drops the I/O cause and
    /// calls a file that ends mid-record "Error reading bytes".
    fn pcap(path: &str, e: pcap_file::PcapError) -> CaptureError {
        use pcap_file::PcapError as E;
        match e {
            E::IncompleteBuffer => CaptureError::format(path, "the file ends in the middle of a record"),
            E::IoError(source) if source.kind() == std::io::ErrorKind::UnexpectedEof => {
                CaptureError::format(path, "the file ends in the middle of a record")
            }
            E::IoError(source) => CaptureError::Io { path: path.to_string(), source },
            other => CaptureError::format(path, other),
        }
    }
}

/// Magic numbers of classic pcap: micro- and nanosecond, either byte order.
const PCAP_MAGICS: [[u8; 4]; 4] =
    [[0xd4, 0xc3, 0xb2, 0xa1], [0xa1, 0xb2, 0xc3, 0xd4], [0x4d, 0x3c, 0xb2, 0xa1], [0xa1, 0xb2, 0x3c, 0x4d]];

/// Magic number of a pcapng Section Header Block.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Reads the packets of a pcap or pcapng file one at a time.
pub struct CaptureReader {
    path: String,
    inner: ReaderKind,
}

enum ReaderKind {
    Pcap { reader: PcapReader<BufReader<File>>, nanos: bool },
    PcapNg { reader: PcapNgReader<BufReader<File>>, last_ts: u64 },
}

impl CaptureReader {
    /// Opens a capture, telling pcap from pcapng by the magic number.
    pub fn open(path: &Path) -> Result<CaptureReader, CaptureError> {
        let name = path.display().to_string();
        let io = |source| CaptureError::Io { path: name.clone(), source };
        let mut magic = [0u8; 4];
        {
            use std::io::Read;
            let mut f = File::open(path).map_err(io)?;
            f.read_exact(&mut magic).map_err(|_| CaptureError::format(&name, "too short for a pcap file"))?;
        }
        let file = BufReader::new(File::open(path).map_err(io)?);
        let inner = if magic == PCAPNG_MAGIC {
            let reader = PcapNgReader::new(file).map_err(|e| CaptureError::pcap(&name, e))?;
            ReaderKind::PcapNg { reader, last_ts: 0 }
        } else if PCAP_MAGICS.contains(&magic) {
            let reader = PcapReader::new(file).map_err(|e| CaptureError::pcap(&name, e))?;
            let header = reader.header();
            if header.datalink != DataLink::ETHERNET {
                return Err(CaptureError::LinkType { path: name, linktype: format!("{:?}", header.datalink) });
            }
            ReaderKind::Pcap { reader, nanos: header.ts_resolution == TsResolution::NanoSecond }
        } else {
            let m = decode::hex(&magic);
            return Err(CaptureError::format(&name, format!("not a pcap or pcapng file (starts with 0x{m})")));
        };
        Ok(CaptureReader { path: name, inner })
    }

    /// The file's name as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The next packet, `None` at the end of the file.
    pub fn next_frame(&mut self) -> Option<Result<Frame, CaptureError>> {
        match &mut self.inner {
            ReaderKind::Pcap { reader, nanos } => {
                let raw = match reader.next_raw_packet()? {
                    Ok(raw) => raw,
                    Err(e) => return Some(Err(CaptureError::pcap(&self.path, e))),
                };
                Some(Ok(pcap_frame(&raw, *nanos)))
            }
            ReaderKind::PcapNg { reader, last_ts } => loop {
                // Owned, so the reader can be asked about interfaces below.
                let block = match reader.next_block()? {
                    Ok(b) => b.into_owned(),
                    Err(e) => return Some(Err(CaptureError::pcap(&self.path, e))),
                };
                // pcap-file hands over the raw timestamp units as if they
                // were nanoseconds; the interface says what they really are.
                let (interface, raw_ts, data) = match block {
                    Block::EnhancedPacket(p) => (p.interface_id, p.timestamp.as_nanos() as u64, p.data.into_owned()),
                    Block::Packet(p) => (u32::from(p.interface_id), p.timestamp, p.data.into_owned()),
                    // A Simple Packet Block has no timestamp: it keeps the previous one.
                    Block::SimplePacket(p) => {
                        let Some(idb) = reader.interfaces().first() else {
                            return Some(Err(CaptureError::format(&self.path, "packet before any interface")));
                        };
                        if let Err(e) = check_ng_linktype(&self.path, idb.linktype) {
                            return Some(Err(e));
                        }
                        return Some(Ok(Frame { ts_ns: *last_ts, data: p.data.into_owned() }));
                    }
                    _ => continue,
                };
                let Some(idb) = reader.interfaces().get(interface as usize) else {
                    return Some(Err(CaptureError::format(
                        &self.path,
                        format!("packet on unknown interface {interface}"),
                    )));
                };
                if let Err(e) = check_ng_linktype(&self.path, idb.linktype) {
                    return Some(Err(e));
                }
                let ts_ns = ng_timestamp_ns(raw_ts, &idb.options);
                *last_ts = ts_ns;
                return Some(Ok(Frame { ts_ns, data }));
            },
        }
    }
}

impl Iterator for CaptureReader {
    type Item = Result<Frame, CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame()
    }
}

fn pcap_frame(raw: &RawPcapPacket<'_>, nanos: bool) -> Frame {
    let frac = if nanos { u64::from(raw.ts_frac) } else { u64::from(raw.ts_frac) * 1000 };
    Frame { ts_ns: u64::from(raw.ts_sec) * 1_000_000_000 + frac, data: raw.data.to_vec() }
}

fn check_ng_linktype(path: &str, linktype: DataLink) -> Result<(), CaptureError> {
    if linktype == DataLink::ETHERNET {
        Ok(())
    } else {
        Err(CaptureError::LinkType { path: path.to_string(), linktype: format!("{linktype:?}") })
    }
}

/// Converts a pcapng timestamp in the interface's units (`if_tsresol`,
/// microseconds when absent; `if_tsoffset` seconds added) to nanoseconds.
fn ng_timestamp_ns(raw: u64, options: &[InterfaceDescriptionOption<'_>]) -> u64 {
    let mut resol = 6u8;
    let mut offset_s = 0u64;
    for o in options {
        match o {
            InterfaceDescriptionOption::IfTsResol(r) => resol = *r,
            InterfaceDescriptionOption::IfTsOffset(s) => offset_s = *s,
            _ => {}
        }
    }
    // Units per second: 10^r, or 2^r when the top bit is set.
    let per_second: u128 = if resol & 0x80 == 0 {
        10u128.checked_pow(u32::from(resol)).unwrap_or(u128::MAX)
    } else {
        1u128.checked_shl(u32::from(resol & 0x7f)).unwrap_or(u128::MAX)
    };
    let ns = u128::from(raw) * 1_000_000_000 / per_second.max(1);
    (ns + u128::from(offset_s) * 1_000_000_000).min(u128::from(u64::MAX)) as u64
}

/// Reads a whole capture into memory.
pub fn read_capture(path: &Path) -> Result<Vec<Frame>, CaptureError> {
    CaptureReader::open(path)?.collect()
}

/// Writes Ethernet frames to a pcap file (nanosecond timestamps).
pub struct PcapSink {
    path: String,
    writer: PcapWriter<BufWriter<File>>,
}

/// Snapshot length written in pcap headers: tcpdump's default, far above
/// any frame the switch makes.
const SNAPLEN: u32 = 262_144;

impl PcapSink {
    /// Creates (or truncates) `path` and writes the pcap file header.
    pub fn create(path: &Path) -> Result<PcapSink, CaptureError> {
        let name = path.display().to_string();
        let file = File::create(path).map_err(|source| CaptureError::Io { path: name.clone(), source })?;
        let header = PcapHeader {
            snaplen: SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Little,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header).map_err(|e| CaptureError::pcap(&name, e))?;
        Ok(PcapSink { path: name, writer })
    }

    /// Appends one frame.
    pub fn write(&mut self, ts_ns: u64, data: &[u8]) -> Result<(), CaptureError> {
        let ts_sec = u32::try_from(ts_ns / 1_000_000_000)
            .map_err(|_| CaptureError::format(&self.path, "timestamp after 2106 does not fit a pcap file"))?;
        let frac = (ts_ns % 1_000_000_000) as u32;
        let len = data.len() as u32;
        let raw = RawPcapPacket { ts_sec, ts_frac: frac, incl_len: len, orig_len: len, data: data.into() };
        self.writer.write_raw_packet(&raw).map_err(|e| CaptureError::pcap(&self.path, e))?;
        Ok(())
    }

    /// Flushes the file to disk.
    pub fn finish(self) -> Result<(), CaptureError> {
        let path = self.path;
        self.writer.into_writer().flush().map_err(|source| CaptureError::Io { path, source })
    }
}

/// Writes frames to a new pcap file.
pub fn write_pcap(path: &Path, frames: &[Frame]) -> Result<(), CaptureError> {
    let mut sink = PcapSink::create(path)?;
    for f in frames {
        sink.write(f.ts_ns, &f.data)?;
    }
    sink.finish()
}

/// Where output packets go, per egress port.
pub trait OutputSink {
    /// Takes one output packet; returns `false` when the port has nowhere to
    /// send it (the packet is counted as discarded).
    fn send(&mut self, port: u16, ts_ns: u64, data: &[u8]) -> Result<bool, CaptureError>;
}

/// Keeps every output packet in memory, by port (for tests and the golden runner).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Output frames per egress port, in the order they were sent.
    pub ports: BTreeMap<u16, Vec<Frame>>,
}

impl OutputSink for MemorySink {
    fn send(&mut self, port: u16, ts_ns: u64, data: &[u8]) -> Result<bool, CaptureError> {
        self.ports.entry(port).or_default().push(Frame { ts_ns, data: data.to_vec() });
        Ok(true)
    }
}

/// Writes the packets of some ports to pcap files and discards the rest.
pub struct PcapFiles {
    files: BTreeMap<u16, PcapSink>,
}

impl PcapFiles {
    /// Creates one pcap file per `(port, path)`.
    pub fn create(outputs: &[(u16, PathBuf)]) -> Result<PcapFiles, CaptureError> {
        let mut files = BTreeMap::new();
        for (port, path) in outputs {
            files.insert(*port, PcapSink::create(path)?);
        }
        Ok(PcapFiles { files })
    }

    /// Flushes every file.
    pub fn finish(self) -> Result<(), CaptureError> {
        self.files.into_values().try_for_each(PcapSink::finish)
    }
}

impl OutputSink for PcapFiles {
    fn send(&mut self, port: u16, ts_ns: u64, data: &[u8]) -> Result<bool, CaptureError> {
        match self.files.get_mut(&port) {
            Some(sink) => sink.write(ts_ns, data).map(|()| true),
            None => Ok(false),
        }
    }
}

/// An input of a replay: the packets arriving on one port.
pub struct Input {
    /// The ingress port.
    pub port: u16,
    /// Where the packets come from (a [`CaptureReader`], or frames in memory).
    pub frames: Box<dyn Iterator<Item = Result<Frame, CaptureError>>>,
}

impl Input {
    /// Packets read from a capture file.
    pub fn file(port: u16, path: &Path) -> Result<Input, CaptureError> {
        Ok(Input { port, frames: Box::new(CaptureReader::open(path)?) })
    }

    /// Packets already in memory.
    pub fn frames(port: u16, frames: Vec<Frame>) -> Input {
        Input { port, frames: Box::new(frames.into_iter().map(Ok)) }
    }
}

/// How a replay reports while it runs.
#[derive(Default)]
pub struct ReplayOptions<'a> {
    /// Print a packet count to stderr now and then (the CLI sets this only
    /// when stderr is a terminal).
    pub progress: bool,
    /// Where to print each packet's trace lines (the switch must have been
    /// created with tracing on), each packet's block headed by
    /// `[packet N port P len L time T]`.
    pub trace: Option<&'a mut dyn Write>,
}

/// What a replay did, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayResult {
    /// Packets read, per ingress port.
    pub packets_in: BTreeMap<u16, u64>,
    /// Packets the switch dropped (its report says why).
    pub dropped: u64,
    /// Output packets delivered to a sink, per egress port.
    pub delivered: BTreeMap<u16, u64>,
    /// Output packets on ports without a sink, per egress port.
    pub discarded: BTreeMap<u16, u64>,
    /// Wall-clock time the replay took.
    pub elapsed: Duration,
}

impl ReplayResult {
    /// Total packets read.
    pub fn total_in(&self) -> u64 {
        self.packets_in.values().sum()
    }

    /// Total output packets, delivered or not.
    pub fn total_out(&self) -> u64 {
        self.delivered.values().sum::<u64>() + self.discarded.values().sum::<u64>()
    }

    /// A few lines for the end of `p4lite run`: packets read, written (to
    /// the file `files` names for the port) and discarded (to ports that
    /// had no output file).
    pub fn summary(&self, files: &BTreeMap<u16, String>) -> String {
        let mut s = format!(
            "replayed {} packets in {:.3} s: {} dropped, {} output packets\n",
            self.total_in(),
            self.elapsed.as_secs_f64(),
            self.dropped,
            self.total_out()
        );
        let mut ports: Vec<u16> = self.delivered.keys().chain(files.keys()).copied().collect();
        ports.sort_unstable();
        ports.dedup();
        for port in &ports {
            let n = self.delivered.get(port).copied().unwrap_or(0);
            match files.get(port) {
                Some(f) => s.push_str(&format!("  port {port}: {n} packets written to {f}\n")),
                None => s.push_str(&format!("  port {port}: {n} packets delivered\n")),
            }
        }
        for (port, n) in &self.discarded {
            s.push_str(&format!("  port {port}: {n} packets discarded (no --out for this port)\n"));
        }
        s
    }
}

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading an input or writing an output failed.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Writing the trace failed (e.g. a closed pipe).
    #[error("writing the trace: {0}")]
    Trace(#[source] std::io::Error),
}

/// One input's next packet, waiting its turn in the merge.
struct Head {
    frame: Frame,
    port: u16,
    input: usize,
}

/// The packets of several inputs as one stream ordered by timestamp, then
/// port, then input; each input's packets stay in file order.
pub struct Merge {
    inputs: Vec<Input>,
    /// At most one packet per input: with a handful of inputs a linear scan
    /// for the earliest beats a heap.
    heads: Vec<Head>,
    started: bool,
}

impl Merge {
    /// Merges `inputs` (read lazily).
    pub fn new(inputs: Vec<Input>) -> Merge {
        Merge { heads: Vec::with_capacity(inputs.len()), inputs, started: false }
    }
}

impl Iterator for Merge {
    /// `(ingress port, packet)`.
    type Item = Result<(u16, Frame), CaptureError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.started {
            self.started = true;
            for (index, src) in self.inputs.iter_mut().enumerate() {
                match src.frames.next() {
                    Some(Ok(frame)) => self.heads.push(Head { frame, port: src.port, input: index }),
                    Some(Err(e)) => return Some(Err(e)),
                    None => {}
                }
            }
        }
        let heads = &mut self.heads;
        let pick = (0..heads.len()).min_by_key(|&i| (heads[i].frame.ts_ns, heads[i].port, heads[i].input))?;
        let (port, input) = (heads[pick].port, heads[pick].input);
        let head = match self.inputs[input].frames.next() {
            Some(Ok(frame)) => std::mem::replace(&mut heads[pick], Head { frame, port, input }),
            Some(Err(e)) => return Some(Err(e)),
            None => heads.swap_remove(pick),
        };
        Some(Ok((head.port, head.frame)))
    }
}

/// Replays `inputs` through `switch`, merged by timestamp ([`Merge`]), and
/// hands every output packet to `sink`.
pub fn replay(
    switch: &mut Switch,
    inputs: Vec<Input>,
    sink: &mut dyn OutputSink,
    options: ReplayOptions<'_>,
) -> Result<ReplayResult, ReplayError> {
    let started = Instant::now();
    let mut result = ReplayResult::default();
    for i in &inputs {
        result.packets_in.entry(i.port).or_insert(0);
    }
    let mut trace = options.trace;
    let mut progress = Progress::new(options.progress);
    let mut out: Vec<OutPacket> = Vec::new();
    let mut number = 0u64;
    // Frames read ahead of the one being processed: each gets the switch's
    // hint pass as it enters ([`Switch::hint`]); reading stops at the first
    // error, which is returned when its turn comes.
    let mut merge = Merge::new(inputs);
    let mut ahead = VecDeque::with_capacity(HINT_DISTANCE);
    let mut more = true;
    loop {
        while more && ahead.len() < HINT_DISTANCE {
            match merge.next() {
                Some(Ok((port, frame))) => {
                    switch.hint(&frame.data);
                    ahead.push_back(Ok((port, frame)));
                }
                Some(Err(e)) => {
                    ahead.push_back(Err(e));
                    more = false;
                }
                None => more = false,
            }
        }
        let Some(item) = ahead.pop_front() else { break };
        let (port, frame) = item?;
        number += 1;
        *result.packets_in.entry(port).or_insert(0) += 1;
        out.clear();
        let outcome = switch.process(port, &frame.data, frame.ts_ns, &mut out);
        if matches!(outcome, Outcome::Dropped(_)) {
            result.dropped += 1;
        }
        if let Some(w) = trace.as_deref_mut() {
            write_trace(w, number, port, &frame, switch.take_trace()).map_err(ReplayError::Trace)?;
        }
        for p in &out {
            let counts =
                if sink.send(p.port, frame.ts_ns, &p.data)? { &mut result.delivered } else { &mut result.discarded };
            *counts.entry(p.port).or_insert(0) += 1;
        }
        progress.tick(number);
    }
    progress.finish(number);
    result.elapsed = started.elapsed();
    Ok(result)
}

/// `[packet N port P len L time T]` and the packet's trace lines, indented.
pub fn write_trace(
    w: &mut dyn Write,
    number: u64,
    port: u16,
    frame: &Frame,
    lines: Vec<String>,
) -> std::io::Result<()> {
    let ts = frame.ts_ns;
    writeln!(
        w,
        "[packet {number} port {port} len {} time {}.{:09}]",
        frame.data.len(),
        ts / 1_000_000_000,
        ts % 1_000_000_000
    )?;
    for line in lines {
        writeln!(w, "    {line}")?;
    }
    Ok(())
}

/// A packet counter on stderr, redrawn at most a few times a second, that
/// appears only once a replay has run for a second (short replays stay quiet).
struct Progress {
    enabled: bool,
    started: Instant,
    last: Instant,
    shown: bool,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        let now = Instant::now();
        Progress { enabled, started: now, last: now, shown: false }
    }

    fn tick(&mut self, packets: u64) {
        // Reading the clock per packet would cost more than some pipelines.
        if !self.enabled || !packets.is_multiple_of(1024) {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.started) < Duration::from_secs(1)
            || now.duration_since(self.last) < Duration::from_millis(250)
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let rate = packets as f64 / now.duration_since(self.started).as_secs_f64();
        eprint!("\r{packets} packets replayed ({:.0} packets/s)   ", rate);
    }

    fn finish(&mut self, packets: u64) {
        if self.shown {
            eprintln!("\r{packets} packets replayed{:20}", "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("p4lite-replay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn pcap_round_trips_with_nanoseconds() {
        let frames = vec![
            Frame { ts_ns: 1_700_000_000_123_456_789, data: vec![1; 60] },
            Frame { ts_ns: 1_700_000_001_000_000_001, data: vec![2; 14] },
        ];
        let path = tmp("round.pcap");
        write_pcap(&path, &frames).unwrap();
        assert_eq!(read_capture(&path).unwrap(), frames);
    }

    #[test]
    fn reads_microsecond_pcap_and_pcapng() {
        // A microsecond pcap (what tcpdump writes) with one 14-byte frame at 1.5 s.
        let mut us = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        us.extend([1, 0, 0, 0, 0x20, 0xa1, 0x07, 0, 14, 0, 0, 0, 14, 0, 0, 0]);
        us.extend([0xaa; 14]);
        let path = tmp("us.pcap");
        std::fs::write(&path, &us).unwrap();
        assert_eq!(read_capture(&path).unwrap(), vec![Frame { ts_ns: 1_500_000_000, data: vec![0xaa; 14] }]);

        // The same frame in pcapng: SHB, IDB (Ethernet, default microsecond
        // resolution), EPB with timestamp 1_500_000 us.
        let mut ng = Vec::new();
        ng.extend([0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0]);
        ng.extend([0xff; 8]);
        ng.extend([28, 0, 0, 0]);
        ng.extend([1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0]);
        ng.extend([6, 0, 0, 0, 48, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ng.extend(1_500_000u32.to_le_bytes());
        ng.extend([14, 0, 0, 0, 14, 0, 0, 0]);
        ng.extend([0xaa; 14]);
        ng.extend([0, 0, 48, 0, 0, 0]);
        let path = tmp("us.pcapng");
        std::fs::write(&path, &ng).unwrap();
        assert_eq!(read_capture(&path).unwrap(), vec![Frame { ts_ns: 1_500_000_000, data: vec![0xaa; 14] }]);
    }

    #[test]
    fn damaged_captures_do_not_panic() {
        // Real files from the golden cases, with bytes flipped and cut at
        // pseudo-random places (a fixed LCG: the test is deterministic).
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pcaps");
        let originals = [root.join("captures/http_in_1.pcapng"), root.join("captures/ping_in_1.pcap")];
        let path = tmp("damaged.cap");
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for original in &originals {
            let bytes = std::fs::read(original).expect("the golden captures are checked in");
            for _ in 0..300 {
                let mut b = bytes.clone();
                for _ in 0..1 + next() % 4 {
                    let i = next() % b.len();
                    b[i] = next() as u8;
                }
                b.truncate(b.len() - next() % 64);
                std::fs::write(&path, &b).unwrap();
                // Errors are fine; panics are not.
                if let Ok(r) = CaptureReader::open(&path) {
                    let _ = r.take(1000).count();
                }
            }
        }
    }

    #[test]
    fn pcapng_resolution_options() {
        let nano = [InterfaceDescriptionOption::IfTsResol(9)];
        assert_eq!(ng_timestamp_ns(7, &nano), 7);
        let binary = [InterfaceDescriptionOption::IfTsResol(0x80 | 10)];
        assert_eq!(ng_timestamp_ns(1024, &binary), 1_000_000_000);
        let offset = [InterfaceDescriptionOption::IfTsOffset(2)];
        assert_eq!(ng_timestamp_ns(1, &offset), 2_000_001_000);
    }

    #[test]
    fn merge_orders_by_time_then_port_then_input() {
        let f = |ts: u64, tag: u8| Frame { ts_ns: ts, data: vec![tag] };
        let inputs = vec![
            Input::frames(2, vec![f(10, b'a'), f(30, b'b'), f(20, b'c')]),
            Input::frames(1, vec![f(10, b'd'), f(30, b'e')]),
            Input::frames(1, vec![f(10, b'f')]),
        ];
        let order: Vec<(u16, u8)> = Merge::new(inputs).map(|r| r.map(|(p, fr)| (p, fr.data[0])).unwrap()).collect();
        // Ties at 10: port 1 before port 2, and input 1 before input 2 on
        // port 1; input 0 keeps its file order (30 then 20).
        assert_eq!(order, [(1, b'd'), (1, b'f'), (2, b'a'), (1, b'e'), (2, b'b'), (2, b'c')]);
    }

    #[test]
    fn trace_header_names_packet_port_length_and_time() {
        let mut out = Vec::new();
        let frame = Frame { ts_ns: 1_000_000_002, data: vec![0; 60] };
        write_trace(&mut out, 3, 1, &frame, vec!["Parser state 'start'".into()]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[packet 3 port 1 len 60 time 1.000000002]\n    Parser state 'start'\n"
        );
    }

    /// Replays the golden case `case` (its `lb.conf` and `in_PORT.pcap`
    /// inputs, as `p4lite run` does) through `program` on `backend`, with
    /// the trace written to `trace` if given; the switch afterwards and
    /// what it sent.
    fn lb_case_replay(
        program: &str,
        case: &str,
        backend: crate::switch::Backend,
        trace: Option<&mut dyn Write>,
    ) -> (crate::switch::Switch, MemorySink) {
        use crate::switch::tests::compile;
        use crate::switch::{Switch, SwitchOptions};
        let dir = format!("{}/../pcaps/{case}", env!("CARGO_MANIFEST_DIR"));
        let options = SwitchOptions { backend, trace: trace.is_some() };
        let mut sw = Switch::new(compile(program), options).unwrap();
        let conf = std::fs::read_to_string(format!("{dir}/lb.conf")).unwrap();
        crate::ipvs::director::load_into_switch(&mut sw, &conf, "lb.conf").unwrap();
        let inputs = [1, 2].map(|p| Input::file(p, Path::new(&format!("{dir}/in_{p}.pcap"))).unwrap());
        let mut sink = MemorySink::default();
        replay(&mut sw, inputs.into(), &mut sink, ReplayOptions { progress: false, trace }).unwrap();
        (sw, sink)
    }

    /// The trace of a replay of `lb_nat`'s golden inputs through `lb.p4lite`
    /// with its `lb.conf` on `backend`.
    fn lb_nat_trace(backend: crate::switch::Backend) -> String {
        let mut trace = Vec::new();
        lb_case_replay(&crate::switch::tests::example("lb"), "lb_nat", backend, Some(&mut trace));
        String::from_utf8(trace).unwrap()
    }

    #[test]
    fn replay_traces_only_each_packets_own_processing() {
        // The JIT switch runs the hint pass on packets ahead of the one it
        // processes; none of that may show in a packet's trace, which must
        // read as the interpreter's (which runs no hint pass).
        let (jit, interp) = (lb_nat_trace(crate::switch::Backend::Jit), lb_nat_trace(crate::switch::Backend::Interp));
        assert!(jit.contains("LbParser.conns.prefetch"), "the packets' own prefetch calls are traced");
        if let Some((i, (j, k))) = jit.lines().zip(interp.lines()).enumerate().find(|(_, (j, k))| j != k) {
            panic!("traces differ at line {}:\n  jit:    {j}\n  interp: {k}", i + 1);
        }
        assert_eq!(jit.lines().count(), interp.lines().count());
    }

    /// What `program` sends, per port, when it replays the golden case
    /// `case` on `backend`, and the director's `-Lnc` and `-Ln --stats`
    /// listings afterwards.
    fn lb_case_run(program: &str, case: &str, backend: crate::switch::Backend) -> (Vec<(u16, Vec<u8>)>, Vec<String>) {
        let (sw, sink) = lb_case_replay(program, case, backend, None);
        let sent = sink.ports.into_iter().flat_map(|(p, fs)| fs.into_iter().map(move |f| (p, f.data))).collect();
        let director = sw.externs().director().expect("lb.conf made a director");
        (sent, director.list("-Lnc\n-Ln --stats").unwrap())
    }

    #[test]
    fn a_program_writing_std_timestamp_does_not_move_the_director_clock() {
        // The IPVS externs run on the packet's arrival time, not on what the
        // program leaves in `std.timestamp`: lb.p4lite that moves it 1000 s
        // ahead for the real servers' packets (port 2) expires the same
        // connections (lb_expiry: gaps of 60 to 900 s), sends the same
        // packets and lists the same statistics. (When the externs read the
        // slot, the first reply moved the director's clock 1000 s on and
        // every client connection expired.)
        use crate::switch::tests::example;
        let original = example("lb");
        let hook = "rx_packets.count((bit<32>) std.ingress_port);";
        assert!(original.contains(hook));
        let jump = "if (std.ingress_port == 2) { std.timestamp = std.timestamp + 1_000_000_000_000; }";
        let ahead = original.replacen(hook, &format!("{hook}\n{jump}"), 1);
        for backend in [crate::switch::Backend::Jit, crate::switch::Backend::Interp] {
            let want = lb_case_run(&original, "lb_expiry", backend);
            assert!(want.0.len() > 10, "{backend:?}: lb_expiry forwards packets");
            assert_eq!(lb_case_run(&ahead, "lb_expiry", backend), want, "{backend:?}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let path = tmp("garbage.pcap");
        std::fs::write(&path, b"this is not a capture file at all").unwrap();
        assert!(CaptureReader::open(&path).is_err());
        std::fs::write(&path, b"ab").unwrap();
        assert!(CaptureReader::open(&path).is_err());
        assert!(CaptureReader::open(Path::new("/nonexistent/x.pcap")).is_err());
        // A valid file cut in the middle of its last record.
        write_pcap(&path, &[Frame { ts_ns: 1, data: vec![7; 60] }]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
        let err = read_capture(&path).unwrap_err().to_string();
        assert!(err.contains("ends in the middle of a record"), "{err}");
    }
}
