//! The wire format of IPVS connection synchronisation (spec section 5.2 and
//! 5.3; Linux `net/netfilter/ipvs/ip_vs_sync.c`): packing connections into
//! master messages ([`MessageBuilder`]) and unpacking a received message the
//! way a backup does ([`decode`]).
//!
//! Only IPv4 connections are represented ([`SyncConn`]). Two wire versions
//! exist:
//! - **v1** (the default `sync_version = 1`): an 8-byte header, then records
//!   of 36 bytes (IPv4) plus type-length-value options, each record starting
//!   on a 4-byte boundary. Everything is big-endian.
//! - **v0** (legacy): a 4-byte header, then fixed 24-byte records, followed by
//!   24 bytes of sequence data when the record's flags ask for it.
//!
//! Decoding never panics and never reads past the end of its input: every
//! field read is bounds-checked, and a message that runs short is reported
//! through [`MessageError`] rather than read beyond.
//!
//! Decisions where the spec is silent (each is repeated on the item it
//! concerns):
//! - The v0 sequence options are written and read **little-endian**: the
//!   kernel copies its in-memory (host order) structure onto the wire, and
//!   the masters one meets in practice (x86-64, arm64) are little-endian.
//! - The spec's receiver checks (ONE_PACKET, NO_CPORT with TEMPLATE, the
//!   flag mask, template states `< 2`) are applied to v0 records as well as
//!   v1 records.
//! - p4lite has no SCTP and no persistence engines: SCTP conns and records
//!   carrying PE options are skipped (templates of any protocol are kept, as
//!   the kernel does not look at a template's protocol).
//! - IPv6 records are validated like IPv4 ones (a kernel built with IPv6 does
//!   so, and drops the rest of the message when one is malformed), then
//!   skipped.

/// `IP_VS_CONN_F_*` connection flag bits, as they travel in a sync record.
pub mod conn_flag {
    /// The forwarding method (0 masquerade, 1 local, 2 tunnel, 3 direct routing, 4 bypass).
    pub const FWD_MASK: u32 = 0x0007;
    /// The conn was created from a sync message (a backup sets it on every received record).
    pub const SYNC: u32 = 0x0020;
    /// Linked in the master's hash table; meaningless on the wire, so masters strip it.
    pub const HASHED: u32 = 0x0040;
    /// No server → client packet seen yet.
    pub const NOOUTPUT: u32 = 0x0080;
    /// Counted as an inactive conn of its dest.
    pub const INACTIVE: u32 = 0x0100;
    /// Outgoing TCP sequence numbers are adjusted.
    pub const OUT_SEQ: u32 = 0x0200;
    /// Incoming TCP sequence numbers are adjusted.
    pub const IN_SEQ: u32 = 0x0400;
    /// Either sequence-adjustment bit: the record carries sequence data.
    pub const SEQ_MASK: u32 = 0x0600;
    /// The client port is not known yet (FTP data conns).
    pub const NO_CPORT: u32 = 0x0800;
    /// A persistence template.
    pub const TEMPLATE: u32 = 0x1000;
    /// One-packet scheduling: such conns are never stored, hence never synced.
    pub const ONE_PACKET: u32 = 0x2000;
    /// The bits a backup keeps from a received record (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
    /// The bits a backup updates on a conn it already has (`IP_VS_CONN_F_BACKUP_UPD_MASK`).
    pub const BACKUP_UPD_MASK: u32 = INACTIVE | SEQ_MASK;
}

/// The default multicast group, 224.0.0.81, as a host-order `u32`.
pub const SYNC_GROUP: u32 = 0xe000_0051;
/// The default UDP port; sync thread `i` uses `SYNC_PORT + i`.
pub const SYNC_PORT: u16 = 8848;
/// A master's default maximum message length: a 1500-byte MTU minus the IPv4 and UDP headers.
pub const DEFAULT_MASTER_MAXLEN: u16 = 1500 - 28;

/// Length of the v1 message header.
pub const V1_HEADER_LEN: usize = 8;
/// Length of the v0 message header.
pub const V0_HEADER_LEN: usize = 4;
/// Length of the fixed part of a v1 IPv4 record (type 0), options excluded.
pub const V1_RECORD_V4_LEN: usize = 36;
/// Length of the fixed part of a v1 IPv6 record (type 1), options excluded.
pub const V1_RECORD_V6_LEN: usize = 72;
/// Length of the sequence data: two triples of `u32` (`init_seq`, `delta`, `previous_delta`).
pub const SEQ_DATA_LEN: usize = 24;
/// Length of a v1 SEQ_DATA option: type and length bytes, then [`SEQ_DATA_LEN`] bytes.
pub const SEQ_OPTION_LEN: usize = 2 + SEQ_DATA_LEN;
/// Length of a v0 record without sequence data.
pub const V0_RECORD_LEN: usize = 24;
/// Length of a v0 record with sequence data.
pub const V0_RECORD_SEQ_LEN: usize = V0_RECORD_LEN + SEQ_DATA_LEN;
/// Most records in one message: `nr_conns` is a single byte.
pub const MAX_CONNS_PER_MESSAGE: usize = 255;

/// v1 record option type: sequence data.
pub const OPT_SEQ_DATA: u8 = 1;
/// v1 record option type: persistence-engine data.
pub const OPT_PE_DATA: u8 = 2;
/// v1 record option type: persistence-engine name.
pub const OPT_PE_NAME: u8 = 3;
/// v1 record option type bit: the option is optional, a receiver that does not know it steps over it.
pub const OPT_F_PARAM: u8 = 0x40;
/// Longest persistence-engine name a receiver accepts (`IP_VS_PENAME_MAXLEN`).
pub const PE_NAME_MAXLEN: usize = 16;

/// Number of TCP states (`IP_VS_TCP_S_LAST`): a TCP record's state must be below it.
pub const TCP_STATES: u16 = 11;
/// Number of UDP states: UDP has the single state 0.
pub const UDP_STATES: u16 = 1;
/// Number of template states (NONE, ASSURED): a template's state must be below it.
pub const TEMPLATE_STATES: u16 = 2;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// Record type bit 0: the record is IPv6.
const TYPE_F_INET6: u8 = 0x01;
/// `ver_size`: the record version sits in the top four bits, the length in the low twelve.
const VER_SHIFT: u32 = 12;
const SIZE_MASK: u16 = 0x0fff;
/// The header `version` byte of a v1 message.
const PROTO_VERSION_1: u8 = 1;

/// One connection (or persistence template) as a sync record carries it. IPv4 only.
///
/// Ports and addresses are in host order: `Ipv4Addr::from(c.caddr)` gives the
/// client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConn {
    /// IP protocol: 6 (TCP), 17 (UDP), 132 (SCTP), or 0 (`IPPROTO_IP`) for fwmark templates.
    pub proto: u8,
    /// [`conn_flag`] bits as on the wire (v0 carries only the low 16 bits).
    pub flags: u32,
    /// Protocol state (TCP: the `IP_VS_TCP_S_*` number; templates: 0 NONE, 1 ASSURED).
    pub state: u16,
    /// Client port.
    pub cport: u16,
    /// Virtual (service) port.
    pub vport: u16,
    /// Destination (real server) port.
    pub dport: u16,
    /// Firewall mark of a fwmark service (v1 only; decoding v0 gives 0).
    pub fwmark: u32,
    /// Remaining timeout in seconds (v1 only); decoding v0 gives 0, meaning
    /// "use the timeout of the conn's state".
    pub timeout_s: u32,
    /// Client address.
    pub caddr: u32,
    /// Virtual address.
    pub vaddr: u32,
    /// Destination (real server) address.
    pub daddr: u32,
    /// The sequence data: the SEQ_DATA option of a v1 record, the 24 trailing
    /// bytes of a v0 record. p4lite does no sequence adjustment; it is carried only.
    pub seq: Option<SeqData>,
}

/// TCP sequence adjustment state of a conn: for each direction,
/// `[init_seq, delta, previous_delta]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeqData {
    /// Client → server direction.
    pub in_seq: [u32; 3],
    /// Server → client direction.
    pub out_seq: [u32; 3],
}

/// The wire version a master writes (the `sync_version` sysctl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Legacy format: 4-byte header, 24-byte records, no fwmark, timeout or IPv6.
    V0,
    /// Current format: 8-byte header, 36-byte IPv4 records with options.
    V1,
}

