// args.wgsl: the indirect-dispatch argument buffer, shared by stage_input, fire_compact and
// dynamics_args.
// Not an entry point (pasted by `//!include args.wgsl`).
//   @group(1) @binding(0) storage, rw  args  array<u32>: [0..3) propagation grid, [4..7) dynamics grid

//!include grid.wgsl

@group(1) @binding(0) var<storage, read_write> args: array<u32>;

// Write the grid of n workgroups (grid_of) at args[at..at+3).
fn write_grid(n: u32, at: u32) {
    let g = grid_of(n);
    args[at] = g.x;
    args[at + 1u] = g.y;
    args[at + 2u] = g.z;
}
