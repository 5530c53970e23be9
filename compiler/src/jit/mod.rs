//! The Cranelift JIT: one native function per program running parser,
//! controls and deparser over a [`PacketCtx`](crate::abi::PacketCtx), and a
//! second, the hint pass, when the parser calls hint methods (the `abi`
//! module docs).
//!
//! [`compile`] builds the host ISA (`opt_level=speed`, the verifier on in
//! debug builds), imports the host functions of [`crate::abi`] by name,
//! translates the program with `translator::FunctionTranslator` and
//! finalizes the code. The semantics are those of the `ir` module docs and
//! the [`crate::abi`] contract; the reference interpreter in the runtime is
//! the oracle the differential tests compare against.

mod translator;
mod wire;

use cranelift_codegen::ir::{types, AbiParam, AliasRegionData, MemFlagsData, UserFuncName};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

use crate::abi::{self, HostSymbols, Layout, PipelineFn};
use crate::ir;
use translator::{FunctionTranslator, HostRefs, Mode, Regions};

/// Code generation options.
#[derive(Clone, Copy, Debug, Default)]
pub struct JitOptions {
    /// Emit calls to the trace host function (parser states, extracts, branches...).
    pub trace: bool,
    /// Keep the machine code's disassembly ([`CompiledPipeline::asm`]).
    pub disasm: bool,
}

/// A compiled pipeline; keeps the code alive while it exists.
pub struct CompiledPipeline {
    /// The entry point.
    pub func: PipelineFn,
    /// The hint pass (`abi` module docs), when the parser calls hint
    /// methods; same signature, run on a PHV of its own.
    pub hints: Option<PipelineFn>,
    /// Cranelift IR text of the function (for `--emit clif`), as generated,
    /// before Cranelift's optimizations.
    pub clif: String,
    /// The machine code as Cranelift prints it (with [`JitOptions::disasm`]).
    pub asm: Option<String>,
    /// Keeps the JIT-owned memory alive.
    _module: Box<dyn std::any::Any>,
}

/// A code generation failure (an internal error: checked IR always compiles).
#[derive(Debug, thiserror::Error)]
#[error("JIT compilation failed: {0}")]
pub struct JitError(pub String);

/// The exported name of the pipeline function inside its module.
const PIPELINE_SYMBOL: &str = "p4l_pipeline";
/// The exported name of the hint-pass function inside its module.
const HINTS_SYMBOL: &str = "p4l_hint_pass";

/// Compiles a checked program for the host CPU.
pub fn compile(
    program: &ir::Program,
    layout: &Layout,
    host: HostSymbols,
    options: JitOptions,
) -> Result<CompiledPipeline, JitError> {
    compile_specialised(program, layout, host, options, &[])
}

