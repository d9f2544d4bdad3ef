"""The layout the host and the shaders share (feagi_burst/backends/wgpu/layout.py) cannot drift.

The burst Header and the `work` constants are one Python table; the WGSL `struct Header` and
`const` lines are generated from it. These tests check that the generated struct, the Python
`H_*` indices and HEADER_WORDS agree, that no shader writes by hand what the table owns, that the
loader pastes the generated text into every entry shader exactly once, and (on a real adapter)
that a compiled shader reads each Header field at the word the host writes it to.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from feagi_burst.backends.base import BackendError
from feagi_burst.backends.wgpu import layout, shaders
from feagi_burst.backends.wgpu.shaders import load_shader

SHADER_DIR = Path(__file__).resolve().parents[1] / "shaders"
ENTRY_SHADERS = ("stage_input.wgsl", "dynamics_args.wgsl", "synaptic_propagation_fcl.wgsl",
                 "synaptic_propagation.wgsl", "model_dynamics_fcl.wgsl", "model_dynamics_full.wgsl",
                 "model_dynamics_all.wgsl", "model_forced.wgsl", "fire_compact.wgsl", "state_delta.wgsl")
STRUCT = re.compile(r"struct\s+Header\s*\{(.*?)\};", re.S)
FIELD = re.compile(r"^\s*(\w+)\s*:\s*(\w+)\s*,", re.M)
CONST = re.compile(r"^\s*(?:const|override)\s+(\w+)\s*:\s*(\w+)\s*=\s*([^;]+);", re.M)


def generated_fields(text: str) -> list[tuple[str, str]]:
    structs = STRUCT.findall(text)
    assert len(structs) == 1, "exactly one struct Header"
    return FIELD.findall(structs[0])


def test_generated_struct_matches_the_python_indices() -> None:
    fields = generated_fields(layout.wgsl())
    assert fields == [(f.name, f.type) for f in layout.HEADER_FIELDS]
    assert len(fields) == layout.HEADER_WORDS
    assert layout.HEADER_WORDS % 4 == 0, "a uniform struct of 16-byte multiples"
    assert layout.HEADER_WORDS * 4 <= layout.HEADER_STRIDE
    assert all(t in ("u32", "f32") for _, t in fields), "one word per field: offset = 4 x index"
    index = {name: i for i, (name, _) in enumerate(fields)}
    h_names = {n for n in dir(layout) if n.startswith("H_")}
    # every H_ constant is a field's index, named H_ + FIELD, and every real field has one
    for n in h_names:
        assert getattr(layout, n) == index[n[2:].lower()], n
    assert {f"H_{f.name.upper()}" for f in layout.HEADER} == h_names


def test_generated_constants_match_the_python_values() -> None:
    consts = {name: (typ, value) for name, typ, value in CONST.findall(layout.wgsl())}
    assert set(consts) == {c.name for c in layout.CONSTANTS}
    for c in layout.CONSTANTS:
        typ, value = consts[c.name]
        assert typ == c.type
        assert int(value.rstrip("u"), 0) == c.value, c.name
        assert getattr(layout, c.name) == c.value, f"layout.{c.name}"
    assert layout.BLOCK_NEURONS == 1 << layout.BLOCK_SHIFT


def test_no_shader_hand_defines_what_layout_owns() -> None:
    owned = {c.name for c in layout.CONSTANTS}
    files = sorted(SHADER_DIR.glob("**/*.wgsl"))  # the neuron models' files too
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not STRUCT.search(text), f"{path.name} defines struct Header: it comes from layout.py"
        hand = {name for name, _, _ in CONST.findall(text)} & owned
        assert not hand, f"{path.name} defines {sorted(hand)}: they come from layout.py"
    common = (SHADER_DIR / "common.wgsl").read_text(encoding="utf-8")
    assert common.count("//!generated layout") == 1


@pytest.mark.parametrize("name,hooks", [(n, "compact_plain.wgsl") for n in ENTRY_SHADERS]
                         + [("fire_compact.wgsl", "compact_stdp.wgsl")])
def test_every_entry_shader_gets_the_layout_once(name: str, hooks: str) -> None:
    # model kernels need a model, fire_compact its hooks
    text = load_shader(name, {"MODEL": "models/feagi_lif.wgsl", "HOOKS": hooks})
    assert "//!generated" not in text and not re.search(r"^//!include", text, re.M)
    assert generated_fields(text) == [(f.name, f.type) for f in layout.HEADER_FIELDS]
    defined = [n for n, _, _ in CONST.findall(text)]
    for c in layout.CONSTANTS:
        assert defined.count(c.name) == 1, f"{name}: const {c.name}"


def test_placeholder_includes(monkeypatch: pytest.MonkeyPatch) -> None:
    """`//!include NAME` takes the file the caller maps NAME to (one pipeline per body)."""
    files = {"entry.wgsl": "//!include common.wgsl\n//!include MODEL\nfn main() {}\n",
             "common.wgsl": "//!generated layout\n", "a.wgsl": "fn model_a() {}\n", "b.wgsl": "fn model_b() {}\n"}
    monkeypatch.setattr(shaders, "shader_text", lambda n: files[n])
    a = load_shader("entry.wgsl", {"MODEL": "a.wgsl"})
    assert "fn model_a" in a and "fn model_b" not in a and "struct Header" in a
    assert "fn model_b" in load_shader("entry.wgsl", {"MODEL": "b.wgsl"})
    with pytest.raises(BackendError, match="MODEL"):
        load_shader("entry.wgsl")
    files["common.wgsl"] = "//!generated nothing\n"
    with pytest.raises(BackendError, match="nothing"):
        load_shader("entry.wgsl", {"MODEL": "a.wgsl"})


def test_a_compiled_shader_reads_each_field_where_the_host_writes_it() -> None:
    """On the adapter: a shader copies every Header field out; each holds the host's value."""
    from feagi_burst.backends.wgpu.runtime import Device

    try:
        dev = Device(native=False)
    except BackendError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1":
            pytest.skip(f"no GPU adapter: {e}")
        raise
    w, d = dev.wgpu, dev.device
    copy = "\n".join(f"    out[{i}u] = {'bitcast<u32>(H.' + f.name + ')' if f.type == 'f32' else 'H.' + f.name};"
                     for i, f in enumerate(layout.HEADER_FIELDS))
    code = (layout.wgsl() + "@group(0) @binding(0) var<uniform> H: Header;\n"
            "@group(0) @binding(1) var<storage, read_write> out: array<u32>;\n"
            f"@compute @workgroup_size(1)\nfn main() {{\n{copy}\n}}\n")
    # a distinct value per word: integers for u32 fields, ordinary floats for f32 ones
    row = np.full(layout.HEADER_STRIDE // 4, 0xDEADBEEF, np.uint32)
    for i, f in enumerate(layout.HEADER_FIELDS):
        row[i] = np.float32(i + 0.25).view(np.uint32) if f.type == "f32" else 1000 + i
    U = w.BufferUsage
    header = d.create_buffer_with_data(data=row, usage=U.UNIFORM)
    out = d.create_buffer(size=layout.HEADER_WORDS * 4, usage=U.STORAGE | U.COPY_SRC)
    pipe = d.create_compute_pipeline(layout="auto", compute={"module": d.create_shader_module(code=code),
                                                             "entry_point": "main"})
    group = d.create_bind_group(layout=pipe.get_bind_group_layout(0), entries=[
        {"binding": 0, "resource": {"buffer": header, "offset": 0, "size": layout.HEADER_WORDS * 4}},
        {"binding": 1, "resource": {"buffer": out, "offset": 0, "size": out.size}}])
    enc = d.create_command_encoder()
    cp = enc.begin_compute_pass()
    cp.set_pipeline(pipe)
    cp.set_bind_group(0, group)
    cp.dispatch_workgroups(1)
    cp.end()
    d.queue.submit([enc.finish()])
    got = np.frombuffer(d.queue.read_buffer(out), np.uint32)
    np.testing.assert_array_equal(got, row[: layout.HEADER_WORDS])
    for n in (n for n in dir(layout) if n.startswith("H_")):
        assert got[getattr(layout, n)] == row[getattr(layout, n)]
    d.destroy()
