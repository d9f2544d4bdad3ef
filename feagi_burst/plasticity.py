"""STDP, as FEAGI learns (SPEC.md section 2 step 5): the plastic synapses, their lazy updates,
their state, and reading them (API, checkpoints). The CPU backend runs the update in
feagi_burst/backends/cpu_plasticity.py, the GPU in shaders/stdp*.wgsl
(feagi_burst/backends/wgpu/plasticity.py); both give the same bits.

The rule, per plastic area pair (A, B) with window W, steps dp and dm (genome.plasticity), at the
end of burst b >= W, for EVERY synapse s -> d with s in A and d in B:

    pre  = s fired in a burst of [b-W+1, b]      post = d fired in a burst of [b-W+1, b]
    both: w += dp        exactly one: w = max(0, w - dm)        neither: unchanged

in f32, no ceiling, forced fires counting as fires. The deliveries of burst b (the contributions
summed at burst b+1) use the weights as they were BEFORE burst b's update.

Lazy updates, as the GPU runs them (the cost of a burst: the fire set's plastic synapses; never a
pass over a window's neurons, an area or the brain; the CPU updates eagerly over a window list,
which is faster there: backends/cpu_plasticity.py says why, and gives the same bits). Each neuron
of the plastic span (the neurons with plastic synapses) keeps `stamps`: the last burst it fired in
(0: never). Between two fires of its endpoints a synapse
sees no new spike, so its windows only expire: from burst E + 1 on (E its last event), it is first
in both windows (LTP each burst), then in one (LTD each burst), then in none. So a synapse is
brought up to date only when its source or its target fires (at the end of that burst), by
replaying those bursts one by one from the two stamps (at most W - 1 of them, then the burst's own
step): the same f32 operations in the same order as updating it every burst, so the same bits.

- stored weight w[i]: synapse i's weight after the burst E_i = max(stamp of its source, stamp of
  its target, `settled`) (`settled`: the burst a backend was loaded at, whose state had every
  weight up to date);
- per burst b, for each fired neuron n of the span: its outgoing synapses whose target did not fire
  in b, and its incoming ones (whose target, n, did): replay to b - 1 from the stamps before b (for
  a neuron that fired in b its previous stamp, kept beside it), commit (below) when the source fired
  in b, then burst b's step;
- reading the weights (state, `Engine.synapses`, checkpoints) replays every synapse to the last
  burst (`materialize`, a copy: the run itself is not changed by being looked at); an eager
  backend's weights are up to date already (settled = the last burst: nothing to replay).

Overflow: weights grow without bound, and the fixed-point sums (fixed_point.py) must stay exact.
The plastic weights are held under a cap 2^k; a table made at load gives, for every k, the
largest scale that keeps every sum below 2^24 with plastic weights up to 2^k and every other
weight as it is (fixed_point.plastic_scale_table). Each burst's commits are checked: when one
passes 2^k (before the next burst delivers it), k becomes that weight's exponent and, where the
table's scale is lower, every contribution word is requantised: plastic ones are recomputed from
their committed weights, the others divided by 2^d with rounding half to even
(fixed_point.shift_words), and the sums' f32 factor 2^-scale changes with them. Only integer and
power-of-two operations, decided from the weights alone: the CPU and the GPU requantise at the same
burst to the same words (on the GPU without a readback: the decision and the scale are device
words, made by the requantisation kernel's own workgroups, which return at once on every other
burst). The cap only rises and the scale only falls: at most a few dozen requantisations in a
run, each a pass over the synapse table; every other burst costs only the check (on the GPU one
dispatch of workgroups that decide and return). The scale exponents taken are part
of the state (`scale_steps`), so a resumed run rebuilds exactly the same words. Resolution falls as
weights grow (2^-scale; reported by `Engine.resolution`): the price of exact sums with unbounded
weights.

A synapse whose weight reached 0 still makes its target a fire candidate (so the target leaks),
as FEAGI does: recorded in tests/data/feagi-reference/stdp/w0leak (docs/feagi-findings.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import prange

from feagi_burst.backends.compiled import helper, kernel
from feagi_burst.brain import Brain

from feagi_burst.fixed_point import (
    SynapseTables, cap_exponent, expand_ranges, plastic_scale_table,
)

F32_MIN_NORMAL = np.float32(2.0**-126)
F32_ZERO = np.float32(0.0)


@dataclass
class PlasticState:
    """The learned state of a brain's plastic synapses (`NeuronState.plastic`).

    weights: f32 [P], every plastic synapse's weight (after the last burst's update in a reported
        state, `canonical`; a backend's own is lazy: the module docstring), plastic order
        (the synapse table's order, i.e. by source); `PlasticLayout.pair_names`/`pair_of` say which
        pair each belongs to, `Engine.synapses` returns them by pair with coordinates.
    committed: f32 [P], the weights of the words (for a source that fired in the last burst: its
        synapses' weights before that burst's update, which the next burst delivers).
    stamps: u32 [span], per neuron of the plastic span, the last burst it fired in (0: never).
    cap_exp, scale_exp: the cap 2^cap_exp on plastic weights and the current scale exponent.
    scale_steps: every scale exponent since compile time, the first being the table's own.
    """

    weights: np.ndarray
    committed: np.ndarray
    stamps: np.ndarray
    cap_exp: int
    scale_exp: int
    scale_steps: tuple[int, ...] = field(default_factory=tuple)

    def copy(self) -> PlasticState:
        return PlasticState(self.weights.copy(), self.committed.copy(), self.stamps.copy(), self.cap_exp,
                            self.scale_exp, tuple(self.scale_steps))

    @property
    def resolution(self) -> float:
        return 2.0 ** -self.scale_exp


@dataclass
class PlasticLayout:
    """Where the plastic synapses are, and everything both backends need to update them.

    Built once per (brain, synapse table) by `plastic_layout`. Per plastic synapse i (plastic
    order = the table's order): `index` (its synapse index), `src`, `tgt`, `pair`, `unit` (signed
    f32 contribution per weight unit before the scale), `driven` (mp-driven source). Per neuron of
    the span [lo, hi): `out_off` (its outgoing plastic synapses i in out_off[n-lo]..out_off[n-lo+1])
    and `in_off` / `in_idx` (its incoming ones, i = in_idx[k]). Per pair: `window`, `dp`, `dm`.
    """

    pairs: list[Any]  # genome.plasticity.PlasticPair, resolved to Brain.areas ids
    pair_names: list[str]  # "src>dst" (cortical ids as in Brain.areas)
    pair_areas: np.ndarray  # int [pairs, 2]: (source area index, destination area index)
    window: np.ndarray  # u32 [pairs]
    dp: np.ndarray  # f32 [pairs]
    dm: np.ndarray  # f32 [pairs]
    index: np.ndarray  # int64 [P]
    src: np.ndarray  # int32 [P] (neuron ids below 2^31)
    tgt: np.ndarray  # int32 [P]
    pair: np.ndarray  # int32 [P]
    unit: np.ndarray  # f32 [P]
    driven: np.ndarray  # bool [P]
    lo: int
    hi: int
    out_off: np.ndarray  # int64 [span + 1]
    in_off: np.ndarray  # int64 [span + 1]
    in_idx: np.ndarray  # int32 [P]
    in_src: np.ndarray  # int32 [P]: src[in_idx] (the update reads them in this order)
    in_pair: np.ndarray  # int32 [P]: pair[in_idx]
    in_pos: np.ndarray  # int32 [P]: the inverse of in_idx (synapse i is incoming slot in_pos[i])
    relevant: np.ndarray  # bool [span]: has plastic synapses
    driven_src: np.ndarray  # bool [N]: the neuron's area is mp-driven (how requantisation reads its words)
    scale_table: np.ndarray  # i32 [CAP_EXPONENTS]
    base_scale_exp: int  # the synapse table's own
    initial_weights: np.ndarray  # f32 [P]

    @property
    def size(self) -> int:
        return int(self.index.size)

    @property
    def span(self) -> int:
        return self.hi - self.lo

    @property
    def wmax(self) -> int:
        return int(self.window.max()) if self.window.size else 1

    def pair_index(self, name: str) -> int:
        return self.pair_names.index(name)

    def pair_members(self, p: int) -> np.ndarray:
        """Plastic indices of pair p's synapses, in table order."""
        cache = self.__dict__.setdefault("_members", {})
        if p not in cache:
            cache[p] = np.flatnonzero(self.pair == p)
        return cache[p]

    def initial_state(self) -> PlasticState:
        w = self.initial_weights.copy()
        k = cap_exponent(float(w.max()) if w.size else 0.0)
        s = int(self.scale_table[k])
        steps = (self.base_scale_exp,) + ((s,) if s < self.base_scale_exp else ())
        return PlasticState(w, w.copy(), np.zeros(self.span, np.uint32), k, s, steps)

    def check_state(self, st: PlasticState) -> None:
        """Refuse a state of another layout (ValueError naming what differs)."""
        if st.weights.shape != (self.size,) or st.committed.shape != (self.size,):
            raise ValueError(f"plastic state holds {st.weights.shape[0]} weights, the brain has {self.size} "
                             "plastic synapses")
        if st.stamps.shape != (self.span,):
            raise ValueError(f"plastic state holds {st.stamps.shape[0]} last-fire stamps, expected {self.span}")
        if not st.scale_steps or st.scale_steps[0] != self.base_scale_exp or st.scale_steps[-1] != st.scale_exp \
                or any(b >= a for a, b in zip(st.scale_steps, st.scale_steps[1:])):
            raise ValueError(f"plastic state's scale steps {list(st.scale_steps)} do not start at this brain's "
                             f"scale {self.base_scale_exp}, fall, and end at {st.scale_exp}")


def resolve_pairs(brain: Brain) -> list[Any]:
    """The brain's plastic pairs with area ids as in Brain.areas, the last of a repeated pair winning."""
    out: dict[tuple[int, int], Any] = {}
    for p in brain.plasticity:
        try:
            a, b = brain.area(p.src_area), brain.area(p.dst_area)
        except KeyError:
            continue
        if int(p.window) < 1:
            continue
        out[(a.index, b.index)] = p
    return list(out.values())


def plastic_layout(brain: Brain, tables: SynapseTables) -> PlasticLayout | None:
    """The plastic synapses of `brain` (None when it has none), cached on `tables`."""
    key = (tuple(brain.plasticity), id(brain.synapses))
    cached = getattr(tables, "_plastic_layout", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    layout = _build_layout(brain, tables)
    tables._plastic_layout = (key, layout)  # type: ignore[attr-defined]
    return layout


def _build_layout(brain: Brain, tables: SynapseTables) -> PlasticLayout | None:
    pairs = resolve_pairs(brain)
    if not pairs:
        return None
    syn = brain.synapses
    offsets = tables.offsets
    parts: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    areas = []
    for k, p in enumerate(pairs):
        a, b = brain.area(p.src_area), brain.area(p.dst_area)
        areas.append((a.index, b.index))
        lo, hi = int(offsets[a.first_neuron]), int(offsets[a.neuron_stop])  # the source area's synapses
        t = syn.target[lo:hi]
        hit = np.flatnonzero((t >= b.first_neuron) & (t < b.neuron_stop)) + lo
        parts.append(hit)
        kinds.append(np.full(hit.size, k, np.int32))
    index = np.concatenate(parts).astype(np.int64)
    if index.size == 0:
        return None
    pair = np.concatenate(kinds)
    if index.size > 1 and not bool(np.all(index[1:] > index[:-1])):  # one pair (or one source area): in order
        order = np.argsort(index, kind="stable")
        index, pair = index[order], pair[order]
    src = syn.source[index].astype(np.int64)
    tgt = syn.target[index].astype(np.int64)
    if max(int(src.max()), int(tgt.max())) >= 2**31 or index.size >= 2**31:
        raise ValueError("STDP: plastic synapses or neuron ids beyond 2^31")

    # what one unit of weight contributes (compile_tables' unit, signed), and the bound unit
    n = brain.neuron_count
    area_of = brain.neurons.cortical_area
    psp = np.array([a.psp for a in brain.areas], np.float64)
    uniform = np.array([a.psp_uniform for a in brain.areas], bool)
    driven_area = np.asarray(tables.mp_driven_area, bool)
    fan_out = (offsets[src + 1] - offsets[src]).astype(np.float64)
    sa = area_of[src]
    divisor = np.where(~uniform[sa] & (fan_out > 1), fan_out, 1.0)
    driven = driven_area[sa]
    unit64 = np.where(driven, 1.0, psp[sa]) / divisor
    unit = np.where(syn.inhibitory[index], -unit64, unit64).astype(np.float32)
    bound_unit = np.abs(np.where(driven, np.asarray(tables.mp_cap, np.float64)[sa], psp[sa])) / divisor
    weights = np.asarray(syn.weight[index], np.float32)
    bound_plastic = np.bincount(tgt, weights=weights.astype(np.float64) * bound_unit, minlength=n)
    plastic_unit = np.bincount(tgt, weights=bound_unit, minlength=n)
    table = plastic_scale_table(tables, bound_plastic, plastic_unit)

    lo = int(min(src.min(), tgt.min()))
    hi = int(max(src.max(), tgt.max())) + 1
    span = hi - lo
    out_off = np.zeros(span + 1, np.int64)
    np.cumsum(np.bincount(src - lo, minlength=span), out=out_off[1:])
    in_off = np.zeros(span + 1, np.int64)
    np.cumsum(np.bincount(tgt - lo, minlength=span), out=in_off[1:])
    in_idx = _incoming(tgt - lo, in_off)  # = argsort(tgt, kind="stable"), by counts: 10M in 0.1 s, not 1.5
    relevant = (np.diff(out_off) > 0) | (np.diff(in_off) > 0)
    return PlasticLayout(
        pairs=pairs, pair_names=[f"{brain.areas[a].cortical_id}>{brain.areas[b].cortical_id}" for a, b in areas],
        pair_areas=np.array(areas, np.int64).reshape(-1, 2),
        window=np.array([int(p.window) for p in pairs], np.uint32),
        dp=np.array([p.dp for p in pairs], np.float32), dm=np.array([p.dm for p in pairs], np.float32),
        index=index, src=src.astype(np.int32), tgt=tgt.astype(np.int32), pair=pair, unit=unit, driven=driven,
        lo=lo, hi=hi, out_off=out_off, in_off=in_off, in_idx=in_idx, in_src=src[in_idx].astype(np.int32),
        in_pair=pair[in_idx].astype(np.int32), in_pos=_inverse(in_idx), relevant=relevant, driven_src=np.ascontiguousarray(driven_area[area_of]),
        scale_table=table,
        base_scale_exp=int(tables.scale_exp), initial_weights=weights.copy())


@kernel()
def _incoming(t, off):  # type: ignore[no-untyped-def]
    """The plastic synapses by target (t: target - lo), each target's in plastic order: a counting sort."""
    pos = off[:-1].copy()
    out = np.empty(t.size, np.int32)
    for i in range(t.size):
        out[pos[t[i]]] = i
        pos[t[i]] += 1
    return out


def _inverse(perm: np.ndarray) -> np.ndarray:
    inv = np.empty(perm.size, np.int32)
    inv[perm] = np.arange(perm.size, dtype=np.int32)
    return inv


# -- the state every backend reports ----------------------------------------------------------
@helper
def replay(w, a, c, t0, t1, win, dp, dm):  # type: ignore[no-untyped-def]
    """Synapse weight w after the bursts t0..t1 of the rule with the source's last fire `a` and the
    target's `c` (0: never) fixed over them: LTP while both are in their window, then LTD while
    one is, in the order and f32 operations of updating it burst by burst. Bursts before the
    window (t < win) change nothing. The burst's own step is replay(w, a, c, b, b, ...) with the
    stamp of a neuron that fired in b equal to b. (The GPU's twin: stdp_common.wgsl's replay.)"""
    t = max(t0, win)
    while t <= t1:
        pre = a != 0 and t - a < win
        post = c != 0 and t - c < win
        if pre and post:
            w = w + dp
        elif pre or post:
            x = w - dm
            w = x if x > F32_ZERO else F32_ZERO
        else:
            break  # the windows only expire: nothing changes after this burst
        t += 1
    return w


MATERIALIZE_ROWS = 4096  # source rows a parallel task; equal counts, whatever each row holds


@kernel(parallel=True)
def _materialize(w, out_off, tgt, pair, lo, stamps, settled, b, window, dp, dm, out):  # type: ignore[no-untyped-def]
    """out[i] = synapse i's weight after burst b, replayed from its stored weight (module docstring).
    Row by row (the plastic order is by source, out_off its rows): a source's stamp is read once
    for its row, and blocks of rows go to the threads: a pass over the 1M bench's 10M plastic
    synapses (which every GPU sync point, state(), checkpoint and --record-weights pays) took 0.39 s
    on one thread of the 2-core development machine, 0.22-0.26 s on both."""
    span = out_off.size - 1
    for blk in prange((span + MATERIALIZE_ROWS - 1) // MATERIALIZE_ROWS):
        for n in range(blk * MATERIALIZE_ROWS, min(span, (blk + 1) * MATERIALIZE_ROWS)):
            a = np.int64(stamps[n])
            for i in range(out_off[n], out_off[n + 1]):
                c = np.int64(stamps[tgt[i] - lo])
                p = pair[i]
                e = max(a, c, settled)
                out[i] = replay(w[i], a, c, e + 1, b, np.int64(window[p]), dp[p], dm[p])


def materialize(layout: PlasticLayout, st: PlasticState, settled: int, burst: int) -> np.ndarray:
    """Every plastic weight after `burst`, from a backend's lazy state loaded at burst `settled`."""
    out = np.empty(layout.size, np.float32)
    _materialize(st.weights, layout.out_off, layout.tgt, layout.pair, np.int64(layout.lo), st.stamps,
                 np.int64(settled), np.int64(burst), layout.window, layout.dp, layout.dm, out)
    return out


def canonical(layout: PlasticLayout, st: PlasticState, burst: int | None, settled: int,
              copy: bool = True) -> PlasticState:
    """The state every backend reports after `burst` (None: none run since it was loaded, at burst
    `settled`) from its lazy one: every weight replayed to `burst`, and `committed` = `weights`
    except for synapses whose source fired in `burst` (the next burst delivers those with their
    committed, pre-update weights). A word of another source is read only after that source fires
    again, when its synapses are committed anew, so which weight it holds now is no one's concern.
    `copy=False` reuses `st`'s arrays (a state just downloaded)."""

    out = st.copy() if copy else st
    if burst is None or not layout.size:
        return out
    if settled < burst:  # an eager backend (settled = burst) has nothing to replay
        out.weights = materialize(layout, st, settled, burst)
    # only the rows of the sources that fired in `burst` keep their committed words: found from
    # the span's stamps, not from a gather over every plastic synapse (10M of them: a sync point)
    fired = np.flatnonzero(out.stamps == np.uint32(burst & 0xFFFFFFFF))
    starts = layout.out_off[fired]
    keep = expand_ranges(starts, layout.out_off[fired + 1] - starts)
    committed = out.weights.copy()
    committed[keep] = st.committed[keep]
    out.committed = committed
    return out


# -- reading synapses and weights -------------------------------------------------------------------
@dataclass
class Synapses:
    """The synapses from one area to another (`Engine.synapses`), in the synapse table's order.

    source, target: neuron ids; source_xyz, target_xyz: u16 [k, 3] voxel coordinates in their
    areas; weight: f32 magnitudes (after the last burst's STDP update when the pair is plastic);
    inhibitory: bool. `plastic` says whether STDP changes them.
    """

    src_area: str
    dst_area: str
    source: np.ndarray
    target: np.ndarray
    source_xyz: np.ndarray
    target_xyz: np.ndarray
    weight: np.ndarray
    inhibitory: np.ndarray
    plastic: bool

    def __len__(self) -> int:
        return int(self.source.size)


def pair_synapses(brain: Brain, tables: SynapseTables, state: PlasticState | None, src: str, dst: str) -> Synapses:
    """Every synapse from area `src` to area `dst` (ids or names), with current weights."""
    a, b = brain.area(src), brain.area(dst)
    syn = brain.synapses
    lo, hi = int(tables.offsets[a.first_neuron]), int(tables.offsets[a.neuron_stop])
    t = syn.target[lo:hi]
    idx = np.flatnonzero((t >= b.first_neuron) & (t < b.neuron_stop)) + lo
    weight = np.asarray(syn.weight[idx], np.float32).copy()
    layout = plastic_layout(brain, tables)
    plastic = False
    if layout is not None:
        name = f"{a.cortical_id}>{b.cortical_id}"
        if name in layout.pair_names:
            plastic = True
            if state is not None:
                weight = state.weights[layout.pair_members(layout.pair_index(name))].copy()
    s, d = syn.source[idx], syn.target[idx]
    nb = brain.neurons

    def xyz(ids: np.ndarray) -> np.ndarray:
        return np.stack([nb.x[ids], nb.y[ids], nb.z[ids]], axis=1) if ids.size else np.zeros((0, 3), nb.x.dtype)
    return Synapses(a.cortical_id, b.cortical_id, s.copy(), d.copy(), xyz(s), xyz(d), weight,
                    np.asarray(syn.inhibitory[idx], bool).copy(), plastic)


def pair_weights(layout: PlasticLayout, state: PlasticState) -> dict[str, np.ndarray]:
    """{"src>dst": f32 weights of that pair's synapses, table order} for every plastic pair."""
    return {name: state.weights[layout.pair_members(p)].copy() for p, name in enumerate(layout.pair_names)}


# -- checkpoints: the plastic state by name ---------------------------------------------------------
PREFIX = "plastic:"


def state_arrays(layout: PlasticLayout, st: PlasticState) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A PlasticState as named arrays and a meta record (checkpoint.py writes them):
    `plastic:weights:<src>><dst>` and `plastic:committed:<src>><dst>` per plastic pair (f32, the
    pair's synapses in table order), `plastic:stamps` (u32 per neuron of ids [lo, hi): the last
    burst it fired in, 0 never); meta: pairs, lo, hi, cap_exp, scale_exp, scale_steps."""
    arrays: dict[str, np.ndarray] = {}
    for p, name in enumerate(layout.pair_names):
        m = layout.pair_members(p)
        arrays[f"{PREFIX}weights:{name}"] = st.weights[m]
        arrays[f"{PREFIX}committed:{name}"] = st.committed[m]
    arrays[f"{PREFIX}stamps"] = st.stamps
    meta = {"pairs": list(layout.pair_names), "lo": layout.lo, "hi": layout.hi, "cap_exp": int(st.cap_exp),
            "scale_exp": int(st.scale_exp), "scale_steps": [int(s) for s in st.scale_steps]}
    return arrays, meta


def expected_arrays(layout: PlasticLayout) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Name -> (shape, dtype) of every array `state_arrays` writes for this layout."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    for p, name in enumerate(layout.pair_names):
        k = int(layout.pair_members(p).size)
        out[f"{PREFIX}weights:{name}"] = ((k,), np.dtype(np.float32))
        out[f"{PREFIX}committed:{name}"] = ((k,), np.dtype(np.float32))
    out[f"{PREFIX}stamps"] = ((layout.span,), np.dtype(np.uint32))
    return out


def state_from_arrays(layout: PlasticLayout, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> PlasticState:
    """The PlasticState `state_arrays` wrote (ValueError when it does not fit this layout)."""
    if list(meta.get("pairs", [])) != list(layout.pair_names) or int(meta.get("lo", -1)) != layout.lo \
            or int(meta.get("hi", -1)) != layout.hi:
        raise ValueError(f"plastic pairs {meta.get('pairs')} differ from this brain's {layout.pair_names}")
    w = np.zeros(layout.size, np.float32)
    c = np.zeros(layout.size, np.float32)
    for p, name in enumerate(layout.pair_names):
        m = layout.pair_members(p)
        w[m] = arrays[f"{PREFIX}weights:{name}"]
        c[m] = arrays[f"{PREFIX}committed:{name}"]
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(c)) and (w >= 0).all() and (c >= 0).all()):
        raise ValueError("plastic weights must be finite and >= 0")
    st = PlasticState(w, c, np.asarray(arrays[f"{PREFIX}stamps"], np.uint32).copy(), int(meta["cap_exp"]),
                      int(meta["scale_exp"]), tuple(int(s) for s in meta["scale_steps"]))
    layout.check_state(st)
    if not 0 <= st.cap_exp < layout.scale_table.size:
        raise ValueError(f"cap exponent {st.cap_exp} out of range")
    return st