/// Packs records into messages the way the kernel's master does.
///
/// - A message is at most `maxlen` bytes, except that a record always fits
///   into a fresh message: a message's capacity is
///   `max(header + its first record, maxlen)`.
/// - A record that does not fit (padding included) closes the current
///   message and starts the next one.
/// - v1 records start on a 4-byte boundary: zero padding is written before a
///   record when needed, never after the last one.
/// - A message holds at most [`MAX_CONNS_PER_MESSAGE`] records; the push of
///   the 256th closes it (the kernel has no such check and would wrap the
///   one-byte count).
/// - The builder encodes whatever it is given: deciding whether a conn is
///   synced at all (ONE_PACKET conns, the state and packet-count rules of
///   spec 5.4) is the caller's job. v0 holds IPv4 records only, which is all
///   a [`SyncConn`] can describe.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    version: Version,
    syncid: u8,
    maxlen: u16,
    /// The open message, header included; empty when no message is open.
    buf: Vec<u8>,
    /// Capacity of the open message.
    cap: usize,
    /// Records in the open message.
    nr: usize,
}

impl MessageBuilder {
    /// A builder writing `version` messages stamped with `syncid`, each at
    /// most `maxlen` bytes (see the type's doc for the one exception).
    pub fn new(version: Version, syncid: u8, maxlen: u16) -> MessageBuilder {
        MessageBuilder { version, syncid, maxlen, buf: Vec::new(), cap: 0, nr: 0 }
    }

    /// Appends one record; returns the message that had to be closed to make
    /// room for it, if any.
    ///
    /// v1: the record is written with `flags & !HASHED`, its `ver_size` is
    /// the record length (options included, padding excluded), and it carries
    /// the SEQ_DATA option when `flags` has a [`conn_flag::SEQ_MASK`] bit and
    /// `seq` is `Some` (one without the other writes no option).
    ///
    /// v0: 24 bytes, plus 24 bytes of sequence data whenever `flags` has a
    /// SEQ_MASK bit (zeros when `seq` is `None`: the record's length follows
    /// from its flags, so the data cannot be left out). The flags are written
    /// as their low 16 bits, without HASHED; fwmark and timeout are not
    /// carried. The sequence data is little-endian (the kernel copies its
    /// host-order structure).
    pub fn push(&mut self, c: &SyncConn) -> Option<Vec<u8>> {
        let len = match self.version {
            Version::V1 => v1_record_len(c),
            Version::V0 => v0_record_len(c),
        };
        let mut closed = None;
        if self.nr > 0 {
            let needed = self.buf.len() + self.padding() + len;
            if self.nr >= MAX_CONNS_PER_MESSAGE || needed > self.cap {
                closed = self.take();
            }
        }
        if self.nr == 0 {
            self.open(len);
        }
        let pad = self.padding();
        self.buf.resize(self.buf.len() + pad, 0);
        match self.version {
            Version::V1 => write_v1_record(&mut self.buf, c),
            Version::V0 => write_v0_record(&mut self.buf, c),
        }
        self.nr += 1;
        closed
    }

    /// Closes and returns the current message if it holds any record.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        if self.nr == 0 {
            return None;
        }
        let mut msg = std::mem::take(&mut self.buf);
        // Both fit: the length is at most max(header + record, u16 maxlen)
        // and the count at most MAX_CONNS_PER_MESSAGE.
        let size = (msg.len() as u16).to_be_bytes();
        let nr = self.nr as u8;
        msg[2..4].copy_from_slice(&size);
        match self.version {
            Version::V1 => msg[4] = nr,
            Version::V0 => msg[0] = nr,
        }
        self.nr = 0;
        self.cap = 0;
        Some(msg)
    }

    /// Records in the current (open) message.
    pub fn pending(&self) -> usize {
        self.nr
    }

    /// Starts a message whose first record is `first_len` bytes long.
    fn open(&mut self, first_len: usize) {
        self.buf.clear();
        let header_len = match self.version {
            Version::V1 => {
                // reserved, syncid, size, nr_conns, version, spare
                self.buf.extend_from_slice(&[0, self.syncid, 0, 0, 0, PROTO_VERSION_1, 0, 0]);
                V1_HEADER_LEN
            }
            Version::V0 => {
                // nr_conns, syncid, size
                self.buf.extend_from_slice(&[0, self.syncid, 0, 0]);
                V0_HEADER_LEN
            }
        };
        self.cap = (header_len + first_len).max(usize::from(self.maxlen));
    }

    /// Zero bytes needed before the next record (v1 aligns records to 4 bytes).
    fn padding(&self) -> usize {
        match self.version {
            Version::V1 => self.buf.len().wrapping_neg() & 3,
            Version::V0 => 0,
        }
    }
}

/// Whether a v1 record for `c` carries the SEQ_DATA option.
fn v1_has_seq(c: &SyncConn) -> bool {
    c.flags & conn_flag::SEQ_MASK != 0 && c.seq.is_some()
}

fn v1_record_len(c: &SyncConn) -> usize {
    V1_RECORD_V4_LEN + if v1_has_seq(c) { SEQ_OPTION_LEN } else { 0 }
}

fn v0_record_len(c: &SyncConn) -> usize {
    if c.flags & conn_flag::SEQ_MASK != 0 {
        V0_RECORD_SEQ_LEN
    } else {
        V0_RECORD_LEN
    }
}

fn write_v1_record(out: &mut Vec<u8>, c: &SyncConn) {
    let len = v1_record_len(c) as u16;
    out.push(0); // type: IPv4
    out.push(c.proto);
    out.extend_from_slice(&(len & SIZE_MASK).to_be_bytes()); // record version 0
    out.extend_from_slice(&(c.flags & !conn_flag::HASHED).to_be_bytes());
    out.extend_from_slice(&c.state.to_be_bytes());
    out.extend_from_slice(&c.cport.to_be_bytes());
    out.extend_from_slice(&c.vport.to_be_bytes());
    out.extend_from_slice(&c.dport.to_be_bytes());
    out.extend_from_slice(&c.fwmark.to_be_bytes());
    out.extend_from_slice(&c.timeout_s.to_be_bytes());
    out.extend_from_slice(&c.caddr.to_be_bytes());
    out.extend_from_slice(&c.vaddr.to_be_bytes());
    out.extend_from_slice(&c.daddr.to_be_bytes());
    if let (true, Some(seq)) = (v1_has_seq(c), c.seq) {
        out.push(OPT_SEQ_DATA);
        out.push(SEQ_DATA_LEN as u8);
        for v in seq.in_seq.iter().chain(seq.out_seq.iter()) {
            out.extend_from_slice(&v.to_be_bytes());
        }
    }
}

fn write_v0_record(out: &mut Vec<u8>, c: &SyncConn) {
    out.push(0); // reserved
    out.push(c.proto);
    out.extend_from_slice(&c.cport.to_be_bytes());
    out.extend_from_slice(&c.vport.to_be_bytes());
    out.extend_from_slice(&c.dport.to_be_bytes());
    out.extend_from_slice(&c.caddr.to_be_bytes());
    out.extend_from_slice(&c.vaddr.to_be_bytes());
    out.extend_from_slice(&c.daddr.to_be_bytes());
    out.extend_from_slice(&((c.flags & !conn_flag::HASHED) as u16).to_be_bytes());
    out.extend_from_slice(&c.state.to_be_bytes());
    if c.flags & conn_flag::SEQ_MASK != 0 {
        let seq = c.seq.unwrap_or_default();
        for v in seq.in_seq.iter().chain(seq.out_seq.iter()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

/// Why a whole message, or the rest of it, was dropped.
///
/// [`decode`] returns the first two as `Err`; the others end record
/// processing and appear in [`Decoded::error`], after the records already
/// decoded (a kernel backup has applied those by then).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// Shorter than the 4 bytes every header has.
    TooShort,
    /// The header's `size` differs from the received length.
    SizeMismatch,
    /// Too few bytes left for the next record's fixed part (v1: 36 bytes,
    /// even for an IPv6 record; v0: 24 bytes).
    RecordTooSmall,
    /// The record extends past the message (v1: its `ver_size` length; v0:
    /// its sequence data).
    RecordPastEnd,
    /// v1 record version (top 4 bits of `ver_size`) is not 0.
    UnknownRecordVersion,
    /// A malformed v1 record (the kernel's negative return codes): a type
    /// other than IPv4/IPv6, a length shorter than the fixed part, an option
    /// that is truncated or has length 0, SEQ_DATA not 24 bytes long, a
    /// PE_NAME longer than 16 bytes, or an option present twice.
    BadRecord,
}

/// Why one record was skipped (the rest of the message is still processed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordSkip {
    /// An IPv6 record (type bit 0): p4lite syncs IPv4 only.
    Ipv6,
    /// An option type without the [`OPT_F_PARAM`] bit that this decoder does not know.
    UnknownMandatoryOption,
    /// Not a template and neither TCP nor UDP (SCTP included: p4lite has no SCTP).
    UnsupportedProtocol,
    /// The state is out of range for the protocol, or a template's state is 2 or more.
    BadState,
    /// A PE_DATA or PE_NAME option is present: p4lite has no persistence engines.
    PersistenceEngine,
    /// The ONE_PACKET flag is set (such conns are never synced).
    OnePacket,
    /// NO_CPORT and TEMPLATE are both set.
    NoCportTemplate,
}

/// The outcome of decoding one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The message's syncid.
    pub syncid: u8,
    /// The wire version the message was read as.
    pub version: Version,
    /// The accepted records, in message order. Their flags are the received
    /// flags masked with [`conn_flag::BACKUP_MASK`], plus [`conn_flag::SYNC`].
    pub conns: Vec<SyncConn>,
    /// The skipped records, in message order.
    pub skipped: Vec<RecordSkip>,
    /// Why processing stopped before `nr_conns` records, if it did.
    pub error: Option<MessageError>,
}

