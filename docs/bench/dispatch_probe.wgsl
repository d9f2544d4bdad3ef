// dispatch_probe.wgsl: the kernels of docs/bench/dispatch_probe.py, which measures what a dispatch
// and a scattered atomic cost on this wgpu stack (not part of the engine).
//
// Bindings:
//   @group(0) @binding(0) storage, rw    acc  array<atomic<i32>>: accumulator words
//   @group(0) @binding(1) storage, read  ev   array<vec2<u32>>: events (target, value)
//   @group(0) @binding(2) uniform        P    Probe: event count, target stride, stamp or not
//   @group(0) @binding(3) storage, rw    marks  array<atomic<u32>>: stamps or a candidate bitmask
//   @group(0) @binding(4) storage, rw    plain  array<Mixed>: an FCL whose stamp is a plain word
//   @group(1) @binding(0) storage, rw    grid_out  array<u32>: an indirect grid (write_grid)
// Dispatch: 1-D (noop, touch) or 2-D past 65535 workgroups (scatter, dense).

struct Probe {
    n: u32,       // events (scatter) or neurons (touch, dense)
    stride: u32,  // words between two targets' accumulators (1: a dense i32 array, 4: a 16-byte struct)
    stamp: u32,   // 1: also store a stamp word beside each accumulator (as propagation does)
    seq: u32,
};

@group(0) @binding(0) var<storage, read_write> acc: array<atomic<i32>>;
@group(0) @binding(1) var<storage, read> ev: array<vec2<u32>>;
@group(0) @binding(2) var<uniform> P: Probe;

struct Mixed {
    q: atomic<i32>,
    stamp: u32,
    sens: f32,
    forced: u32,
};

@group(0) @binding(3) var<storage, read_write> marks: array<atomic<u32>>;
@group(0) @binding(4) var<storage, read_write> plain: array<Mixed>;

@compute @workgroup_size(256)
fn noop() {
}

@compute @workgroup_size(256)
fn touch(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < P.n) {
        atomicAdd(&acc[i * P.stride], 1);
    }
}

// Read and clear every accumulator (the dense half of a burst without its model).
@compute @workgroup_size(256)
fn dense(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < P.n) {
        let q = atomicLoad(&acc[i * P.stride]);
        if (q != 0) {
            atomicStore(&acc[i * P.stride], 0);
        }
    }
}

// P.stamp picks how a target is marked besides its sum: 0 not at all, 1 an atomic stamp in the
// word after its accumulator (propagation's layout), 2 an atomic stamp in a separate dense array,
// 3 a bit in a bitmask (atomicOr), 4 a plain stamp store in a 16-byte entry of its own buffer.
@compute @workgroup_size(256)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < P.n) {
        let e = ev[i];
        if (P.stamp == 4u) {
            atomicAdd(&plain[e.x].q, bitcast<i32>(e.y));
            plain[e.x].stamp = P.seq;
            return;
        }
        atomicAdd(&acc[e.x * P.stride], bitcast<i32>(e.y));
        if (P.stamp == 1u) {
            atomicStore(&acc[e.x * P.stride + 1u], bitcast<i32>(P.seq));
        } else if (P.stamp == 2u) {
            atomicStore(&marks[e.x], P.seq);
        } else if (P.stamp == 3u) {
            atomicOr(&marks[e.x >> 5u], 1u << (e.x & 31u));
        }
    }
}

// The indirect-dispatch cases: write_grid (one invocation) writes a grid of one workgroup into
// `grid_out`, which the next dispatch reads as its indirect arguments (as a burst's fire_compact
// writes the next propagation's grid).
@group(1) @binding(0) var<storage, read_write> grid_out: array<u32>;

@compute @workgroup_size(1)
fn write_grid() {
    grid_out[0] = 1u;
    grid_out[1] = 1u;
    grid_out[2] = 1u;
}
