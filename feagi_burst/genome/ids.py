"""Cortical ids (SPEC.md section 3): FEAGI 2.x legacy ids, 3.0 base64 ids, and area lookup.

Two spellings are in use. A 2.x genome writes legacy ids of 6 (or 8) ASCII characters (`CQ9Pin`,
`___pwr`, `iv00_C`). A 3.0 genome (what FEAGI 2.6.10 writes when it saves a genome) writes the
standard base64 of FEAGI's 8-byte id (`Y0lITW90X18=` is `cIHMot__`; input/output areas have binary
ids such as `isvi` + a tile byte). FEAGI itself works with the 8-byte id: it migrates a legacy id
to one (`migrate_legacy_id`), and where it iterates areas in sorted order it sorts the base64 text
of those 8 bytes (`CorticalId.sort_key`, used by the window-0 abort of the loader).

The engine keeps every id as the genome writes it (spike records and stimulus files use that
spelling, SPEC.md section 4) and shows a 3.0 area by its name and decoded id. `AreaLookup` finds an
area by the id as written, by the decoded id, by a core alias (`_power` for `___power`) or by name,
with one dict lookup: no scan over areas.
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

ID_BYTES = 8  # FEAGI's cortical id is 8 bytes
TYPE_PREFIXES = frozenset(b"cm_io")  # custom, memory, core, input (IPU), output (OPU)

# Core areas: the FEAGI 2.6.10 kinds in its cortical_idx order, every id spelling it accepts,
# and its own 8-byte id for each.
CORE_KINDS: tuple[str, ...] = ("death", "power", "fatigue", "pain", "pleasure", "fear", "hope")
CORE_BYTES: dict[str, bytes] = {
    "death": b"___death", "power": b"___power", "fatigue": b"___fatig", "pain": b"___pain_",
    "pleasure": b"___pleas", "fear": b"___fear_", "hope": b"___hope_",
}
CORE_OF_BYTES: dict[bytes, str] = {v: k for k, v in CORE_BYTES.items()}
CORE_ALIASES: dict[str, str] = {
    "_death": "death", "___death": "death",
    "_power": "power", "___pwr": "power", "___power": "power", "___pwr__": "power",
    "_fatigue": "fatigue", "___fatig": "fatigue",
    "_pain": "pain", "___pain_": "pain",
    "_pleasure": "pleasure", "___pleas": "pleasure",
    "_fear": "fear", "___fear_": "fear",
    "_hope": "hope", "___hope_": "hope",
}
# the base64 spelling of each core id (a 3.0 genome's keys) names the core area too
CORE_ALIASES.update({base64.b64encode(b).decode("ascii"): k for k, b in CORE_BYTES.items()})

_LEGACY_RE = re.compile(r"[A-Za-z0-9_]{6}|[A-Za-z0-9_]{8}")
_BASE64_RE = re.compile(r"[A-Za-z0-9+/]{11}=")  # 8 bytes -> 12 characters, one '=' of padding


def decode_base64_id(text: str) -> bytes | None:
    """The 8-byte id a 3.0 genome's base64 text encodes, or None if it is not one.

    Accepted as FEAGI does (`CorticalID::try_from_base_64`): canonical standard base64 of exactly
    8 bytes whose first byte is a type prefix (c, m, _, i, o).
    """
    if not _BASE64_RE.fullmatch(text):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != ID_BYTES or raw[0] not in TYPE_PREFIXES or base64.b64encode(raw).decode("ascii") != text:
        return None
    return raw


def display_id(raw: bytes) -> str:
    """A decoded 8-byte id as text: printable ASCII as is, other bytes as `\\xNN` (`isvi\\x09\\x00\\x00\\x00`)."""
    return "".join(chr(b) if 0x20 < b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def is_legacy_id(text: str) -> bool:
    """A 2.x id: 6 or 8 characters of letters, digits and '_'."""
    return _LEGACY_RE.fullmatch(text) is not None


def migrate_legacy_id(text: str, group: str = "") -> bytes:
    """FEAGI's 8-byte id for a legacy id (what its 3.0 export writes for it).

    Core ids map to FEAGI's core ids (`___pwr` -> `___power`). Other ids are padded with `_` to 8
    characters and get the type letter of their group: a CUSTOM area starts with `c` (`CRSMot` ->
    `cRSMot__`, and FEAGI 2.6.10's export of feagi-py's essential genome turns `m__lef` into
    `c__lef__`), a MEMORY area with `m`. IPU/OPU areas get binary ids from FEAGI's device tables
    (`iv00BL` -> `isvi` + 0x09 + zeros), which this engine does not have: they keep their letters,
    first one lower-cased. The id only decides FEAGI's sort order (`CorticalId.sort_key`), which
    matters for the window-0 abort alone; no real genome has an IPU/OPU area among the
    destinations of an aborting source.
    """
    kind = CORE_ALIASES.get(text)
    if kind is not None:
        return CORE_BYTES[kind]
    padded = (text + "_" * ID_BYTES)[:ID_BYTES] if len(text) < ID_BYTES else text[:ID_BYTES]
    group = (group or "").upper()
    first = {"CUSTOM": "c", "MEMORY": "m", "IPU": "i", "OPU": "o"}.get(group)
    if first is None:
        lower = padded[0].lower()
        first = lower if lower in "cmio" else "c"
    return (first + padded[1:]).encode("ascii")


@dataclass(frozen=True)
class CorticalId:
    """One cortical id: as the genome writes it, and as FEAGI knows it.

    written: the id in the genome (2.x legacy or 3.0 base64). feagi: FEAGI's 8-byte id (decoded
    from base64, or migrated from the legacy id). decoded: how the area is shown: the 8 bytes as
    text for a base64 id, the legacy id itself otherwise. core: the core kind, or None.
    """

    written: str
    feagi: bytes
    decoded: str
    core: str | None
    is_base64: bool

    @property
    def sort_key(self) -> str:
        """FEAGI's order of areas: the base64 text of the 8-byte id."""
        return base64.b64encode(self.feagi).decode("ascii")