/// Decodes one received message as the kernel's backup does
/// (`ip_vs_process_message()`).
///
/// In order:
/// 1. Fewer than 4 bytes → `Err(TooShort)`; `size` ≠ length → `Err(SizeMismatch)`.
/// 2. `syncid_filter` is the backup's syncid: 0 accepts every message,
///    otherwise a message with another syncid is ignored → `Ok(None)`.
/// 3. The message is v1 if it is at least 8 bytes long with `version == 1`,
///    `reserved == 0` and `spare == 0`; otherwise it is read as v0 (a
///    message of 4 to 7 bytes cannot hold a v1 header and is v0).
/// 4. Up to `nr_conns` records are read. Framing or format errors stop the
///    loop ([`Decoded::error`]); a record that is well formed but unusable is
///    skipped ([`Decoded::skipped`]) and the next one is read (v1: at the
///    record's `ver_size` length rounded up to 4). Bytes after the last
///    counted record are ignored.
///
/// Checks on a well-formed record, in this order: (v1) an unknown mandatory
/// option, an IPv6 record; ONE_PACKET; NO_CPORT with TEMPLATE; then, on the
/// flags masked with [`conn_flag::BACKUP_MASK`] (SYNC added): a template
/// needs state < 2, any other record needs TCP (state < 11) or UDP (state
/// 0); (v1) a PE_DATA or PE_NAME option. The same checks apply to v0 records.
///
/// v0 records give `fwmark` 0 and `timeout_s` 0; their `seq` is `Some`
/// exactly when their flags have a SEQ_MASK bit (read little-endian, see
/// [`MessageBuilder::push`]). A v1 record's `seq` is `Some` when it carries
/// a SEQ_DATA option, whatever its flags. Option types are matched with the
/// [`OPT_F_PARAM`] bit cleared, as the kernel does (0x41 is SEQ_DATA).
pub fn decode(msg: &[u8], syncid_filter: u8) -> Result<Option<Decoded>, MessageError> {
    if msg.len() < V0_HEADER_LEN {
        return Err(MessageError::TooShort);
    }
    let size = be16(msg, 2).ok_or(MessageError::TooShort)?;
    if usize::from(size) != msg.len() {
        return Err(MessageError::SizeMismatch);
    }
    let syncid = byte(msg, 1).ok_or(MessageError::TooShort)?;
    if syncid_filter != 0 && syncid != syncid_filter {
        return Ok(None);
    }
    let is_v1 = match msg.get(..V1_HEADER_LEN) {
        Some(&[reserved, _, _, _, _, version, spare0, spare1]) => {
            version == PROTO_VERSION_1 && reserved == 0 && spare0 == 0 && spare1 == 0
        }
        _ => false,
    };
    let mut d = Decoded {
        syncid,
        version: if is_v1 { Version::V1 } else { Version::V0 },
        conns: Vec::new(),
        skipped: Vec::new(),
        error: None,
    };
    d.error = if is_v1 { decode_v1_records(msg, &mut d) } else { decode_v0_records(msg, &mut d) };
    Ok(Some(d))
}

/// Reads the records of a v1 message into `d`; returns the error that stopped it, if any.
fn decode_v1_records(msg: &[u8], d: &mut Decoded) -> Option<MessageError> {
    let nr = byte(msg, 4).unwrap_or(0);
    let mut pos = V1_HEADER_LEN;
    for _ in 0..nr {
        let Some(fixed) = msg.get(pos..pos + V1_RECORD_V4_LEN) else {
            return Some(MessageError::RecordTooSmall);
        };
        let ver_size = be16(fixed, 2).unwrap_or(0);
        let size = usize::from(ver_size & SIZE_MASK);
        let Some(rec) = msg.get(pos..pos + size) else {
            return Some(MessageError::RecordPastEnd);
        };
        if u32::from(ver_size) >> VER_SHIFT != 0 {
            return Some(MessageError::UnknownRecordVersion);
        }
        match decode_v1_record(rec) {
            Err(e) => return Some(e),
            Ok(Ok(c)) => d.conns.push(c),
            Ok(Err(skip)) => d.skipped.push(skip),
        }
        pos += (size + 3) & !3;
    }
    None
}

/// Options found in one v1 record.
#[derive(Default)]
struct Options {
    seq: Option<SeqData>,
    pe_data: bool,
    pe_name: bool,
}

/// Decodes one v1 record, `rec` being exactly its `ver_size` bytes.
/// `Err` drops the rest of the message, `Ok(Err)` skips this record.
fn decode_v1_record(rec: &[u8]) -> Result<Result<SyncConn, RecordSkip>, MessageError> {
    let rtype = byte(rec, 0).ok_or(MessageError::BadRecord)?;
    let fixed = if rtype & TYPE_F_INET6 != 0 {
        V1_RECORD_V6_LEN
    } else if rtype == 0 {
        V1_RECORD_V4_LEN
    } else {
        return Err(MessageError::BadRecord);
    };
    let Some(mut rest) = rec.get(fixed..) else {
        return Err(MessageError::BadRecord);
    };

    let mut opts = Options::default();
    while !rest.is_empty() {
        let [ptype, plen, tail @ ..] = rest else {
            return Err(MessageError::BadRecord);
        };
        let plen = usize::from(*plen);
        let (Some(data), Some(after)) = (tail.get(..plen), tail.get(plen..)) else {
            return Err(MessageError::BadRecord);
        };
        if plen == 0 {
            return Err(MessageError::BadRecord);
        }
        match ptype & !OPT_F_PARAM {
            OPT_SEQ_DATA => {
                if plen != SEQ_DATA_LEN || opts.seq.is_some() {
                    return Err(MessageError::BadRecord);
                }
                opts.seq = Some(read_seq(data, u32::from_be_bytes).ok_or(MessageError::BadRecord)?);
            }
            OPT_PE_DATA => {
                // The length byte cannot exceed the kernel's 255-byte limit.
                if opts.pe_data {
                    return Err(MessageError::BadRecord);
                }
                opts.pe_data = true;
            }
            OPT_PE_NAME => {
                if plen > PE_NAME_MAXLEN || opts.pe_name {
                    return Err(MessageError::BadRecord);
                }
                opts.pe_name = true;
            }
            _ if ptype & OPT_F_PARAM == 0 => return Ok(Err(RecordSkip::UnknownMandatoryOption)),
            _ => {}
        }
        rest = after;
    }

    if fixed == V1_RECORD_V6_LEN {
        return Ok(Err(RecordSkip::Ipv6));
    }
    let field32 = |at| be32(rec, at).ok_or(MessageError::BadRecord);
    let field16 = |at| be16(rec, at).ok_or(MessageError::BadRecord);
    let proto = byte(rec, 1).ok_or(MessageError::BadRecord)?;
    let raw_flags = field32(4)?;
    let state = field16(8)?;
    let flags = match check_record(raw_flags, proto, state) {
        Ok(flags) => flags,
        Err(skip) => return Ok(Err(skip)),
    };
    if opts.pe_data || opts.pe_name {
        return Ok(Err(RecordSkip::PersistenceEngine));
    }
    Ok(Ok(SyncConn {
        proto,
        flags,
        state,
        cport: field16(10)?,
        vport: field16(12)?,
        dport: field16(14)?,
        fwmark: field32(16)?,
        timeout_s: field32(20)?,
        caddr: field32(24)?,
        vaddr: field32(28)?,
        daddr: field32(32)?,
        seq: opts.seq,
    }))
}

