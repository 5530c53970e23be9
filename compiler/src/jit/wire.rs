//! Integer plumbing for the translator: constants of any width (Cranelift has
//! no `iconst.i128`), resizing between containers, masking, constant shifts,
//! and the big-endian bit-field loads and stores of extract and emit.
//!
//! Values live in the smallest container of 8, 16, 32, 64 or 128 bits that
//! holds their width ([`container`]) and are always masked to the width, the
//! same representation as a PHV slot ([`crate::abi`]).

use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

/// The Cranelift integer type holding a value of `width` bits.
pub(super) fn container(width: u16) -> Type {
    match crate::abi::container_bytes(width) {
        1 => types::I8,
        2 => types::I16,
        4 => types::I32,
        8 => types::I64,
        _ => types::I128,
    }
}

/// The integer type of `bytes` bytes (1, 2, 4, 8 or 16).
fn int_of_bytes(bytes: u32) -> Type {
    match bytes {
        1 => types::I8,
        2 => types::I16,
        4 => types::I32,
        8 => types::I64,
        _ => types::I128,
    }
}

/// A constant of type `ty`; `v` is truncated to the type.
pub(super) fn iconst(b: &mut FunctionBuilder, ty: Type, v: u128) -> Value {
    if ty == types::I128 {
        // The verifier has no bounds for `iconst.i128`: build it from halves.
        let lo = b.ins().iconst(types::I64, v as u64 as i64);
        let hi = b.ins().iconst(types::I64, (v >> 64) as u64 as i64);
        b.ins().iconcat(lo, hi)
    } else {
        let bits = ty.bits();
        let v = if bits >= 64 { v as u64 } else { (v as u64) & ((1u64 << bits) - 1) };
        b.ins().iconst(ty, v as i64)
    }
}

/// Zero-extends or truncates `v` to `ty` (no masking beyond the container).
pub(super) fn resize(b: &mut FunctionBuilder, v: Value, ty: Type) -> Value {
    let from = b.func.dfg.value_type(v);
    if from.bits() > ty.bits() {
        b.ins().ireduce(ty, v)
    } else if from.bits() < ty.bits() {
        b.ins().uextend(ty, v)
    } else {
        v
    }
}

/// Clears the bits of `v` above `width` (no-op when the container is exactly `width` wide).
pub(super) fn mask(b: &mut FunctionBuilder, v: Value, width: u16) -> Value {
    let ty = b.func.dfg.value_type(v);
    if u32::from(width) >= ty.bits() {
        return v;
    }
    let m = iconst(b, ty, (1u128 << width) - 1);
    b.ins().band(v, m)
}

/// `v << n` for a constant `n`; 0 when `n` is at least the container width
/// (Cranelift would take `n` modulo the width).
pub(super) fn shl_c(b: &mut FunctionBuilder, v: Value, n: u32) -> Value {
    let ty = b.func.dfg.value_type(v);
    if n == 0 {
        v
    } else if n >= ty.bits() {
        iconst(b, ty, 0)
    } else {
        let amt = b.ins().iconst(types::I32, i64::from(n));
        b.ins().ishl(v, amt)
    }
}

/// `v >> n` (logical) for a constant `n`; 0 when `n` is at least the container width.
pub(super) fn shr_c(b: &mut FunctionBuilder, v: Value, n: u32) -> Value {
    let ty = b.func.dfg.value_type(v);
    if n == 0 {
        v
    } else if n >= ty.bits() {
        iconst(b, ty, 0)
    } else {
        let amt = b.ins().iconst(types::I32, i64::from(n));
        b.ins().ushr(v, amt)
    }
}

/// Loads the `width`-bit big-endian field starting `bit_off` bits into the
/// bytes at `base`, of which exactly `avail` are known to be readable (the
/// bounds check already passed); returns it masked in its container.
///
/// Strategy: one load of 1, 2, 4 or 8 bytes (slid back so it stays inside
/// the `avail` bytes) + `bswap` + shift when the field spans at most 8 bytes;
/// two 8-byte loads joined into an `i128` when it spans 9 to 16; otherwise
/// (wider or the header is too short for a window) the field is split in
/// two halves, each loaded the same way, until the pieces fit.
pub(super) fn load_be(
    b: &mut FunctionBuilder,
    mem: MemFlagsData,
    base: Value,
    avail: u32,
    bit_off: u32,
    width: u16,
) -> Value {
    let ty = container(width);
    let w = u32::from(width);
    let first = bit_off / 8;
    let last = (bit_off + w - 1) / 8;
    let span = last - first + 1;
    if span <= 8 {
        let window = [1u32, 2, 4, 8].into_iter().find(|&n| n >= span).unwrap_or(8);
        let raw = if window <= avail {
            // Slide the window back so it ends inside the readable bytes; it still covers the field.
            let start = first.min(avail - window);
            let v = b.ins().load(int_of_bytes(window), mem, base, start as i32);
            let v = if window > 1 { b.ins().bswap(v) } else { v };
            shr_c(b, v, (start + window) * 8 - (bit_off + w))
        } else {
            // A header shorter than the window (e.g. 3 bytes): assemble byte by byte.
            let mut acc = iconst(b, types::I64, 0);
            for i in first..=last {
                let byte = b.ins().load(types::I8, mem, base, i as i32);
                let byte = b.ins().uextend(types::I64, byte);
                let shifted = shl_c(b, acc, 8);
                acc = b.ins().bor(shifted, byte);
            }
            shr_c(b, acc, (last + 1) * 8 - (bit_off + w))
        };
        let v = resize(b, raw, ty);
        mask(b, v, width)
    } else if span <= 16 && avail >= 16 {
        let start = first.min(avail - 16);
        let hi = b.ins().load(types::I64, mem, base, start as i32);
        let hi = b.ins().bswap(hi);
        let lo = b.ins().load(types::I64, mem, base, (start + 8) as i32);
        let lo = b.ins().bswap(lo);
        let v = b.ins().iconcat(lo, hi);
        let v = shr_c(b, v, (start + 16) * 8 - (bit_off + w));
        let v = resize(b, v, ty);
        mask(b, v, width)
    } else {
        let low_w = width / 2;
        let high_w = width - low_w;
        let hi = load_be(b, mem, base, avail, bit_off, high_w);
        let lo = load_be(b, mem, base, avail, bit_off + u32::from(high_w), low_w);
        let hi = resize(b, hi, ty);
        let hi = shl_c(b, hi, u32::from(low_w));
        let lo = resize(b, lo, ty);
        b.ins().bor(hi, lo)
    }
}