def parse_cortical_id(text: str, group: str = "") -> CorticalId | None:
    """A cortical id as FEAGI 2.6.10 reads it (base64 first, then legacy), or None when invalid.

    An unknown `_` id is returned with core None: the loader decides what to do with it (FEAGI
    rejects the genome).
    """
    raw = decode_base64_id(text)
    if raw is not None:
        return CorticalId(text, raw, display_id(raw), CORE_OF_BYTES.get(raw), True)
    if not is_legacy_id(text):
        return None
    kind = CORE_ALIASES.get(text)
    return CorticalId(text, migrate_legacy_id(text, group), text, kind, False)


def decoded_id(text: str) -> str:
    """How an id is shown: the decoded 8 bytes of a base64 id, any other id as it is."""
    raw = decode_base64_id(text)
    return display_id(raw) if raw is not None else text


def id_aliases(text: str) -> list[str]:
    """Other spellings that name the area written `text`: its decoded id (as shown, and as raw
    text), and for a core area every spelling of that core id."""
    out: list[str] = []
    raw = decode_base64_id(text)
    if raw is not None:
        out += [display_id(raw), raw.decode("latin-1")]
    kind = CORE_ALIASES.get(text) or (CORE_OF_BYTES.get(raw) if raw is not None else None)
    if kind is not None:
        out += [a for a, k in CORE_ALIASES.items() if k == kind]
    return [a for a in dict.fromkeys(out) if a != text]


class AreaLookup:
    """Find an area by the id as written, its decoded id, a core alias or its name: one dict lookup.

    Built once from parallel lists of ids and names (a Brain's areas, a genome's, or the
    `area_ids` / `area_names` of a spike record). Precedence when spellings collide: the id as
    written, then a decoded id or core alias, then a name; the first area wins within a kind. A
    name several areas share finds none of them (use an id).
    """

    def __init__(self, ids: Sequence[str], names: Sequence[str]) -> None:
        self.ids = list(ids)
        self.names = list(names)
        by: dict[str, int] = {}
        first_name: dict[str, int] = {}
        self.shared_names: dict[str, list[int]] = {}
        for i, n in enumerate(self.names):
            if not n:
                continue
            if n in first_name:
                self.shared_names.setdefault(n, [first_name[n]]).append(i)
            else:
                first_name[n] = i
        by.update((n, i) for n, i in first_name.items() if n not in self.shared_names)
        aliases: dict[str, int] = {}
        for i, cid in enumerate(self.ids):
            for a in id_aliases(cid):
                aliases.setdefault(a, i)
        by.update(aliases)
        written: dict[str, int] = {}
        for i, cid in enumerate(self.ids):
            written.setdefault(cid, i)
        by.update(written)
        self._by = by

    def get(self, key: str) -> int | None:
        """The index of the area `key` names, or None."""
        return self._by.get(key)

    def index(self, key: str) -> int:
        """The index of the area `key` names; KeyError with a one-line message otherwise."""
        i = self._by.get(key)
        if i is not None:
            return i
        if key in self.shared_names:
            which = ", ".join(repr(self.ids[j]) for j in self.shared_names[key][:10])
            raise KeyError(f"cortical area name {key!r} is shared by areas {which}; give a cortical id")
        raise KeyError(f"unknown cortical area {key!r} (known: {self.known()})")

    def known(self, limit: int = 20) -> str:
        """The first areas as `id` or `id (decoded id, name)`, for error messages."""
        parts = []
        for cid, name in zip(self.ids[:limit], self.names[:limit]):
            shown = decoded_id(cid)
            parts.append(cid if shown == cid and name in ("", cid) else
                         f"{cid} ({shown}, {name})" if shown != cid else f"{cid} ({name})")
        more = f", ... ({len(self.ids)} areas)" if len(self.ids) > limit else ""
        return ", ".join(parts) + more


def label(cortical_id: str, name: str = "") -> str:
    """An area for messages: `'CRSMot'`, or for a 3.0 id `'Y0lITW90X18=' (cIHMot__ 'M1_BW')`."""
    shown = decoded_id(cortical_id)
    if shown == cortical_id:
        return repr(cortical_id)
    return f"{cortical_id!r} ({shown}{' ' + repr(name) if name else ''})"


__all__ = ["AreaLookup", "CORE_ALIASES", "CORE_BYTES", "CORE_KINDS", "CorticalId", "decode_base64_id",
           "decoded_id", "display_id", "id_aliases", "is_legacy_id", "label", "migrate_legacy_id",
           "parse_cortical_id"]