/// Reads the records of a v0 message into `d`; returns the error that stopped it, if any.
fn decode_v0_records(msg: &[u8], d: &mut Decoded) -> Option<MessageError> {
    let nr = byte(msg, 0).unwrap_or(0);
    let mut pos = V0_HEADER_LEN;
    for _ in 0..nr {
        let Some(mut c) = msg.get(pos..pos + V0_RECORD_LEN).and_then(read_v0_fixed) else {
            return Some(MessageError::RecordTooSmall);
        };
        pos += V0_RECORD_LEN;
        // `c.flags` is still the raw 16-bit field here.
        if c.flags & conn_flag::SEQ_MASK != 0 {
            let Some(seq) = msg.get(pos..pos + SEQ_DATA_LEN).and_then(|b| read_seq(b, u32::from_le_bytes)) else {
                return Some(MessageError::RecordPastEnd);
            };
            c.seq = Some(seq);
            pos += SEQ_DATA_LEN;
        }
        match check_record(c.flags, c.proto, c.state) {
            Err(skip) => d.skipped.push(skip),
            Ok(flags) => d.conns.push(SyncConn { flags, ..c }),
        }
    }
    None
}

/// The 24 fixed bytes of a v0 record, flags unchecked, no sequence data.
fn read_v0_fixed(rec: &[u8]) -> Option<SyncConn> {
    Some(SyncConn {
        proto: byte(rec, 1)?,
        flags: u32::from(be16(rec, 20)?),
        state: be16(rec, 22)?,
        cport: be16(rec, 2)?,
        vport: be16(rec, 4)?,
        dport: be16(rec, 6)?,
        fwmark: 0,
        timeout_s: 0,
        caddr: be32(rec, 8)?,
        vaddr: be32(rec, 12)?,
        daddr: be32(rec, 16)?,
        seq: None,
    })
}

/// The flag and state checks shared by v0 and v1 records; on success, the
/// flags a backup keeps (masked, SYNC added).
fn check_record(raw_flags: u32, proto: u8, state: u16) -> Result<u32, RecordSkip> {
    if raw_flags & conn_flag::ONE_PACKET != 0 {
        return Err(RecordSkip::OnePacket);
    }
    let no_cport_template = conn_flag::NO_CPORT | conn_flag::TEMPLATE;
    if raw_flags & no_cport_template == no_cport_template {
        return Err(RecordSkip::NoCportTemplate);
    }
    let flags = (raw_flags & conn_flag::BACKUP_MASK) | conn_flag::SYNC;
    let states = if flags & conn_flag::TEMPLATE != 0 {
        TEMPLATE_STATES
    } else {
        match proto {
            IPPROTO_TCP => TCP_STATES,
            IPPROTO_UDP => UDP_STATES,
            _ => return Err(RecordSkip::UnsupportedProtocol),
        }
    };
    if state >= states {
        return Err(RecordSkip::BadState);
    }
    Ok(flags)
}

/// Six `u32`s from 24 bytes, each converted by `conv`; `None` if `data` is shorter.
fn read_seq(data: &[u8], conv: fn([u8; 4]) -> u32) -> Option<SeqData> {
    let mut words = [0u32; 6];
    for (i, w) in words.iter_mut().enumerate() {
        *w = conv(data.get(4 * i..4 * i + 4)?.try_into().ok()?);
    }
    Some(SeqData { in_seq: [words[0], words[1], words[2]], out_seq: [words[3], words[4], words[5]] })
}

