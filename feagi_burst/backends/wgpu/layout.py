"""The memory layout the host and the shaders share, written once: the burst Header and the constants.

`HEADER` lists the fields of the per-burst uniform `struct Header` (name, WGSL type, comment) and
`CONSTANTS` the constants of the `work` buffer and the dispatch geometry (name, WGSL type, value,
comment). From these two tables come

- the WGSL text `wgsl()`: every `const` line and `struct Header { ... }`, which the shader loader
  pastes where shaders/common.wgsl says `//!generated layout` (no shader writes them by hand;
  tests/test_gpu_layout.py checks that);
- the Python side: `H_<FIELD>` (the word index of each Header field, e.g. `H_PREV_SLOT`),
  `HEADER_WORDS`, and every constant as a module attribute (`WG`, `CAND_BASE`...).

Every Header field is one 4-byte word (u32 or f32), so a field's byte offset in WGSL is 4 x its
index and the host writes a header as a u32 row; the struct is padded to a multiple of 16 bytes.
"""
from __future__ import annotations

from typing import NamedTuple

from feagi_burst.fixed_point import SUM_LIMIT


class Field(NamedTuple):
    name: str
    type: str  # "u32" or "f32": one word each
    comment: str = ""


class Constant(NamedTuple):
    name: str
    type: str  # "u32" or "f32"
    value: int | float
    comment: str = ""


# --- struct Header: this burst's numbers (uniform, one 256-byte row per burst) -------------------
HEADER: tuple[Field, ...] = (
    Field("burst", "u32", "b: refractory blocks and the excitability draw use it"),
    Field("seq", "u32", "backend's own burst sequence (1, 2, ...): candidate stamps and fired marks"),
    Field("salt", "u32", "b*1597334677 mod 2^32 (the seed term is in each row: params.py)"),
    Field("append", "u32", "1: FCL path (append candidates to a list); 0: full-array path"),
    Field("slot", "u32", "word offset in `work` of this burst's fire slot"),
    Field("prev_slot", "u32", "word offset of the previous burst's fire slot (what propagates now)"),
    Field("n_neurons", "u32"),
    Field("ext_off", "u32", "inputs[ext_off ..+ext_n): ids; then ext_n f32 potentials"),
    Field("ext_n", "u32"),
    Field("forced_off", "u32", "inputs[forced_off ..+forced_n): ids; then forced_n f32 firing mps"),
    Field("forced_n", "u32"),
    Field("power", "u32", "power neuron id, or NONE"),
    Field("power_ext", "u32", "index of the power neuron in the external list, or NONE"),
    Field("hash_mask", "u32", "hash capacity - 1"),
    Field("hash_shift", "u32", "32 - log2(capacity)"),
    Field("max_probe", "u32", "longest probe measured when the table was built"),
    Field("drive_off", "u32", "u32 index of the Drive order inside `lookup`"),
    Field("drive_len", "u32"),
    Field("drive_start", "u32", "((b-1)*per_burst) mod drive_len"),
    Field("drive_n", "u32", "min(per_burst, drive_len)"),
    Field("drive_pot", "f32"),
    Field("wide_off", "u32", "u32 index inside `lookup` of the bitmask of wide targets (fan-in >= 2^COUNT_BITS)"),
    Field("bits_off", "u32", "word offset in `work` of the fire bitmask (nblk * 256 words)"),
    Field("bcnt_off", "u32", "word offset of the block fire counts (2 * nblk words: by seq parity)"),
    Field("fmp_off", "u32", "word offset of the per-neuron firing mp (N words)"),
    Field("nblk", "u32", "fire blocks: ceil(N / 8192)"),
    Field("since", "u32", "state_delta only: the seq of the last state sync"),
    Field("row_stride", "u32", "vec2s per parameter row (model index word + the widest model's words + brain words)"),
    Field("zero", "u32", "always 0: opaque() XORs with it so the compiler cannot fuse a product into an fma"),
)

