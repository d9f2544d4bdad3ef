// stdp.wgsl: the STDP update of burst b (SPEC.md section 2 step 5), the one kernel over plastic
// synapses of a burst: over those of the neurons that fired in b (fire_compact's fired list), never
// a pass over a window, an area or the brain. Updates are lazy (plasticity.py's docstring): a
// synapse is brought up to date when its source or its target fires, by replaying the bursts since
// its last event from the stamps (stdp_common.wgsl's replay). Per fired neuron n (one group of
// LANES lanes), with pn its fire before b:
//
//   outgoing synapse n -> t whose target did not fire in b: replay to b - 1 (source pn, target its
//       last fire), commit (n fired), then burst b's step (source b);
//   incoming synapse s -> n: replay to b - 1 (source its fire before b, target pn), commit when s
//       fired in b, then burst b's step (target b);
//
// so every synapse with an endpoint firing in b is updated exactly once (by its target when the
// target fired, else by its source). The commit: a synapse whose source fired in b gets its weight
// before b's step as committed weight and contribution word where they differ; the next burst
// delivers that weight (SPEC.md step 4). Words in chunk 0 only (bound here); stdp_pre writes those
// of the other chunks from the committed weights after this kernel. The largest committed weight
// raises ctl[STDP_MAXW] (stdp_requant's decision). Nothing is written for an unchanged
// weight.
//
// A lane's outgoing and incoming synapse are one loop step: every load of both is issued before
// the arithmetic that waits for them (the coalesced words of both rows, then the random stamps
// and weights), so the two chains of random loads overlap. They touch different synapses: an
// outgoing synapse is updated here only when its target did not fire in b, an incoming one always
// has a target that did.
//
// Bindings: group 0 (common.wgsl: H), group 1 (stdp_common.wgsl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of chunk 0
//   @group(2) @binding(1) uniform      C    its synapse range
// Dispatch: direct, min(ceil(span / GROUPS), STDP_DIRECT_GRID) workgroups of GROUPS neurons, which
// loop over the fired list (its length is a device word: an indirect grid written by fire_compact
// just before would make the GPU wait for that write).

//!include common.wgsl
const STDP_GROUP: u32 = 1u;
//!include stdp_common.wgsl

@group(2) @binding(0) var<storage, read_write> syn: array<vec2<u32>>;
@group(2) @binding(1) var<uniform> C: StdpChunk;

const GROUPS: u32 = STDP_UPDATE_NEURONS;
const LANES: u32 = WG / GROUPS;

var<workgroup> wg_count: u32;
var<workgroup> wg_scale: u32;

// Commit synapse i (its source fired this burst; `old` its committed weight's bits, `mw` its meta
// word) with weight bits `w`.
fn commit(i: u32, w: u32, old: u32, mw: u32, s: i32) {
    if (old == w) {
        return;
    }
    ps[P.o_wq + i] = w;
    let at = pl[P.o_pidx + i];
    if (at >= C.base && at - C.base < C.len) {
        syn[at - C.base].y = plastic_word(i, bitcast<f32>(w), s, mw);
    }
}

// The window and steps of pair `pair`: (W, dp bits, dm bits).
fn pair_rule(pair: u32) -> vec3<u32> {
    let q = P.o_pairs + 4u * pair;
    return vec3<u32>(pl[q], pl[q + 1u], pl[q + 2u]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let b = H.burst;
    if (lid == 0u) {
        wg_count = atomicLoad(&ctl[STDP_LCNT + (H.seq & 1u)]);
        wg_scale = atomicLoad(&ctl[STDP_SCUR]);
    }
    let count = workgroupUniformLoad(&wg_count);
    let s = bitcast<i32>(wg_scale);  // written before the barrier of the uniform load
    let lane = lid % LANES;
    var cmax = 0u;  // committed weights are >= 0: their f32 bits order as their values
    for (var item = linear_wg(wid, nwg) * GROUPS + lid / LANES; item < count; item = item + nwg.x * nwg.y * GROUPS) {
        let n = ps[P.o_list + (H.seq & 1u) * P.span + item];
        let pn = ps[P.o_stamp + 2u * n + 1u];
        let oa = pl[P.o_out + n];
        let n_out = pl[P.o_out + n + 1u] - oa;
        let ia = pl[P.o_in + n];
        let n_in = pl[P.o_in + n + 1u] - ia;
        for (var j = lane; j < max(n_out, n_in); j = j + LANES) {
            // the rows' words of both sides
            let has_out = j < n_out;
            let has_in = j < n_in;
            let io = oa + j;
            let k = ia + j;
            var o = vec4<u32>(0u, 0u, 0u, 0u);  // outgoing: target, meta word, weight, committed weight
            if (has_out) {
                o = vec4<u32>(pl[P.o_tgt + io], pl[P.o_meta + io], ps[P.o_w + io], ps[P.o_wq + io]);
            }
            var e = vec3<u32>(0u, 0u, 0u);  // incoming: pair, synapse, source
            if (has_in) {
                e = vec3<u32>(pl[P.o_inpair + k], pl[P.o_inidx + k], pl[P.o_insrc + k]);
            }
            // the other ends' stamps and the incoming weight, at random
            var c = b;
            if (has_out) {
                c = ps[P.o_stamp + 2u * (o.x - P.lo)];
            }
            var st = vec2<u32>(0u, 0u);
            var wi = 0u;
            if (has_in) {
                st = stamps_of(e.z - P.lo);
                wi = ps[P.o_w + e.y];
            }
            // outgoing n -> o.x, unless the target fired in b (then its own side updates it)
            if (c != b) {
                let r = pair_rule(o.y & 0xffffu);
                let dp = bitcast<f32>(r.y);
                let dm = bitcast<f32>(r.z);
                let x = replay(bitcast<f32>(o.z), pn, c, max(max(pn, c), P.settled) + 1u, b - 1u, r.x, dp, dm);
                cmax = max(cmax, bitcast<u32>(x));
                commit(io, bitcast<u32>(x), o.w, o.y, s);
                let w = bitcast<u32>(replay(x, b, c, b, b, r.x, dp, dm));
                if (w != o.z) {
                    ps[P.o_w + io] = w;
                }
            }
            // incoming e.z -> n
            if (has_in) {
                let ii = e.y;
                let r = pair_rule(e.x);
                let dp = bitcast<f32>(r.y);
                let dm = bitcast<f32>(r.z);
                let now = st.x == b;  // the source fired in b too
                let a = select(st.x, st.y, now);
                let x = replay(bitcast<f32>(wi), a, pn, max(max(a, pn), P.settled) + 1u, b - 1u, r.x, dp, dm);
                if (now) {
                    cmax = max(cmax, bitcast<u32>(x));
                    commit(ii, bitcast<u32>(x), ps[P.o_wq + ii], pl[P.o_meta + ii], s);
                }
                let w = bitcast<u32>(replay(x, st.x, b, b, b, r.x, dp, dm));
                if (w != wi) {
                    ps[P.o_w + ii] = w;
                }
            }
        }
    }
    if (cmax != 0u) {
        atomicMax(&ctl[STDP_MAXW], cmax);
    }
}
