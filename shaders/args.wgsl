// args.wgsl: the indirect-dispatch argument buffer, shared by stage_input and dynamics_args.
// Not an entry point (pasted by `//!include args.wgsl`).
//   @group(1) @binding(0) storage, rw  args  array<u32>: [0..3) propagation grid, [4..7) dynamics grid

@group(1) @binding(0) var<storage, read_write> args: array<u32>;

// Write a grid of n workgroups at args[at..at+3): 2-D once n passes MAX_DIM, the per-dimension limit.
fn write_grid(n: u32, at: u32) {
    if (n == 0u) {
        args[at] = 0u;
        args[at + 1u] = 1u;
        args[at + 2u] = 1u;
        return;
    }
    let x = min(n, MAX_DIM);
    args[at] = x;
    args[at + 1u] = (n + x - 1u) / x;
    args[at + 2u] = 1u;
}
