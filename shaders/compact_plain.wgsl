// compact_plain.wgsl: fire_compact.wgsl's hooks for a brain without plastic pairs: nothing to do.
// Not an entry point (pasted at fire_compact's `//!include HOOKS`).

// After each invocation has written its bitmask word's fires (`bits`, neurons word*32 + bit) into
// the slot. Workgroup-uniform call.
fn compacted(word: u32, bits: u32, lid: u32) {
}

// Once per burst, when the slot header is written: `fired` fires in all.
fn burst_compacted(fired: u32) {
}