/// [`compile`], with the runtime's snapshots of its tables (per table id;
/// missing or `None` entries have none): an untraced apply of such a table
/// tests the snapshot's entries in the generated code while the table's
/// image still has the snapshot's version, and uses the image otherwise
/// (`abi` module docs, "Table snapshots").
pub fn compile_specialised(
    program: &ir::Program,
    layout: &Layout,
    host: HostSymbols,
    options: JitOptions,
    snapshots: &[Option<abi::TableSnapshot>],
) -> Result<CompiledPipeline, JitError> {
    fn err(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> JitError {
        move |e| JitError(format!("{what}: {e}"))
    }
    if layout.slot_offset.len() != program.slots.len() || layout.table_keys.len() != program.tables.len() {
        return Err(JitError("the layout was not made for this program (Layout::new)".into()));
    }
    let mut flags = settings::builder();
    let verifier = if cfg!(debug_assertions) { "true" } else { "false" };
    for (name, value) in [
        ("opt_level", "speed"),
        ("enable_verifier", verifier),
        ("use_colocated_libcalls", "false"),
        ("is_pic", "false"),
    ] {
        flags.set(name, value).map_err(|e| err("setting a Cranelift flag")(&e))?;
    }
    let isa_builder = cranelift_native::builder().map_err(|e| err("host CPU not supported")(&e))?;
    let isa = isa_builder.finish(settings::Flags::new(flags)).map_err(|e| err("building the ISA")(&e))?;

    let mut jit = JITBuilder::with_isa(isa, default_libcall_names());
    jit.symbol(abi::TABLE_APPLY, host.table_apply as *const u8);
    jit.symbol(abi::TABLE_LOOKUP, host.table_lookup as *const u8);
    jit.symbol(abi::EXTERN_CALL, host.extern_call as *const u8);
    if options.trace {
        jit.symbol(abi::TRACE, host.trace as *const u8);
    }
    let ipvs = host.ipvs_call.filter(|_| !options.trace);
    if let Some(f) = ipvs {
        jit.symbol(abi::IPVS_CALL, f as *const u8);
    }
    let mut module = JITModule::new(jit);
    let ptr = module.target_config().pointer_type();

    // Signatures: the pipeline and the host functions of abi.rs.
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(ptr));
    sig.returns.push(AbiParam::new(types::I32));
    let mut apply_sig = module.make_signature();
    apply_sig.params.extend([AbiParam::new(ptr), AbiParam::new(types::I32)]);
    apply_sig.returns.push(AbiParam::new(types::I32));
    // Two `i64` results come back in two registers, as the C ABI returns
    // the two-word `abi::LookupResult`.
    let mut lookup_sig = module.make_signature();
    lookup_sig.params.extend([AbiParam::new(ptr), AbiParam::new(types::I32), AbiParam::new(types::I64)]);
    lookup_sig.returns.extend([AbiParam::new(types::I64), AbiParam::new(ptr)]);
    let mut extern_sig = module.make_signature();
    extern_sig.params.extend([AbiParam::new(ptr), AbiParam::new(types::I32)]);
    let mut ipvs_sig = module.make_signature();
    ipvs_sig.params.extend([ptr, types::I32, types::I64, types::I64, types::I64].map(AbiParam::new));
    ipvs_sig.returns.extend([AbiParam::new(types::I64), AbiParam::new(types::I64)]);
    let mut trace_sig = module.make_signature();
    trace_sig.params.extend([ptr, types::I32, types::I32, types::I32].map(AbiParam::new));

    let declare = |m: &mut JITModule, name: &str, linkage, s: &cranelift_codegen::ir::Signature| {
        m.declare_function(name, linkage, s).map_err(|e| JitError(format!("declaring {name}: {e}")))
    };
    let func_id = declare(&mut module, PIPELINE_SYMBOL, Linkage::Export, &sig)?;
    let apply_id = declare(&mut module, abi::TABLE_APPLY, Linkage::Import, &apply_sig)?;
    let lookup_id = declare(&mut module, abi::TABLE_LOOKUP, Linkage::Import, &lookup_sig)?;
    let extern_id = declare(&mut module, abi::EXTERN_CALL, Linkage::Import, &extern_sig)?;
    let trace_id =
        if options.trace { Some(declare(&mut module, abi::TRACE, Linkage::Import, &trace_sig)?) } else { None };
    let ipvs_id = match ipvs {
        Some(_) => Some(declare(&mut module, abi::IPVS_CALL, Linkage::Import, &ipvs_sig)?),
        None => None,
    };

    let hints_id = if abi::parser_has_hints(program) {
        Some(declare(&mut module, HINTS_SYMBOL, Linkage::Export, &sig)?)
    } else {
        None
    };

    // Builds and defines one function: the pipeline, or the hint pass
    // (never traced: its trace events would interleave with the pipeline's).
    let define = |module: &mut JITModule,
                  id: cranelift_module::FuncId,
                  mode: Mode|
     -> Result<(String, Option<String>), JitError> {
        let traced = options.trace && mode == Mode::Pipeline;
        let mut ctx = module.make_context();
        ctx.func.signature = sig.clone();
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let host_refs = HostRefs {
            table_apply: module.declare_func_in_func(apply_id, &mut ctx.func),
            table_lookup: module.declare_func_in_func(lookup_id, &mut ctx.func),
            extern_call: module.declare_func_in_func(extern_id, &mut ctx.func),
            trace: trace_id.filter(|_| traced).map(|id| module.declare_func_in_func(id, &mut ctx.func)),
            ipvs_call: ipvs_id.map(|id| module.declare_func_in_func(id, &mut ctx.func)),
            table_images: (!host.table_images.is_null() && !options.trace).then_some(host.table_images as u64),
            counter_images: (!host.counter_images.is_null() && !options.trace).then_some(host.counter_images as u64),
        };
        let mut region = |user_id: u32, description: &'static str| {
            let r = ctx.func.dfg.alias_regions.insert(AliasRegionData { user_id, description: description.into() });
            MemFlagsData::new().with_notrap().with_alias_region(Some(r))
        };
        let regions = Regions {
            ctx: region(1, "ctx"),
            scratch: region(2, "keys and extern args"),
            packet: region(3, "packet"),
            params: region(4, "table entry parameters"),
            images: region(5, "table images and counters"),
        };
        let mut fctx = FunctionBuilderContext::new();
        let builder = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let translator = FunctionTranslator::new(builder, program, layout, host_refs, regions, ptr, mode, snapshots);
        match mode {
            Mode::Pipeline => translator.translate_program(module.target_config())?,
            Mode::Hints => translator.translate_hint_pass(module.target_config())?,
        }
        let clif = ctx.func.display().to_string();
        ctx.set_disasm(options.disasm && mode == Mode::Pipeline);
        module.define_function(id, &mut ctx).map_err(|e| JitError(format!("{e:?}\n{clif}")))?;
        let asm = ctx.compiled_code().and_then(|c| c.vcode.clone());
        module.clear_context(&mut ctx);
        Ok((clif, asm))
    };
    let (clif, asm) = define(&mut module, func_id, Mode::Pipeline)?;
    if let Some(id) = hints_id {
        define(&mut module, id, Mode::Hints)?;
    }
    module.finalize_definitions().map_err(|e| err("finalizing")(&e))?;
    let entry = module.get_finalized_function(func_id);
    let hints = hints_id.map(|id| module.get_finalized_function(id));
    let code = JitCode { module: Some(module), entry, hints };
    Ok(CompiledPipeline { func: code.entry(), hints: code.hints(), clif, asm, _module: Box::new(code) })
}