/// One field to write: its bit offset in the header, its width and its
/// (masked) value in its container.
pub(super) struct FieldValue {
    pub bit_off: u32,
    pub width: u16,
    pub value: Value,
}

/// Bits `[lo, hi)` of the big-endian concatenation of `fields` (bit offsets
/// counted from the first field's most significant bit; bits no field covers
/// read as 0), as an integer of type `ty` (`hi - lo` bits wide).
pub(super) fn chunk(b: &mut FunctionBuilder, fields: &[FieldValue], lo: u32, hi: u32, ty: Type) -> Value {
    let mut acc: Option<Value> = None;
    for f in fields {
        let (fo, w) = (f.bit_off, u32::from(f.width));
        if fo >= hi || fo + w <= lo {
            continue;
        }
        // Where the field's least significant bit lands, counted from the
        // chunk's least significant bit; negative when the field runs on
        // into the next chunk.
        let lsb = i64::from(hi) - i64::from(fo + w);
        let part = if lsb >= 0 {
            let v = resize(b, f.value, ty);
            shl_c(b, v, lsb as u32)
        } else {
            let v = shr_c(b, f.value, (-lsb) as u32);
            resize(b, v, ty)
        };
        acc = Some(match acc {
            Some(a) => b.ins().bor(a, part),
            None => part,
        });
    }
    match acc {
        Some(v) => v,
        None => iconst(b, ty, 0),
    }
}

/// Writes bytes `bytes` of a header big-endian at `base` (the header's
/// first byte): the fields' bits are assembled into 8-, 4-, 2- and 1-byte
/// chunks (a field may feed two chunks), each byte-swapped and stored
/// once. `fields` must hold every field with a bit in those bytes (others
/// are ignored or may be missing).
pub(super) fn store_be_range(
    b: &mut FunctionBuilder,
    mem: MemFlagsData,
    base: Value,
    bytes: std::ops::Range<u32>,
    fields: &[FieldValue],
) {
    let mut c0 = bytes.start;
    while c0 < bytes.end {
        let size = [8u32, 4, 2, 1].into_iter().find(|&n| n <= bytes.end - c0).unwrap_or(1);
        let v = chunk(b, fields, c0 * 8, (c0 + size) * 8, int_of_bytes(size));
        let v = if size > 1 { b.ins().bswap(v) } else { v };
        b.ins().store(mem, v, base, c0 as i32);
        c0 += size;
    }
}

/// The 32-bit units of the big-endian concatenation of `fields`,
/// zero-padded on the right to a whole number of units, each as an `i64`.
/// Their sum folds ([`fold16`]) to the same ones' complement sum as the
/// 16-bit words' (RFC 1071's words, a partial one zero-padded on the
/// right): 2^16 ≡ 1 modulo 2^16 − 1, a trailing
/// 16-bit word padded to 32 bits is the word times 2^16, and a nonzero
/// sum stays nonzero through every fold (RFC 1071, "parallel summation").
/// Half as many units to assemble and add for the same checksum.
///
/// Each unit is assembled in 64 bits, as wide as the sum: fields are
/// masked to their widths, so only a field that starts before the unit
/// (its high bits belong to the unit before) leaves bits above the unit
/// to clear; assembling in 32 bits would cost a truncation of each field
/// and an extension of the unit that x64 spends instructions on.
pub(super) fn words32(b: &mut FunctionBuilder, fields: &[FieldValue]) -> Vec<Value> {
    let bits: u32 = fields.last().map_or(0, |f| f.bit_off + u32::from(f.width));
    (0..bits.div_ceil(32))
        .map(|k| {
            let (lo, hi) = (32 * k, 32 * k + 32);
            let w = chunk(b, fields, lo, hi, types::I64);
            let spills_in = fields.iter().any(|f| f.bit_off < lo && f.bit_off + u32::from(f.width) > lo);
            if spills_in {
                b.ins().band_imm_u(w, 0xFFFF_FFFF)
            } else {
                w
            }
        })
        .collect()
}

/// Folds a sum of 16-bit words or 32-bit units (an `i64` below 2^48) to
/// its 16-bit ones' complement sum with end-around carries, as an `i64`; like RFC 1071's
/// `while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16)`.
pub(super) fn fold16(b: &mut FunctionBuilder, sum: Value) -> Value {
    let mut s = sum;
    // Below 2^48: three folds reach 16 bits (2^48 → 2^32 + 2^16 → 2^16 + 2 → 2^16).
    for _ in 0..3 {
        let lo = b.ins().band_imm_u(s, 0xFFFF);
        let hi = shr_c(b, s, 16);
        s = b.ins().iadd(lo, hi);
    }
    s
}