fn byte(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at.checked_add(2)?)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::conn_flag::*;
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn hex(s: &str) -> Vec<u8> {
        assert_eq!(s.len() % 2, 0, "odd hex length");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn rd16(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([b[at], b[at + 1]])
    }

    fn v26_conn() -> SyncConn {
        SyncConn {
            proto: 6,
            flags: 0x83,
            state: 1,
            cport: 40000,
            vport: 80,
            dport: 80,
            fwmark: 0,
            timeout_s: 900,
            caddr: ip("203.0.113.7"),
            vaddr: ip("198.51.100.10"),
            daddr: ip("10.1.1.21"),
            seq: None,
        }
    }

    /// A distinct, acceptable TCP conn per `i`.
    fn conn(i: u32) -> SyncConn {
        SyncConn {
            proto: 6,
            flags: 0x03 | INACTIVE,
            state: (i % 11) as u16,
            cport: 1024 + i as u16,
            vport: 80,
            dport: 8080,
            fwmark: i * 3,
            timeout_s: 60 + i,
            caddr: 0x0a00_0000 + i,
            vaddr: ip("198.51.100.10"),
            daddr: ip("10.1.1.21") + (i % 4),
            seq: None,
        }
    }

    fn seq_data(k: u32) -> SeqData {
        SeqData { in_seq: [0x0102_0304 ^ k, 5 + k, 0xffff_fffe - k], out_seq: [7 * k, 0x8000_0000 | k, 9] }
    }

    /// What a backup makes of a record it accepts.
    fn accepted(c: SyncConn) -> SyncConn {
        SyncConn { flags: (c.flags & BACKUP_MASK) | SYNC, ..c }
    }

    /// The 36-byte fixed part of a v1 IPv4 record, written by hand (raw flags, ver_size 36).
    fn fixed(c: &SyncConn) -> Vec<u8> {
        let mut r = vec![0, c.proto, 0, 36];
        r.extend_from_slice(&c.flags.to_be_bytes());
        for v in [c.state, c.cport, c.vport, c.dport] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        for v in [c.fwmark, c.timeout_s, c.caddr, c.vaddr, c.daddr] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        r
    }

    /// A 72-byte IPv6 record (type 1), ver_size 72.
    fn fixed_v6() -> Vec<u8> {
        let mut r = vec![1, 6, 0, 72, 0, 0, 0, 0x83, 0, 1];
        r.resize(72, 0x11);
        r
    }

    /// `rec` with `opts` appended and ver_size set to the new length.
    fn with_opts(mut rec: Vec<u8>, opts: &[u8]) -> Vec<u8> {
        rec.extend_from_slice(opts);
        let len = rec.len() as u16;
        rec[2..4].copy_from_slice(&len.to_be_bytes());
        rec
    }

    fn set_ver_size(mut rec: Vec<u8>, v: u16) -> Vec<u8> {
        rec[2..4].copy_from_slice(&v.to_be_bytes());
        rec
    }

    fn seq_opt(ptype: u8, s: SeqData) -> Vec<u8> {
        let mut o = vec![ptype, 24];
        for v in s.in_seq.iter().chain(s.out_seq.iter()) {
            o.extend_from_slice(&v.to_be_bytes());
        }
        o
    }

    /// A v1 message holding `recs` (4-byte aligned, zero padded), with `nr` as nr_conns.
    fn msg_v1(syncid: u8, nr: u8, recs: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![0, syncid, 0, 0, nr, 1, 0, 0];
        for (i, r) in recs.iter().enumerate() {
            if i > 0 {
                while m.len() % 4 != 0 {
                    m.push(0);
                }
            }
            m.extend_from_slice(r);
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    /// A v0 record written by hand (raw 16-bit flags).
    fn rec_v0(c: &SyncConn, flags: u16) -> Vec<u8> {
        let mut r = vec![0, c.proto];
        for v in [c.cport, c.vport, c.dport] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        for v in [c.caddr, c.vaddr, c.daddr] {
            r.extend_from_slice(&v.to_be_bytes());
        }
        r.extend_from_slice(&flags.to_be_bytes());
        r.extend_from_slice(&c.state.to_be_bytes());
        r
    }

    fn msg_v0(syncid: u8, nr: u8, recs: &[Vec<u8>]) -> Vec<u8> {
        let mut m = vec![nr, syncid, 0, 0];
        for r in recs {
            m.extend_from_slice(r);
        }
        let len = m.len() as u16;
        m[2..4].copy_from_slice(&len.to_be_bytes());
        m
    }

    fn dec(m: &[u8]) -> Decoded {
        decode(m, 0).expect("message-level error").expect("filtered out")
    }

    /// Decodes a v1 message of `recs` (nr_conns = their number).
    fn dec_v1(recs: &[Vec<u8>]) -> Decoded {
        let d = dec(&msg_v1(0, recs.len() as u8, recs));
        assert_eq!(d.version, Version::V1);
        d
    }

    // ---- encoding ----

    #[test]
    fn v26_byte_for_byte_and_back() {
        let want = hex(concat!(
            "0000002c01010000",
            "000600240000008300019c40005000500000000000000384cb007107c633640a0a010115"
        ));
        // The spec's "44 bytes" agrees with its hex and with the size field 0x002c.
        assert_eq!(want.len(), 44);
        let mut b = MessageBuilder::new(Version::V1, 0, DEFAULT_MASTER_MAXLEN);
        assert_eq!(b.push(&v26_conn()), None);
        assert_eq!(b.pending(), 1);
        assert_eq!(b.take().unwrap(), want);
        assert_eq!(b.pending(), 0);
        assert_eq!(b.take(), None);

        let d = dec(&want);
        assert_eq!((d.syncid, d.version, d.error), (0, Version::V1, None));
        assert!(d.skipped.is_empty());
        assert_eq!(d.conns, vec![SyncConn { flags: 0x83 | SYNC, ..v26_conn() }]);
        let c = d.conns[0];
        assert_eq!(Ipv4Addr::from(c.caddr), Ipv4Addr::new(203, 0, 113, 7));
        assert_eq!(Ipv4Addr::from(c.vaddr), Ipv4Addr::new(198, 51, 100, 10));
        assert_eq!(Ipv4Addr::from(c.daddr), Ipv4Addr::new(10, 1, 1, 21));
    }

    #[test]
    fn v1_master_strips_hashed_but_keeps_other_bits() {
        let c = SyncConn { flags: 0x0001_0000 | HASHED | ONE_PACKET | 0x83, ..v26_conn() };
        let mut b = MessageBuilder::new(Version::V1, 0, DEFAULT_MASTER_MAXLEN);
        b.push(&c);
        let m = b.take().unwrap();
        assert_eq!(m[12..16], (0x0001_0000u32 | ONE_PACKET | 0x83).to_be_bytes());
    }

    #[test]
    fn v1_records_are_aligned_with_zero_padding_before_them_only() {
        let a = SyncConn { flags: 0x02 | IN_SEQ, seq: Some(seq_data(1)), ..conn(1) };
        let b2 = conn(2);
        let c3 = SyncConn { flags: OUT_SEQ, seq: Some(seq_data(3)), ..conn(3) };
        let mut b = MessageBuilder::new(Version::V1, 9, DEFAULT_MASTER_MAXLEN);
        for c in [&a, &b2, &c3] {
            assert_eq!(b.push(c), None);
        }
        let m = b.take().unwrap();
        // 8 header, 62 (36 + SEQ_DATA), 2 padding, 36, then 62 unpadded.
        assert_eq!(m.len(), 8 + 62 + 2 + 36 + 62);
        assert_eq!(usize::from(rd16(&m, 2)), m.len());
        assert_eq!((m[0], m[1], m[4], m[5], m[6], m[7]), (0, 9, 3, 1, 0, 0));
        assert_eq!(rd16(&m, 8 + 2), 62);
        assert_eq!(m[8 + 36..8 + 38], [OPT_SEQ_DATA, 24]);
        assert_eq!(m[8 + 38..8 + 42], 0x0102_0305u32.to_be_bytes());
        assert_eq!(m[8 + 58..8 + 62], 9u32.to_be_bytes());
        assert_eq!(m[70..72], [0, 0]);
        assert_eq!((m[72], m[73], rd16(&m, 74)), (0, 6, 36));
        assert_eq!(rd16(&m, 108 + 2), 62);
        assert_eq!(m.len() % 4, 2, "the last record is not padded");

        let d = dec(&m);
        assert_eq!(d.error, None);
        assert_eq!(d.conns, vec![accepted(a), accepted(b2), accepted(c3)]);
    }

    #[test]
    fn v1_seq_option_needs_both_the_flag_and_the_data() {
        let no_flag = SyncConn { flags: 0x03, seq: Some(seq_data(4)), ..conn(4) };
        let no_data = SyncConn { flags: 0x03 | IN_SEQ, seq: None, ..conn(5) };
        let mut b = MessageBuilder::new(Version::V1, 0, DEFAULT_MASTER_MAXLEN);
        b.push(&no_flag);
        b.push(&no_data);
        let m = b.take().unwrap();
        assert_eq!(m.len(), 8 + 36 + 36);
        assert_eq!((rd16(&m, 10), rd16(&m, 46)), (36, 36));
        let d = dec(&m);
        assert_eq!(d.conns, vec![accepted(SyncConn { seq: None, ..no_flag }), accepted(no_data)]);
        assert_eq!(d.conns[1].flags & IN_SEQ, IN_SEQ);
    }

    #[test]
    fn builder_closes_a_message_when_the_next_record_does_not_fit() {
        // Exactly two plain records fit into 80 bytes.
        let mut b = MessageBuilder::new(Version::V1, 1, 80);
        assert_eq!(b.push(&conn(1)), None);
        assert_eq!(b.push(&conn(2)), None);
        assert_eq!(b.pending(), 2);
        let first = b.push(&conn(3)).expect("third record must close the message");
        assert_eq!(first.len(), 80);
        assert_eq!(dec(&first).conns, vec![accepted(conn(1)), accepted(conn(2))]);
        assert_eq!(b.pending(), 1);
        // 8 + 36 + 62 = 106 > 80: a record with SEQ_DATA closes the message.
        let s = SyncConn { flags: IN_SEQ, seq: Some(seq_data(7)), ..conn(4) };
        let second = b.push(&s).unwrap();
        assert_eq!(dec(&second).conns, vec![accepted(conn(3))]);
        let third = b.take().unwrap();
        assert_eq!(third.len(), 8 + 62);
        assert_eq!(dec(&third).conns, vec![accepted(s)]);

        // Padding counts: 8 + 62 + 2 + 36 = 108 does not fit into 107.
        let mut b = MessageBuilder::new(Version::V1, 1, 107);
        b.push(&s);
        assert!(b.push(&conn(5)).is_some());
        let mut b = MessageBuilder::new(Version::V1, 1, 108);
        b.push(&s);
        assert!(b.push(&conn(5)).is_none());
        assert_eq!(b.take().unwrap().len(), 108);

        // A maxlen below one record: one record per message, longer than maxlen.
        let mut b = MessageBuilder::new(Version::V1, 1, 20);
        assert_eq!(b.push(&conn(1)), None);
        let m = b.push(&conn(2)).unwrap();
        assert_eq!(m.len(), 44);
        assert_eq!(dec(&m).conns, vec![accepted(conn(1))]);
    }

    #[test]
    fn builder_randomized_packing_follows_the_kernel_rule() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for &maxlen in &[1u16, 60, 100, 200, 333, 512, 1472] {
            for version in [Version::V1, Version::V0] {
                let mut b = MessageBuilder::new(version, 4, maxlen);
                let mut pushed = Vec::new();
                let mut got = Vec::new();
                let mut expected_in_open = Vec::new();
                for i in 0..400u32 {
                    let mut c = conn(i);
                    if rng.below(3) == 0 {
                        c.flags |= IN_SEQ;
                        c.seq = Some(seq_data(i));
                    }
                    let (hdr, len) = match version {
                        Version::V1 => (V1_HEADER_LEN, if c.seq.is_some() { 62 } else { 36 }),
                        Version::V0 => (V0_HEADER_LEN, if c.seq.is_some() { 48 } else { 24 }),
                    };
                    if let Some(m) = b.push(&c) {
                        // Closed only because this record did not fit.
                        let pad = if version == Version::V1 { (4 - m.len() % 4) % 4 } else { 0 };
                        assert!(m.len() + pad + len > usize::from(maxlen), "closed too early");
                        let d = dec(&m);
                        assert_eq!(d.version, version);
                        assert_eq!(d.conns, expected_in_open, "a message holds exactly what was pushed into it");
                        if d.conns.len() > 1 {
                            assert!(m.len() <= usize::from(maxlen));
                        } else {
                            assert!(m.len() <= usize::from(maxlen).max(hdr + 62));
                        }
                        got.extend(d.conns);
                        expected_in_open.clear();
                    }
                    let mut want = accepted(c);
                    if version == Version::V0 {
                        want.fwmark = 0;
                        want.timeout_s = 0;
                    }
                    expected_in_open.push(want);
                    pushed.push(want);
                    assert_eq!(b.pending(), expected_in_open.len());
                }
                let last = b.take().unwrap();
                assert!(last.len() <= usize::from(maxlen).max(hdr_len(version) + 62));
                got.extend(dec(&last).conns);
                assert_eq!(got, pushed);
            }
        }
    }

    fn hdr_len(v: Version) -> usize {
        match v {
            Version::V1 => V1_HEADER_LEN,
            Version::V0 => V0_HEADER_LEN,
        }
    }

    #[test]
    fn a_message_holds_at_most_255_records() {
        for version in [Version::V0, Version::V1] {
            let mut b = MessageBuilder::new(version, 2, u16::MAX);
            for i in 0..255 {
                assert_eq!(b.push(&conn(i)), None, "{version:?} record {i}");
            }
            assert_eq!(b.pending(), 255);
            let m = b.push(&conn(255)).expect("the 256th record closes the message");
            let rec = if version == Version::V1 { 36 } else { 24 };
            assert_eq!(m.len(), hdr_len(version) + 255 * rec);
            let nr = if version == Version::V1 { m[4] } else { m[0] };
            assert_eq!(nr, 255);
            let d = dec(&m);
            assert_eq!((d.conns.len(), d.error), (255, None));
            assert_eq!(d.conns[254].cport, conn(254).cport);
            assert_eq!(b.pending(), 1);
            assert_eq!(dec(&b.take().unwrap()).conns[0].cport, conn(255).cport);
        }
    }

    #[test]
    fn v0_round_trip_and_layout() {
        let a = SyncConn { flags: 0x0001_0000 | HASHED | 0x83, fwmark: 7, timeout_s: 300, ..v26_conn() };
        let s = SyncConn { flags: IN_SEQ | OUT_SEQ | 0x02, seq: Some(seq_data(2)), ..conn(2) };
        let t = SyncConn { proto: 17, flags: TEMPLATE | 0x01, state: 1, cport: 0, ..conn(3) };
        let n = SyncConn { flags: OUT_SEQ, seq: None, ..conn(4) };
        let mut b = MessageBuilder::new(Version::V0, 3, DEFAULT_MASTER_MAXLEN);
        for c in [&a, &s, &t, &n] {
            assert_eq!(b.push(c), None);
        }
        let m = b.take().unwrap();
        assert_eq!(m.len(), 4 + 24 + 48 + 24 + 48);
        assert_eq!((m[0], m[1], usize::from(rd16(&m, 2))), (4, 3, m.len()));
        // First record: addresses and ports as V26, flags without HASHED and the high bits.
        assert_eq!(m[4..28], hex("0006_9c40_0050_0050_cb007107_c633640a_0a010115_0083_0001".replace('_', "").as_str()));
        // Sequence data follows the second record, little-endian.
        assert_eq!(m[28 + 24..28 + 28], 0x0102_0306u32.to_le_bytes());
        assert_eq!(m[28 + 44..28 + 48], 9u32.to_le_bytes());
        // The fourth record's flag asks for sequence data: 24 zero bytes.
        assert_eq!(m[m.len() - 24..], [0; 24]);

        let d = dec(&m);
        assert_eq!((d.syncid, d.version, d.error), (3, Version::V0, None));
        let v0 = |c: SyncConn| SyncConn { fwmark: 0, timeout_s: 0, ..accepted(c) };
        let n_back = SyncConn { seq: Some(SeqData::default()), ..v0(n) };
        assert_eq!(d.conns, vec![SyncConn { flags: 0x83 | SYNC, ..v0(a) }, v0(s), v0(t), n_back]);
    }

    // ---- message-level validation ----

    #[test]
    fn too_short_and_size_mismatch() {
        let mut b = MessageBuilder::new(Version::V1, 0, DEFAULT_MASTER_MAXLEN);
        b.push(&v26_conn());
        let m = b.take().unwrap();
        for n in 0..4 {
            assert_eq!(decode(&m[..n], 0), Err(MessageError::TooShort), "{n} bytes");
        }
        for n in 4..m.len() {
            assert_eq!(decode(&m[..n], 0), Err(MessageError::SizeMismatch), "{n} bytes");
        }
        let mut longer = m.clone();
        longer.push(0);
        assert_eq!(decode(&longer, 0), Err(MessageError::SizeMismatch));
        let mut wrong = m.clone();
        wrong[3] = 43;
        assert_eq!(decode(&wrong, 0), Err(MessageError::SizeMismatch));
        // The shortest valid message: an empty v0 header.
        let d = dec(&[0, 7, 0, 4]);
        assert_eq!((d.syncid, d.version, d.conns.len(), d.error), (7, Version::V0, 0, None));
    }

    #[test]
    fn syncid_filter() {
        let mut b = MessageBuilder::new(Version::V1, 6, DEFAULT_MASTER_MAXLEN);
        b.push(&v26_conn());
        let m = b.take().unwrap();
        assert_eq!(decode(&m, 0).unwrap().unwrap().syncid, 6);
        assert_eq!(decode(&m, 6).unwrap().unwrap().conns.len(), 1);
        assert_eq!(decode(&m, 5), Ok(None));
        let mut zero = m.clone();
        zero[1] = 0;
        assert_eq!(decode(&zero, 5), Ok(None));
        // The size check comes first.
        let mut longer = m.clone();
        longer.push(0);
        assert_eq!(decode(&longer, 5), Err(MessageError::SizeMismatch));
        // v0 carries its syncid in the same byte.
        let v0 = msg_v0(6, 0, &[]);
        assert_eq!(decode(&v0, 5), Ok(None));
        assert_eq!(decode(&v0, 6).unwrap().unwrap().version, Version::V0);
    }

    #[test]
    fn v1_header_needs_version_1_and_zero_reserved_and_spare() {
        let good = msg_v1(0, 1, &[fixed(&v26_conn())]);
        assert_eq!(dec(&good).version, Version::V1);
        for (at, v) in [(5, 2u8), (5, 0), (6, 1), (7, 1)] {
            let mut m = good.clone();
            m[at] = v;
            let d = dec(&m);
            // Read as v0, whose nr_conns is the (zero) reserved byte.
            assert_eq!((d.version, d.conns.len(), d.skipped.len(), d.error), (Version::V0, 0, 0, None), "{at}");
        }
        // reserved = 1 → v0 with one record made of bytes 4..28: protocol byte 5 (= 1)
        // is not TCP or UDP, flags (bytes 24..26) are 0.
        let mut m = good.clone();
        m[0] = 1;
        let d = dec(&m);
        assert_eq!((d.version, d.skipped.as_slice()), (Version::V0, &[RecordSkip::UnsupportedProtocol][..]));
    }

    #[test]
    fn record_framing_errors_drop_the_rest() {
        let c1 = fixed(&conn(1));
        // Record version nibble 1.
        let d = dec_v1(&[c1.clone(), set_ver_size(fixed(&conn(2)), 0x1024), fixed(&conn(3))]);
        assert_eq!((d.conns, d.error), (vec![accepted(conn(1))], Some(MessageError::UnknownRecordVersion)));
        // nr_conns says 2, one record present.
        let d = dec(&msg_v1(0, 2, std::slice::from_ref(&c1)));
        assert_eq!((d.conns.len(), d.error), (1, Some(MessageError::RecordTooSmall)));
        // Fewer than 36 bytes left for a record.
        let d = dec(&msg_v1(0, 2, &[c1.clone(), fixed(&conn(2))[..35].to_vec()]));
        assert_eq!((d.conns.len(), d.error), (1, Some(MessageError::RecordTooSmall)));
        // ver_size past the end.
        let d = dec_v1(&[c1.clone(), set_ver_size(fixed(&conn(2)), 40)]);
        assert_eq!((d.conns.len(), d.error), (1, Some(MessageError::RecordPastEnd)));
        // ver_size shorter than an IPv4 record.
        for size in [0, 20, 35] {
            let d = dec_v1(&[set_ver_size(fixed(&conn(2)), size), c1.clone()]);
            assert_eq!((d.conns.len(), d.error), (0, Some(MessageError::BadRecord)), "ver_size {size}");
        }
        // Record types: 2 and 0x80 are invalid, 3 has the IPv6 bit.
        for t in [2u8, 0x80] {
            let mut r = fixed(&conn(2));
            r[0] = t;
            let d = dec_v1(&[r, c1.clone()]);
            assert_eq!((d.conns.len(), d.error), (0, Some(MessageError::BadRecord)), "type {t}");
        }
        let mut v6 = fixed_v6();
        v6[0] = 3;
        let d = dec_v1(&[v6, c1.clone()]);
        assert_eq!((d.skipped, d.conns.len(), d.error), (vec![RecordSkip::Ipv6], 1, None));
        // Trailing bytes beyond nr_conns records are ignored.
        let mut m = msg_v1(0, 1, &[c1.clone(), c1.clone()]);
        m[4] = 1;
        assert_eq!(dec(&m).conns.len(), 1);
    }

    #[test]
    fn ipv6_record_is_skipped_and_the_next_one_read_at_its_ver_size() {
        // 72 + an optional 5-byte option = 77 bytes, then 3 bytes of padding.
        let v6 = with_opts(fixed_v6(), &[0x45, 3, 1, 2, 3]);
        assert_eq!(v6.len(), 77);
        let m = msg_v1(0, 2, &[v6, fixed(&conn(2))]);
        assert_eq!(m.len(), 8 + 80 + 36);
        let d = dec(&m);
        assert_eq!((d.skipped, d.conns, d.error), (vec![RecordSkip::Ipv6], vec![accepted(conn(2))], None));
        // An IPv6 record shorter than 72 bytes is malformed.
        let short = set_ver_size(fixed_v6()[..40].to_vec(), 40);
        let d = dec_v1(&[short, fixed(&conn(2))]);
        assert_eq!((d.conns.len(), d.error), (0, Some(MessageError::BadRecord)));
    }

    #[test]
    fn options() {
        let c = conn(1);
        let next = fixed(&conn(2));
        let skip_then_next = |d: Decoded, skip: RecordSkip| {
            assert_eq!((d.skipped, d.conns, d.error), (vec![skip], vec![accepted(conn(2))], None));
        };
        // Unknown mandatory option: this record skipped (even if a broken option follows), next read.
        skip_then_next(
            dec_v1(&[with_opts(fixed(&c), &[0x05, 2, 0xaa, 0xbb]), next.clone()]),
            RecordSkip::UnknownMandatoryOption,
        );
        skip_then_next(
            dec_v1(&[with_opts(fixed(&c), &[0x3f, 1, 0, 0x45, 0]), next.clone()]),
            RecordSkip::UnknownMandatoryOption,
        );
        // Unknown optional option: stepped over, the SEQ_DATA after it is read.
        let mut opts = vec![0x45, 3, 1, 2, 3];
        opts.extend(seq_opt(OPT_SEQ_DATA, seq_data(5)));
        let sc = SyncConn { flags: c.flags | IN_SEQ, ..c };
        let d = dec_v1(&[with_opts(fixed(&sc), &opts), next.clone()]);
        assert_eq!(d.error, None);
        assert_eq!(d.conns, vec![accepted(SyncConn { seq: Some(seq_data(5)), ..sc }), accepted(conn(2))]);
        // SEQ_DATA with the optional bit is still SEQ_DATA; it is carried whatever the flags say.
        let d = dec_v1(&[with_opts(fixed(&c), &seq_opt(OPT_SEQ_DATA | OPT_F_PARAM, seq_data(6)))]);
        assert_eq!(d.conns, vec![accepted(SyncConn { seq: Some(seq_data(6)), ..c })]);

        // Malformed options drop the rest of the message.
        let mut long_seq = seq_opt(OPT_SEQ_DATA, seq_data(1));
        long_seq[1] = 28;
        long_seq.extend([0; 4]);
        let mut twice = seq_opt(OPT_SEQ_DATA, seq_data(1));
        twice.extend(seq_opt(OPT_SEQ_DATA, seq_data(2)));
        let bad: Vec<(&str, Vec<u8>)> = vec![
            ("zero length", vec![0x45, 0]),
            ("zero length mandatory", vec![OPT_PE_DATA, 0, 0, 0]),
            ("lone type byte", vec![0x45]),
            ("data past end", vec![0x45, 5, 1, 2]),
            (
                "short SEQ_DATA",
                seq_opt(OPT_SEQ_DATA, seq_data(1))[..22]
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| if i == 1 { 20 } else { b })
                    .collect(),
            ),
            ("long SEQ_DATA", long_seq),
            ("SEQ_DATA twice", twice),
            ("PE_DATA twice", vec![OPT_PE_DATA, 1, 9, OPT_PE_DATA, 1, 9]),
            ("PE_NAME twice", vec![OPT_PE_NAME, 3, b's', b'i', b'p', OPT_PE_NAME, 3, b's', b'i', b'p']),
            ("PE_NAME of 17", [vec![OPT_PE_NAME, 17], vec![b'x'; 17]].concat()),
        ];
        for (what, opts) in bad {
            let d = dec_v1(&[fixed(&conn(0)), with_opts(fixed(&c), &opts), next.clone()]);
            assert_eq!((d.conns.len(), d.skipped.len(), d.error), (1, 0, Some(MessageError::BadRecord)), "{what}");
        }

        // Persistence-engine options: the record is skipped.
        let pe: Vec<Vec<u8>> = vec![
            vec![OPT_PE_DATA, 4, 1, 2, 3, 4, OPT_PE_NAME, 3, b's', b'i', b'p'],
            vec![OPT_PE_DATA, 2, 1, 2],
            vec![OPT_PE_NAME, 3, b's', b'i', b'p'],
            [vec![OPT_PE_NAME, 16], vec![b'x'; 16]].concat(),
            [vec![OPT_PE_DATA, 255], vec![7; 255]].concat(),
        ];
        for opts in pe {
            skip_then_next(dec_v1(&[with_opts(fixed(&c), &opts), next.clone()]), RecordSkip::PersistenceEngine);
        }
    }

    #[test]
    fn protocol_and_state_checks() {
        let tcp = |state| SyncConn { state, ..conn(1) };
        let udp = |state| SyncConn { proto: 17, state, ..conn(1) };
        let tpl = |proto, state| SyncConn { proto, state, flags: TEMPLATE | 0x01, cport: 0, ..conn(1) };
        let cases: Vec<(SyncConn, Result<(), RecordSkip>)> = vec![
            (tcp(0), Ok(())),
            (tcp(10), Ok(())),
            (tcp(11), Err(RecordSkip::BadState)),
            (tcp(0xffff), Err(RecordSkip::BadState)),
            (udp(0), Ok(())),
            (udp(1), Err(RecordSkip::BadState)),
            (SyncConn { proto: 132, state: 1, ..conn(1) }, Err(RecordSkip::UnsupportedProtocol)),
            (SyncConn { proto: 0, state: 0, ..conn(1) }, Err(RecordSkip::UnsupportedProtocol)),
            (SyncConn { proto: 50, state: 0, ..conn(1) }, Err(RecordSkip::UnsupportedProtocol)),
            (tpl(0, 0), Ok(())),
            (tpl(6, 1), Ok(())),
            (tpl(132, 1), Ok(())),
            (tpl(0, 2), Err(RecordSkip::BadState)),
            (tpl(17, 10), Err(RecordSkip::BadState)),
            (SyncConn { flags: 0x03 | ONE_PACKET, ..conn(1) }, Err(RecordSkip::OnePacket)),
            (SyncConn { flags: TEMPLATE | ONE_PACKET, ..tpl(0, 0) }, Err(RecordSkip::OnePacket)),
            (SyncConn { flags: TEMPLATE | NO_CPORT, ..tpl(0, 0) }, Err(RecordSkip::NoCportTemplate)),
            (SyncConn { flags: 0x03 | NO_CPORT, cport: 0, ..conn(1) }, Ok(())),
        ];
        for (c, want) in cases {
            let d = dec_v1(&[fixed(&c), fixed(&conn(2))]);
            let (conns, skipped) = match want {
                Ok(()) => (vec![accepted(c), accepted(conn(2))], vec![]),
                Err(s) => (vec![accepted(conn(2))], vec![s]),
            };
            assert_eq!((d.conns, d.skipped, d.error), (conns, skipped, None), "{c:?}");
        }
    }

    #[test]
    fn flags_are_masked_and_sync_added() {
        let raw = 0x0001_0000 | 0x8000 | 0x4000 | HASHED | SYNC | 0x10 | 0x08 | 0x03 | NOOUTPUT | INACTIVE | IN_SEQ;
        let d = dec_v1(&[fixed(&SyncConn { flags: raw, ..conn(1) })]);
        assert_eq!(d.conns[0].flags, 0x03 | SYNC | NOOUTPUT | INACTIVE | IN_SEQ);
        assert_eq!(d.conns[0].flags, 0x5a3);
        let d = dec_v1(&[fixed(&SyncConn { flags: 0, ..conn(1) })]);
        assert_eq!(d.conns[0].flags, SYNC);
        let d = dec_v1(&[fixed(&SyncConn { flags: TEMPLATE | HASHED | 0x02, state: 1, ..conn(1) })]);
        assert_eq!(d.conns[0].flags, TEMPLATE | SYNC | 0x02);
    }

    #[test]
    fn v0_validation() {
        let c1 = rec_v0(&conn(1), 0x0003);
        // Flags masked (HASHED and unknown high bits), SYNC added; timeout and fwmark 0.
        let d = dec(&msg_v0(0, 1, &[rec_v0(&conn(1), 0x8000 | 0x4000 | 0x0040 | 0x0010 | 0x0083)]));
        assert_eq!(d.conns, vec![SyncConn { flags: 0x83 | SYNC, fwmark: 0, timeout_s: 0, ..conn(1) }]);
        // Too few bytes for the next record.
        let d = dec(&msg_v0(0, 2, &[c1.clone(), c1[..23].to_vec()]));
        assert_eq!((d.conns.len(), d.error), (1, Some(MessageError::RecordTooSmall)));
        // Sequence data announced by the flags but missing.
        let d = dec(&msg_v0(0, 2, &[c1.clone(), rec_v0(&conn(2), 0x0400), vec![0; 23]]));
        assert_eq!((d.conns.len(), d.error), (1, Some(MessageError::RecordPastEnd)));
        // Sequence data present (little-endian) and the record after it read.
        let mut seq = rec_v0(&conn(2), 0x0200);
        for v in [1u32, 2, 3, 4, 5, 6] {
            seq.extend_from_slice(&v.to_le_bytes());
        }
        let d = dec(&msg_v0(0, 2, &[seq, c1.clone()]));
        assert_eq!(d.conns[0].seq, Some(SeqData { in_seq: [1, 2, 3], out_seq: [4, 5, 6] }));
        assert_eq!((d.conns.len(), d.conns[1].seq, d.error), (2, None, None));
        // Skips, each followed by a record that is read.
        let skips = [
            (rec_v0(&SyncConn { state: 11, ..conn(2) }, 0x0003), RecordSkip::BadState),
            (rec_v0(&SyncConn { proto: 132, ..conn(2) }, 0x0003), RecordSkip::UnsupportedProtocol),
            (rec_v0(&SyncConn { state: 2, ..conn(2) }, 0x1000), RecordSkip::BadState),
            (rec_v0(&conn(2), 0x2003), RecordSkip::OnePacket),
            (rec_v0(&conn(2), 0x1800), RecordSkip::NoCportTemplate),
        ];
        for (r, skip) in skips {
            let d = dec(&msg_v0(0, 2, &[r, c1.clone()]));
            assert_eq!((d.skipped, d.conns.len(), d.error), (vec![skip], 1, None));
        }
    }

    // ---- robustness ----

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn byte(&mut self) -> u8 {
            self.next() as u8
        }
    }

    /// A well-formed v1 or v0 message of random records (some skipped by a backup).
    fn random_valid(rng: &mut XorShift) -> Vec<u8> {
        let n = 1 + rng.below(6) as usize;
        let mut recs = Vec::new();
        if rng.below(4) == 0 {
            for i in 0..n {
                let mut c = conn(rng.next() as u32);
                c.proto = [6, 17, 132, 0][rng.below(4) as usize];
                c.state = rng.below(13) as u16;
                let mut flags = rng.next() as u16 & 0x3fff;
                if rng.below(2) == 0 {
                    flags &= !0x2000;
                }
                let mut r = rec_v0(&c, flags);
                if flags & 0x0600 != 0 {
                    r.extend((0..24).map(|_| rng.byte()));
                }
                recs.push(r);
                let _ = i;
            }
            return msg_v0(rng.byte(), n as u8, &recs);
        }
        for _ in 0..n {
            let kind = rng.below(8);
            let mut c = conn(rng.next() as u32);
            c.state = rng.below(12) as u16;
            c.proto = [6, 6, 17, 132, 0][rng.below(5) as usize];
            c.flags = match rng.below(6) {
                0 => rng.next() as u32,
                1 => TEMPLATE | rng.below(4) as u32,
                _ => rng.below(4) as u32 | INACTIVE,
            };
            let r = match kind {
                0 => fixed_v6(),
                1 => with_opts(fixed(&c), &seq_opt(OPT_SEQ_DATA, seq_data(rng.next() as u32))),
                2 => with_opts(fixed(&c), &[0x40 | rng.below(64) as u8, 2, rng.byte(), rng.byte()]),
                3 => with_opts(fixed(&c), &[rng.below(64) as u8, 1, 0]),
                4 => with_opts(fixed(&c), &[OPT_PE_DATA, 2, 1, 2, OPT_PE_NAME, 2, b'a', b'b']),
                _ => fixed(&c),
            };
            recs.push(r);
        }
        msg_v1(rng.byte(), n as u8, &recs)
    }

    /// Properties every decode result must have.
    fn check_decoded(m: &[u8], d: &Decoded) {
        let nr = usize::from(if d.version == Version::V1 { m[4] } else { m[0] });
        assert_eq!(d.syncid, m[1]);
        assert!(d.conns.len() + d.skipped.len() <= nr);
        if d.error.is_none() {
            assert_eq!(d.conns.len() + d.skipped.len(), nr);
        }
        for c in &d.conns {
            assert_eq!(c.flags & !(BACKUP_MASK | SYNC), 0);
            assert_ne!(c.flags & SYNC, 0);
            assert_ne!(c.flags & (TEMPLATE | NO_CPORT), TEMPLATE | NO_CPORT);
            if c.flags & TEMPLATE != 0 {
                assert!(c.state < 2);
            } else {
                assert!(matches!((c.proto, c.state), (6, 0..=10) | (17, 0)), "{c:?}");
            }
            if d.version == Version::V0 {
                assert_eq!((c.fwmark, c.timeout_s), (0, 0));
                assert_eq!(c.seq.is_some(), c.flags & SEQ_MASK != 0);
            }
        }
    }

    #[test]
    fn random_and_mutated_messages_never_panic() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut errors: Vec<MessageError> = Vec::new();
        let mut skips: Vec<RecordSkip> = Vec::new();
        let (mut conns, mut ok) = (0usize, 0usize);
        for i in 0..20_000 {
            let mut m = if i % 2 == 0 {
                let len = rng.below(600) as usize;
                let mut m: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
                if m.len() >= 8 && rng.below(2) == 0 {
                    // Looks like a v1 header.
                    m[0] = 0;
                    m[4] = rng.below(8) as u8;
                    m[5] = 1;
                    m[6] = 0;
                    m[7] = 0;
                } else if !m.is_empty() && rng.below(2) == 0 {
                    m[0] = rng.below(8) as u8;
                }
                m
            } else {
                let mut m = random_valid(&mut rng);
                for _ in 0..rng.below(4) {
                    let at = rng.below(m.len() as u64) as usize;
                    m[at] = rng.byte();
                }
                match rng.below(4) {
                    0 => m.truncate(rng.below(m.len() as u64 + 1) as usize),
                    1 => m.extend((0..rng.below(40)).map(|_| rng.byte())),
                    _ => {}
                }
                m.truncate(599);
                m
            };
            if m.len() >= 4 && rng.below(8) != 0 {
                let len = m.len() as u16;
                m[2..4].copy_from_slice(&len.to_be_bytes());
            }
            let seen = match decode(&m, 0) {
                Err(e) => (Some(e), Vec::new()),
                Ok(None) => panic!("syncid filter 0 accepts everything"),
                Ok(Some(d)) => {
                    check_decoded(&m, &d);
                    ok += 1;
                    conns += d.conns.len();
                    (d.error, d.skipped)
                }
            };
            errors.extend(seen.0.filter(|e| !errors.contains(e)));
            for s in seen.1 {
                if !skips.contains(&s) {
                    skips.push(s);
                }
            }
        }
        // The inputs reach every outcome, not just the header checks.
        assert!(ok > 5000 && conns > 2000, "ok {ok}, conns {conns}");
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert_eq!(skips.len(), 7, "{skips:?}");
    }

    #[test]
    fn every_truncation_of_a_valid_message() {
        let recs = [
            conn(1),
            SyncConn { flags: IN_SEQ | OUT_SEQ, seq: Some(seq_data(9)), ..conn(2) },
            SyncConn { proto: 17, state: 0, ..conn(3) },
        ];
        for version in [Version::V1, Version::V0] {
            let mut b = MessageBuilder::new(version, 1, DEFAULT_MASTER_MAXLEN);
            for c in &recs {
                b.push(c);
            }
            let full = b.take().unwrap();
            let ends: Vec<usize> = match version {
                Version::V1 => vec![8 + 36, 8 + 36 + 62, 8 + 36 + 62 + 2 + 36],
                Version::V0 => vec![4 + 24, 4 + 24 + 48, 4 + 24 + 48 + 24],
            };
            assert_eq!(full.len(), ends[2]);
            let all = dec(&full).conns;
            assert_eq!(all.len(), 3);
            for k in 0..full.len() {
                let cut = &full[..k];
                let want = if k < 4 { MessageError::TooShort } else { MessageError::SizeMismatch };
                assert_eq!(decode(cut, 0), Err(want), "{version:?} {k}");
                if k < 4 {
                    continue;
                }
                let mut fixed_size = cut.to_vec();
                fixed_size[2..4].copy_from_slice(&(k as u16).to_be_bytes());
                let d = dec(&fixed_size);
                check_decoded(&fixed_size, &d);
                if version == Version::V1 && k < 8 {
                    // Too short for a v1 header: read as an empty v0 message.
                    assert_eq!((d.version, d.conns.len(), d.error), (Version::V0, 0, None));
                    continue;
                }
                assert_eq!(d.version, version);
                let complete = ends.iter().filter(|&&e| e <= k).count();
                assert_eq!(d.conns, all[..complete], "{version:?} {k}");
                assert!(d.error.is_some(), "{version:?} {k}");
            }
        }
    }
}