# --- constants shared by the host and every shader -----------------------------------------------
BLOCK_SHIFT = 13
CONSTANTS: tuple[Constant, ...] = (
    Constant("NONE", "u32", 0xFFFFFFFF, "an empty hash slot, no power neuron, ..."),
    Constant("WG", "u32", 256, "invocations per workgroup, every shader"),
    Constant("MAX_DIM", "u32", 65535, "workgroups per grid dimension (larger grids are 2-D)"),
    Constant("W_CAND_CTR", "u32", 0, "work[0]: candidates appended so far this burst (FCL path)"),
    Constant("W_CAND_N", "u32", 1, "work[1]: candidate count frozen for neural_dynamics_fcl"),
    Constant("W_CAND_FULL", "u32", 2, "work[2]: candidates counted by neural_dynamics (full path)"),
    Constant("W_SCALE_INV", "u32", 3, "work[3]: 2^-scale_exp as f32 bits, fixed-point sum -> f32 (STDP may lower "
             "the scale on the device: plasticity.py)"),
    Constant("CAND_BASE", "u32", 16, "work[16 ..16+N): candidate list (the words before it are counters)"),
    Constant("SLOT_HEADER", "u32", 4, "words of a fire slot before its ids: fired count, candidate count, seq, 0"),
    Constant("BLOCK_SHIFT", "u32", BLOCK_SHIFT,
             "a fire block: 8192 neurons = 256 bitmask words = one fire_compact workgroup"),
    Constant("BLOCK_NEURONS", "u32", 1 << BLOCK_SHIFT, "neurons per fire block"),
    # Propagation: fired neurons per workgroup, each to a group of WG / FIRED_PER_WG lanes. 64 lanes
    # beat 32 and 16 by 2-6 µs a burst at 100 synapses per neuron on an H100 (fewer loop rounds).
    Constant("FIRED_PER_WG", "u32", 4, "fired neurons per propagation workgroup (64 lanes each)"),
    # The dense dynamics pass costs per workgroup as well as per neuron (an H200 at 1M neurons: 22.6
    # µs with 256 invocations a workgroup, 28.6 with 128, 41.2 with 64; docs/bench/h200-session10-r4-*):
    # each invocation steps FULL_NEURONS neurons, so fewer workgroups share those costs. 1 / 2 / 4 / 8
    # measured 22.4 / 21.0 / 20.0 / 25.0 µs there, the same bits (-r5-*)
    Constant("FULL_NEURONS", "u32", 4, "neurons per invocation of model_dynamics_full.wgsl"),
    # An FCL sum word holds the fixed-point sum times 2^COUNT_BITS plus the count of synaptic
    # events into a narrow target (fan-in < 2^COUNT_BITS): that count makes it a candidate, so a
    # synaptic event is one atomic, not two (sum and stamp). |sum| < 2^24 (fixed_point.SUM_LIMIT)
    # leaves exactly 7 bits of an i32. Wide targets are stamped as before.
    Constant("COUNT_BITS", "u32", 7, "low bits of an FCL sum word that count a narrow target's events"),
    Constant("HASH_MULT", "u32", 0x9E3779B1, "multiplicative (Fibonacci) hash of the synapse table"),
    Constant("HEADER_STRIDE", "u32", 256, "bytes per burst header (dynamic uniform offset)"),
    # STDP (plasticity.py, shaders/stdp*.wgsl): the `grid` buffer (the indirect grid of stdp_pre,
    # written by fire_compact's STDP hooks: a buffer read as indirect arguments cannot be bound
    # writable in that dispatch). stdp and stdp_requant run on direct grids of at most
    # STDP_DIRECT_GRID workgroups that loop over their work: an indirect dispatch whose grid the one
    # before it wrote waits for that write (~2 µs more a pair on an H200, docs/bench/speed-history.md).
    # 1,024: on an H200 with the 1M bench's ~3.2K fired plastic neurons, 256 and 512 took the phase
    # from 26.5-27.9 to 34.8-35.0 and 30.0-30.5 µs, 2,048 and 4,096 no faster (h200-session10-r2-*, -r3-*)
    Constant("STDP_GRID_PRE", "u32", 0, "grid[0..3): stdp_pre (the fired rows' words in chunks after the first)"),
    Constant("STDP_GRID_WORDS", "u32", 4, "words of the grid buffer"),
    Constant("STDP_DIRECT_GRID", "u32", 1024, "most workgroups of a stdp or stdp_requant dispatch"),
    # neurons per workgroup of stdp.wgsl (WG / STDP_UPDATE_NEURONS lanes each): a fired neuron of
    # the 1M bench has ~32 outgoing and ~32 incoming plastic synapses; with lazy updates (few
    # neurons a burst, each synapse's accesses a chain of random loads) 32 lanes took the
    # plasticity phase from 37.7 to 31.8 µs on an H200, 64 to 35.5 (docs/bench/h200-session9-r2-*);
    # since a lane's two sides are one loop step: 32 lanes 27.2-27.4, 64 26.7-27.4, 16 29.9-30.3
    # (h200-session10-r1-*)
    Constant("STDP_UPDATE_NEURONS", "u32", 8, "neurons per stdp.wgsl workgroup"),
    # rows (synapse hash entries) per stdp_requant.wgsl workgroup: one invocation per row walked
    # its row alone, touching words 800 bytes apart, and a requantisation of the 1M bench took
    # 3.3 ms on an H200
    Constant("STDP_REQUANT_ROWS", "u32", 16, "synapse rows per stdp_requant.wgsl workgroup"),
    Constant("STDP_COMMIT_NEURONS", "u32", 4, "fired neurons per stdp_pre.wgsl workgroup when it commits rows"),
    # ... and the words of the `ctl` buffer
    Constant("STDP_MAXW", "u32", 0, "ctl[0]: f32 bits of the largest weight committed this burst (atomicMax)"),
    Constant("STDP_KCUR", "u32", 1, "ctl[1]: k of the cap 2^k the current scale holds plastic weights to"),
    Constant("STDP_SCUR", "u32", 2, "ctl[2]: the current scale exponent (i32 bits)"),
    Constant("STDP_SHIFT", "u32", 3, "ctl[3]: the shift d of a table pass the host runs (stdp_requant's host_pass)"),
    Constant("STDP_LCNT", "u32", 5, "ctl[5..7): entries in each fired list (by seq parity)"),
    Constant("STDP_NSTEPS", "u32", 9, "ctl[9]: scale exponents taken so far (the compiled one first)"),
    # what stdp_requant decides from: KCUR, SCUR and NSTEPS as the burst began (fire_compact's hooks
    # copy them), since its workgroups write the originals while others may still be reading
    Constant("STDP_KSNAP", "u32", 10, "ctl[10]: KCUR at the start of this burst's STDP"),
    Constant("STDP_SSNAP", "u32", 11, "ctl[11]: SCUR at the start of this burst's STDP"),
    Constant("STDP_NSNAP", "u32", 12, "ctl[12]: NSTEPS at the start of this burst's STDP"),
    Constant("STDP_STEPS", "u32", 16, "ctl[16 ..+STDP_MAX_STEPS): those scale exponents, in order"),
    Constant("STDP_MAX_STEPS", "u32", 160, "room for every scale from 24 down to -126"),
    Constant("STDP_CTL_WORDS", "u32", 176, "words of the ctl buffer"),
    Constant("STDP_DRIVEN", "u32", 0x80000000, "bit of a plastic synapse's meta word: its source is mp-driven"),
)

