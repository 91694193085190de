"""The compute systems hcs-sandbox owns: the ``Owner`` it gives them, one enumeration, and
the mark of the state directory that made each one.

A small module on purpose: ``hcs-sandbox ls`` needs only this (one
``HcsEnumerateComputeSystems`` to check live records), not the object model
(:mod:`hcs_sandbox.sandbox.sandbox`) nor :mod:`hcs_sandbox.sandbox.maintenance` with their
imports (``dataclasses``, ``logging``, ``pathlib``, ``typing``: tens of milliseconds of
every start).

**Which state directory made it.**  The Owner is the same for every state directory on a
host (it stays exactly ``hcs-sandbox``), and HCS keeps nothing else a compute system or an
endpoint could say it with.  So the id says it: every new sandbox id
(:func:`new_sandbox_id`) is a version-4 GUID (RFC 4122 variant) whose last 6 bytes (the
``node`` field) are the mark of the store that made it (:attr:`Store.mark
<hcs_sandbox.sandbox.store.Store.mark>`: 6 random bytes made once per state database and
kept in it, so a moved store keeps its mark and a new store at the old path gets another;
review RV-scope F1), and whose ``clock_seq`` field (bytes 8-9, after the 2 variant bits) is
the fixed tag ``MARK_TAG``, saying that the node field IS such a mark.  The compute system
gets the sandbox's id, and its endpoint the name ``hcs-sandbox-<id>`` (planner), so both
carry it.  :func:`id_mark` reads it back: prune and reconcile call an owned system or
endpoint without a record an orphan when its mark is their store's, or when its id names a
folder in their ``sandboxes/`` (sandbox/maintenance.py).  60 random bits are left (bytes
0-7 but the version's 4): the store refuses a duplicate id anyway.
"""

from __future__ import annotations

import os  # (loaded by Python's start-up anyway: costs nothing)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MARK_TAG",
    "OWNER",
    "endpoint_id",
    "host_identity",
    "id_mark",
    "new_sandbox_id",
    "owned_systems",
]

#: The ``Owner`` of every compute system, HCN network and endpoint hcs-sandbox makes
#: (``ComputeSystem.Owner``: SchemaReference.md; ``HostComputeNetwork.Owner``: HNS_Schema).
OWNER = "hcs-sandbox"

#: The ``clock_seq`` of an id that carries a state directory's mark (14 bits; with the
#: RFC 4122 variant bits ``10`` its 4th group reads ``9c5b``).  An id made by hcs-sandbox
#: before the mark (a random ``uuid4``) has it by chance once in 16384.
MARK_TAG = 0x1C5B
_TAG_TEXT = f"{0x8000 | MARK_TAG:04x}"  # "9c5b"
_HEX = frozenset("0123456789abcdef")


def new_sandbox_id(mark: str) -> str:
    """A new sandbox id made by the store whose mark is ``mark`` (12 lower-case hex digits:
    :attr:`Store.mark <hcs_sandbox.sandbox.store.Store.mark>`): a random version-4 GUID in
    its canonical form (lower case, ``8-4-4-4-12``) whose 4th group is the tag and whose
    last group is ``mark`` (see the module docstring)."""
    raw = bytearray(os.urandom(8))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{_TAG_TEXT}-{mark}"


def id_mark(object_id: str) -> str | None:
    """The state directory mark ``object_id`` carries (12 hex digits), or None when it
    carries none: not a GUID in the form ``8-4-4-4-12`` (any case), not version 4, or
    without the tag (an id made by hcs-sandbox before the mark, or by hand)."""
    text = object_id.lower()
    if (
        len(text) != 36
        or text[8] != "-"
        or text[13] != "-"
        or text[18] != "-"
        or text[23] != "-"
        or text[14] != "4"
        or text[19:23] != _TAG_TEXT
        or not _HEX.issuperset(text[:8] + text[9:13] + text[14:18] + text[19:23] + text[24:])
    ):
        return None
    return text[24:]


#: The namespace of the per-sandbox UUIDv5 ids (``00000000-0000-4000-8000-68637373616e``,
#: the planner's ``_PLACEHOLDER_NS``) as bytes: HostFacts.for_sandbox derives a sandbox's
#: endpoint and adapter ids from it with :func:`uuid5_bytes`, as :func:`endpoint_id` does.
ID_NAMESPACE = bytes.fromhex("0000000000004000800068637373616e")

_ENDPOINT_IDS: dict[str, str] = {}  # endpoint_id's results (bounded: cleared when full)


def uuid5_bytes(namespace: bytes, name: str) -> bytes:
    """``uuid.uuid5(UUID(bytes=namespace), name).bytes`` (RFC 4122 §4.3: SHA-1 of the
    namespace and the name, version 5, variant RFC 4122) without the ``UUID`` objects: the
    one implementation, the planner's too."""
    import hashlib

    digest = bytearray(hashlib.sha1(namespace + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)


def endpoint_id(sandbox_id: str) -> str:
    """The id of the endpoint the planner gives sandbox ``sandbox_id`` (a canonical id):
    ``HostFacts.for_sandbox``'s UUIDv5 of the sandbox's id, computed once per id and
    process (here, not in the planner: the verbs that judge a record's endpoint ids,
    sandbox/damage.py, import nothing more for it)."""
    found = _ENDPOINT_IDS.get(sandbox_id)
    if found is None:
        h = uuid5_bytes(uuid5_bytes(ID_NAMESPACE, sandbox_id), "endpoint").hex()
        found = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        if len(_ENDPOINT_IDS) >= 256:
            _ENDPOINT_IDS.clear()
        _ENDPOINT_IDS[sandbox_id] = found
    return found


def host_identity() -> str:
    """The HCS host this process talks to (:func:`hcs_sandbox.hcs.service.host_identity`):
    what a record's ``extra.hcs_host`` is compared with."""
    from hcs_sandbox.hcs.service import host_identity as identity

    return identity()


def owned_systems() -> dict[str, dict[str, Any]]:
    """Compute systems whose Owner is hcs-sandbox, by lower-case id: ONE
    ``HcsEnumerateComputeSystems`` with the query ``{"Owners": ["hcs-sandbox"]}``
    (SystemQuery: SchemaReference.md).  A system listed without an Owner is kept (the
    query already filtered on it)."""
    from hcs_sandbox.hcs.system import enumerate_compute_systems

    found: dict[str, dict[str, Any]] = {}
    for props in enumerate_compute_systems({"Owners": [OWNER]}):
        system_id = str(props.get("Id") or props.get("ID") or "")
        owner = props.get("Owner")
        if system_id and (owner is None or owner == OWNER):
            found[system_id.lower()] = props
    return found