/// The finalized machine code and the module that owns its memory. All the
/// `unsafe` of the compiler is here.
struct JitCode {
    module: Option<JITModule>,
    entry: *const u8,
    hints: Option<*const u8>,
}

impl JitCode {
    /// The pipeline entry point.
    fn entry(&self) -> PipelineFn {
        // SAFETY: `entry` is the finalized address of the function defined with
        // the signature `fn(ptr) -> i32` in the host's default (System V / C)
        // calling convention, which is exactly `PipelineFn`'s ABI. The code stays
        // mapped until `JitCode` is dropped, i.e. as long as the
        // `CompiledPipeline` holding it exists (its documented contract).
        unsafe { std::mem::transmute::<*const u8, PipelineFn>(self.entry) }
    }

    /// The hint pass's entry point, when there is one.
    fn hints(&self) -> Option<PipelineFn> {
        // SAFETY: as for `entry`: defined with the same signature, in the
        // same module, alive as long as `JitCode`.
        self.hints.map(|p| unsafe { std::mem::transmute::<*const u8, PipelineFn>(p) })
    }
}

impl Drop for JitCode {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // SAFETY: the only pointers into this memory are copies of the
            // `PipelineFn` of the `CompiledPipeline` being dropped, which must
            // not be called after it (the struct's contract).
            unsafe { module.free_memory() };
        }
    }
}

#[cfg(test)]
mod tests;
