"""The GPU backend: SPEC.md section 2 in WGSL compute shaders on wgpu-py, bit-exact with the CPU backend.

Modules, bottom up (each says more in its docstring):

- `layout`: the one table of the burst Header fields and the `work` buffer constants, from which
  the shaders' `struct Header` / `const` lines and the host's `H_*` indices are generated;
- `shaders`: shader text loading, `//!include` expansion and the generated layout;
- `runtime`: the wgpu import, `probe_adapters`, `Native` (direct wgpu-native calls), `Device`
  (device and queue; `Device.call` turns every wgpu error into one BackendError; `Device.program`
  makes every pipeline) and `Recorder` (one command buffer);
- `hashing`: the synapse hash table source neuron -> (start, count);
- `params`: the neuron parameter rows;
- `scheduler`: batches of bursts, submitted and read back (submit / collect);
- `backend`: `GPUBackend` (load, state, set_state; the burst pipeline from `scheduler`).

Importing this package does not import wgpu: that happens when a device is made or probed.
"""
from __future__ import annotations

from feagi_burst.backends.base import BackendError
from feagi_burst.backends.wgpu.backend import GPUBackend
from feagi_burst.backends.wgpu.runtime import AdapterDescription, probe_adapters

__all__ = ["AdapterDescription", "BackendError", "GPUBackend", "probe_adapters"]
