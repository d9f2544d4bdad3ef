// grid.wgsl: the workgroup grid of an indirect dispatch, shared by args.wgsl and compact_stdp.wgsl.
// Not an entry point (pasted by `//!include grid.wgsl`; MAX_DIM is common.wgsl's, from the layout).

// The grid (x, y, z) of n workgroups: 2-D once n passes MAX_DIM, the per-dimension limit; n = 0 is
// (0, 1, 1), a dispatch of nothing. It returns the words rather than storing them because WGSL
// cannot pass a storage array to a function: each buffer's writer stores the three itself.
fn grid_of(n: u32) -> vec3<u32> {
    if (n == 0u) {
        return vec3<u32>(0u, 1u, 1u);
    }
    let x = min(n, MAX_DIM);
    return vec3<u32>(x, (n + x - 1u) / x, 1u);
}