_WORD_TYPES = ("u32", "f32")
_PAD_TO = 4  # words: a uniform struct's size is kept a multiple of 16 bytes


def _padded(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    pad = tuple(Field(f"pad{i}", "u32") for i in range(-len(fields) % _PAD_TO))
    return fields + pad


HEADER_FIELDS: tuple[Field, ...] = _padded(HEADER)  # as in the WGSL struct, padding included
HEADER_WORDS = len(HEADER_FIELDS)
HEADER_INDEX: dict[str, int] = {f.name: i for i, f in enumerate(HEADER_FIELDS)}

# the Python side of the tables: one name per constant and per header field (H_ + FIELD); a name
# the tables lose fails here, at import
VALUE: dict[str, int | float] = {c.name: c.value for c in CONSTANTS}
NONE = int(VALUE["NONE"])
WG = int(VALUE["WG"])
MAX_DIM = int(VALUE["MAX_DIM"])
W_CAND_CTR = int(VALUE["W_CAND_CTR"])
W_CAND_N = int(VALUE["W_CAND_N"])
W_CAND_FULL = int(VALUE["W_CAND_FULL"])
CAND_BASE = int(VALUE["CAND_BASE"])
SLOT_HEADER = int(VALUE["SLOT_HEADER"])
BLOCK_NEURONS = int(VALUE["BLOCK_NEURONS"])
FIRED_PER_WG = int(VALUE["FIRED_PER_WG"])
FULL_NEURONS = int(VALUE["FULL_NEURONS"])
COUNT_BITS = int(VALUE["COUNT_BITS"])
HASH_MULT = int(VALUE["HASH_MULT"])
HEADER_STRIDE = int(VALUE["HEADER_STRIDE"])
W_SCALE_INV = int(VALUE["W_SCALE_INV"])
STDP_GRID_PRE = int(VALUE["STDP_GRID_PRE"])
STDP_DIRECT_GRID = int(VALUE["STDP_DIRECT_GRID"])
STDP_GRID_WORDS = int(VALUE["STDP_GRID_WORDS"])
STDP_UPDATE_NEURONS = int(VALUE["STDP_UPDATE_NEURONS"])
STDP_COMMIT_NEURONS = int(VALUE["STDP_COMMIT_NEURONS"])
STDP_REQUANT_ROWS = int(VALUE["STDP_REQUANT_ROWS"])
STDP_MAXW = int(VALUE["STDP_MAXW"])
STDP_KCUR = int(VALUE["STDP_KCUR"])
STDP_SCUR = int(VALUE["STDP_SCUR"])
STDP_SHIFT = int(VALUE["STDP_SHIFT"])
STDP_LCNT = int(VALUE["STDP_LCNT"])
STDP_NSTEPS = int(VALUE["STDP_NSTEPS"])
STDP_KSNAP = int(VALUE["STDP_KSNAP"])
STDP_SSNAP = int(VALUE["STDP_SSNAP"])
STDP_NSNAP = int(VALUE["STDP_NSNAP"])
STDP_STEPS = int(VALUE["STDP_STEPS"])
STDP_MAX_STEPS = int(VALUE["STDP_MAX_STEPS"])
STDP_CTL_WORDS = int(VALUE["STDP_CTL_WORDS"])
STDP_DRIVEN = int(VALUE["STDP_DRIVEN"])

H_BURST = HEADER_INDEX["burst"]
H_SEQ = HEADER_INDEX["seq"]
H_SALT = HEADER_INDEX["salt"]
H_APPEND = HEADER_INDEX["append"]
H_SLOT = HEADER_INDEX["slot"]
H_PREV_SLOT = HEADER_INDEX["prev_slot"]
H_N_NEURONS = HEADER_INDEX["n_neurons"]
H_EXT_OFF = HEADER_INDEX["ext_off"]
H_EXT_N = HEADER_INDEX["ext_n"]
H_FORCED_OFF = HEADER_INDEX["forced_off"]
H_FORCED_N = HEADER_INDEX["forced_n"]
H_POWER = HEADER_INDEX["power"]
H_POWER_EXT = HEADER_INDEX["power_ext"]
H_HASH_MASK = HEADER_INDEX["hash_mask"]
H_HASH_SHIFT = HEADER_INDEX["hash_shift"]
H_MAX_PROBE = HEADER_INDEX["max_probe"]
H_DRIVE_OFF = HEADER_INDEX["drive_off"]
H_DRIVE_LEN = HEADER_INDEX["drive_len"]
H_DRIVE_START = HEADER_INDEX["drive_start"]
H_DRIVE_N = HEADER_INDEX["drive_n"]
H_DRIVE_POT = HEADER_INDEX["drive_pot"]
H_WIDE_OFF = HEADER_INDEX["wide_off"]
H_BITS_OFF = HEADER_INDEX["bits_off"]
H_BCNT_OFF = HEADER_INDEX["bcnt_off"]
H_FMP_OFF = HEADER_INDEX["fmp_off"]
H_NBLK = HEADER_INDEX["nblk"]
H_SINCE = HEADER_INDEX["since"]
H_ROW_STRIDE = HEADER_INDEX["row_stride"]
H_ZERO = HEADER_INDEX["zero"]


def _check() -> None:
    """The tables' own invariants (raised at import, also under python -O)."""
    problems = [f"Header.{f.name}: one word per field (u32 or f32), not {f.type}"
                for f in HEADER_FIELDS if f.type not in _WORD_TYPES]
    problems += [f"{c.name}: a u32 (0 .. 2^32-1) or an f32, not {c.type} {c.value!r}" for c in CONSTANTS
                 if c.type not in _WORD_TYPES or (c.type == "u32" and not 0 <= int(c.value) <= 0xFFFFFFFF)]
    if len(HEADER_INDEX) != HEADER_WORDS:
        problems.append("Header field names must be unique")
    if len(VALUE) != len(CONSTANTS):
        problems.append("constant names must be unique")
    if HEADER_WORDS * 4 > HEADER_STRIDE:
        problems.append(f"a burst header ({HEADER_WORDS * 4} bytes) must fit its uniform row ({HEADER_STRIDE})")
    if BLOCK_NEURONS != 32 * WG:  # fire_compact: one invocation per bitmask word of a block
        problems.append("a fire block must be one fire_compact workgroup of bitmask words (32 x WG neurons)")
    if WG % FIRED_PER_WG:
        problems.append("propagation splits a workgroup into FIRED_PER_WG equal groups")
    if WG % STDP_UPDATE_NEURONS or WG % STDP_COMMIT_NEURONS or WG % STDP_REQUANT_ROWS:
        problems.append("the STDP kernels split a workgroup into equal groups of lanes")
    if (SUM_LIMIT - 1) << COUNT_BITS > 2**31 - 2**COUNT_BITS:
        problems.append("an FCL sum word (|sum| < SUM_LIMIT, times 2^COUNT_BITS, plus a count) must fit an i32")
    if W_SCALE_INV >= CAND_BASE:
        problems.append("work[W_SCALE_INV] must lie among the counters before the candidate list")
    if STDP_STEPS + STDP_MAX_STEPS > STDP_CTL_WORDS or STDP_NSTEPS >= STDP_STEPS:
        problems.append("the STDP ctl words must fit the ctl buffer")
    if problems:
        raise ValueError("feagi_burst/backends/wgpu/layout.py: " + "; ".join(problems))


_check()


def wgsl() -> str:
    """The WGSL the loader pastes at `//!generated layout`: the constants, then `struct Header`."""
    lines = ["// generated from feagi_burst/backends/wgpu/layout.py: change the tables there, not here"]
    for c in CONSTANTS:
        if c.type == "f32":
            value = repr(float(c.value))
        else:
            value = f"0x{c.value:x}u" if c.value > 0xFFFF else f"{c.value}u"
        lines.append(f"const {c.name}: {c.type} = {value};" + (f"  // {c.comment}" if c.comment else ""))
    lines += ["", "struct Header {"]
    for f in HEADER_FIELDS:
        lines.append(f"    {f.name}: {f.type}," + (f"  // {f.comment}" if f.comment else ""))
    lines.append("};")
    return "\n".join(lines) + "\n"
