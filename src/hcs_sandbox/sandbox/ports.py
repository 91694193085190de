"""Published ports: host ports forwarded to guest ports through the sandbox's HCN endpoint.

At create, ``SandboxSpec.ports`` (``-p HOST:GUEST[/tcp|udp]``) become ``PortMapping`` policies in
the planner's endpoint document.  While the sandbox exists, :func:`publish` and
:func:`unpublish` add and remove more with ``HcnModifyEndpoint``
(:func:`hcs_sandbox.sandbox.network.modify_endpoint_policies`; hcsshim
``hcn/hcnendpoint.go`` ``ModifyEndpointSettingRequest``).

* A ``PortMapping`` policy is ``{"Type": "PortMapping", "Settings": {"Protocol": 6|17,
  "InternalPort": guest, "ExternalPort": host}}`` (HNS_Schema.md#PortMappingPolicySetting,
  protocol numbers as hcsshim ``hcn/hcnpolicy.go`` sends them) — built by the planner's own
  builder (:func:`hcs_sandbox.sandbox.planner.port_mapping_policy`), so create-time and
  run-time policies are identical.
* ``internet-only`` sandboxes also get the planner's inbound ACL rule for the guest port
  (``hcs-sandbox-allow-in-<proto>-<port>``, HNS_Schema.md#AclPolicySetting;
  :func:`hcs_sandbox.sandbox.planner.inbound_port_acl`), removed again when no published
  port needs it any more.
* Runtime ports are recorded in the store record (``extra.ports``) *before* HCN is asked
  (write-ahead, like runtime mapped folders), and crossed off again if HCN refuses.  They
  last until they are unpublished or the sandbox is removed: a stopped persistent sandbox
  keeps them, and when its endpoint has to be re-created at start (HNS lost it) they are
  put back on the new endpoint (:func:`reapply`).  If HCN refuses one there, the start
  fails with one clear error and the sandbox stays stopped with its ports recorded; the
  port can be unpublished while stopped (docs/networking.md#published-ports says why).
* ``HCN_E_PORT_ALREADY_EXISTS`` (0x803B0013, HCNHResult.md: the host port is taken by any
  endpoint on the host) becomes one clear error naming the sandbox that holds the port when
  it is one of ours.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from hcs_sandbox import errors
from hcs_sandbox.sandbox.store import LIVE_STATES

if TYPE_CHECKING:
    from hcs_sandbox.sandbox.sandbox import Sandbox

__all__ = [
    "PublishedPort",
    "acl_policy",
    "port_policy",
    "ports",
    "publish",
    "reapply",
    "unpublish",
]


@dataclasses.dataclass(frozen=True)
class PublishedPort:
    """A host port forwarded to a guest port. ``runtime``: added with :func:`publish`
    (False: from the spec, fixed at create)."""

    host_port: int
    guest_port: int
    protocol: str = "tcp"
    runtime: bool = False

    def __str__(self) -> str:
        return f"{self.host_port}:{self.guest_port}/{self.protocol}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def port_policy(port: PublishedPort) -> dict[str, Any]:
    """The ``PortMapping`` endpoint policy: the planner's builder
    (:func:`hcs_sandbox.sandbox.planner.port_mapping_policy`), as a dict."""
    from hcs_sandbox.sandbox.planner import port_mapping_policy

    return port_mapping_policy(port.host_port, port.guest_port, port.protocol).to_dict()


def acl_policy(port: PublishedPort) -> dict[str, Any]:
    """The inbound ACL rule an internet-only sandbox needs for a published guest port: the
    planner's rule (:func:`hcs_sandbox.sandbox.planner.inbound_port_acl`), as a dict."""
    from hcs_sandbox.sandbox.planner import inbound_port_acl

    return inbound_port_acl(port.guest_port, port.protocol).to_dict()


def _needs_acl(sandbox: Sandbox, port: PublishedPort, others: list[PublishedPort]) -> bool:
    """Whether ``port`` brings its own inbound ACL rule: internet-only, and no port among
    ``others`` (the other published ports) opens the same guest port already."""
    return sandbox.spec.network == "internet-only" and not any(
        p.guest_port == port.guest_port and p.protocol == port.protocol for p in others
    )


def _runtime_entries(record_extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(e) for e in record_extra.get("ports") or () if isinstance(e, Mapping)]


def ports(sandbox: Sandbox) -> list[PublishedPort]:
    """Every published port: the spec's, then the runtime ones (from the record)."""
    found = [
        PublishedPort(p.host_port, p.guest_port, p.protocol, False) for p in sandbox.spec.ports
    ]
    for e in _runtime_entries(sandbox.record.extra):
        found.append(
            PublishedPort(
                int(e["host_port"]), int(e["guest_port"]), str(e["protocol"]), runtime=True
            )
        )
    return found


def _check(host_port: int, guest_port: int, protocol: str) -> PublishedPort:
    from hcs_sandbox.sandbox.spec import PortMapping

    checked = PortMapping(host_port, guest_port, protocol)  # type: ignore[arg-type]
    return PublishedPort(checked.host_port, checked.guest_port, checked.protocol, True)


def _endpoint_of(sandbox: Sandbox, doing: str, *, stopped_ok: bool = False) -> str | None:
    """The endpoint whose policies ``doing`` changes.  ``stopped_ok`` (unpublish): a
    stopped sandbox will do too, and its endpoint may be gone (None: only the record
    changes)."""
    network = sandbox.spec.network
    if network == "none":
        raise errors.SpecError(
            f"cannot {doing} for sandbox '{sandbox.name}': it has no network (network none)",
            field="network",
            value=network,
            remedy="create the sandbox with --network nat (or internet-only) to publish ports",
        )
    state = sandbox.state
    stopped = stopped_ok and state == "stopped"
    if state not in LIVE_STATES and not stopped:
        # In LIVE_STATES the endpoint exists and may be changed; a stopped sandbox's
        # endpoint may be gone, so nothing can be added to it (unpublish still works).
        raise errors.SandboxStateError(
            f"cannot {doing} for sandbox '{sandbox.name}': it is {state}",
            state=state,
            remedy="ports can be changed while the sandbox is created, running or paused"
            + (" (and unpublished while it is stopped)" if stopped_ok else ""),
        )
    endpoint_ids = sandbox.record.endpoint_ids
    if not endpoint_ids:
        if stopped:
            return None
        raise errors.SandboxStateError(
            f"cannot {doing} for sandbox '{sandbox.name}': it has no network endpoint",
            state=state,
            remedy=f"remove it ('hcs-sandbox rm -f {sandbox.name}') and create it again",
        )
    return str(endpoint_ids[0])


def _update(
    sandbox: Sandbox,
    change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    *,
    expect_state: str | None = None,
    doing: str = "change its ports",
    remedy: str | None = None,
) -> None:
    """Compare-and-set the record's runtime port list.  ``expect_state``: only while the
    record is still in that state (unpublish of a stopped sandbox: a start that began
    meanwhile puts the record's ports back on a re-created endpoint, so crossing one off
    after it would leave HNS forwarding a port the record no longer lists)."""
    from hcs_sandbox.sandbox.store import open_store

    with open_store(sandbox._state_dir) as store:
        for _ in range(20):
            record = store.get(sandbox.id)
            if expect_state is not None and record.state != expect_state:
                # The policy may be off the endpoint already (a start kept it) or back on it
                # (a start re-created it): the record still lists the port either way, and
                # unpublishing again settles it.  (Never the other way round: a port the
                # record does not list is never left forwarded.)
                raise errors.SandboxStateError(
                    f"cannot {doing} for sandbox '{sandbox.name}': it became {record.state} "
                    f"meanwhile (it was {expect_state}); the port is still listed, and may or "
                    "may not be forwarded until you unpublish it again",
                    state=record.state,
                    remedy=remedy,
                )
            new = change(_runtime_entries(record.extra))
            try:
                sandbox._record = store.update(
                    record.id,
                    expect_revision=record.revision,
                    merge_extra={"ports": new or None},
                )
                return
            except errors.StateConflictError:
                time.sleep(0.01)
    raise errors.StoreError(
        f"could not record the ports of sandbox '{sandbox.name}': the record keeps changing",
        remedy="try again",
    )


def _same(entry: Mapping[str, Any], port: PublishedPort) -> bool:
    return int(entry["host_port"]) == port.host_port and entry["protocol"] == port.protocol


def _holder(sandbox: Sandbox, port: PublishedPort) -> str | None:
    """The name of another of our sandboxes that publishes this host port, if any."""
    from hcs_sandbox.sandbox.sandbox import Sandbox as _Sandbox

    try:
        others = _Sandbox.list(all=True, state_dir=sandbox._state_dir)
    except errors.HcsSandboxError:
        return None
    for other in others:
        if other.id == sandbox.id:
            continue
        try:
            held = ports(other)
        except errors.HcsSandboxError:
            continue
        if any(p.host_port == port.host_port and p.protocol == port.protocol for p in held):
            return other.name
    return None


def holder_of(sandbox: Sandbox, host_port: int, protocol: str) -> str | None:
    """The name of another of our sandboxes that publishes ``host_port``/``protocol`` (from
    its spec or with :func:`publish`), if any: who to name when HCN says the port is taken
    (``network.create_endpoint`` at create and start, as :func:`publish` does)."""
    return _holder(sandbox, PublishedPort(host_port, 0, protocol))


def publish(
    sandbox: Sandbox, host_port: int, guest_port: int, protocol: str = "tcp"
) -> PublishedPort:
    """:meth:`Sandbox.publish`: forward ``host_port`` on the host to ``guest_port``."""
    from hcs_sandbox.sandbox import network

    port = _check(host_port, guest_port, protocol)
    doing = f"publish port {port}"
    endpoint_id = _endpoint_of(sandbox, doing)
    assert endpoint_id is not None  # only stopped_ok gives None
    for existing in ports(sandbox):
        if existing.host_port == port.host_port and existing.protocol == port.protocol:
            raise errors.SpecError(
                f"cannot {doing} for sandbox '{sandbox.name}': host port "
                f"{port.host_port}/{port.protocol} is already published to guest port "
                f"{existing.guest_port}",
                field="host_port",
                value=host_port,
                remedy="unpublish it first, or choose another host port",
            )
    policies = [port_policy(port)]
    if _needs_acl(sandbox, port, ports(sandbox)):
        policies.append(acl_policy(port))
    entry = {
        "host_port": port.host_port,
        "guest_port": port.guest_port,
        "protocol": port.protocol,
        "endpoint": endpoint_id,
    }
    # Write-ahead: the record knows the port before HCN does.
    _update(sandbox, lambda live: [*live, entry])
    try:
        network.modify_endpoint_policies(endpoint_id, "Add", policies)
    except BaseException as exc:
        try:
            _update(sandbox, lambda live: [e for e in live if not _same(e, port)])
        except Exception as cleanup:  # the record keeps a stale entry; unpublish clears it
            sandbox._log_line(f"could not cross off port {port}: {cleanup}")
        if isinstance(exc, errors.HcsError) and exc.name == network.PORT_ALREADY_EXISTS:
            raise network.port_conflict(
                exc,
                f"{port.host_port}/{port.protocol}",
                f"cannot publish port {port} for sandbox '{sandbox.name}'",
                owner=_holder(sandbox, port),
            ) from exc
        raise
    sandbox._log_line(
        f"published host port {port.host_port}/{port.protocol} to guest port {port.guest_port}"
    )
    return port


def unpublish(sandbox: Sandbox, host_port: int, protocol: str = "tcp") -> None:
    """:meth:`Sandbox.unpublish`: remove a port added with :func:`publish` (also while the
    sandbox is stopped: its policy comes off the endpoint when the endpoint is still there,
    and the port is crossed off the record, so a later start does not put it back)."""
    from hcs_sandbox.sandbox import network

    doing = f"unpublish port {host_port}/{protocol}"
    found = [p for p in ports(sandbox) if p.host_port == host_port and p.protocol == protocol]
    if not found:
        raise errors.SpecError(
            f"cannot {doing} for sandbox '{sandbox.name}': it is not published",
            field="host_port",
            value=host_port,
            remedy=f"see the published ports with 'hcs-sandbox port {sandbox.name}'",
        )
    port = found[0]
    if not port.runtime:
        raise errors.SpecError(
            f"cannot {doing} for sandbox '{sandbox.name}': it was published when the sandbox "
            "was created and stays published",
            field="host_port",
            value=host_port,
            remedy="only ports published with 'publish' while it exists can be unpublished",
        )
    endpoint_id = _endpoint_of(sandbox, doing, stopped_ok=True)
    seen = sandbox.record.state  # as _endpoint_of just read it
    if endpoint_id is not None:
        policies = [port_policy(port)]
        if _needs_acl(sandbox, port, [p for p in ports(sandbox) if p != port]):
            policies.append(acl_policy(port))
        try:
            network.modify_endpoint_policies(endpoint_id, "Remove", policies)
        except errors.NotFoundError:
            pass  # the endpoint (and its policies) are gone already
    _update(
        sandbox,
        lambda live: [e for e in live if not _same(e, port)],
        expect_state=seen if seen == "stopped" else None,
        doing=doing,
        remedy=f"run 'hcs-sandbox port {sandbox.name} --unpublish {port.host_port}/"
        f"{port.protocol}' again",
    )
    sandbox._log_line(f"unpublished host port {port.host_port}/{port.protocol}")


def reapply(
    sandbox: Sandbox, endpoint_id: str, *, progress: Callable[[str], None] | None = None
) -> list[PublishedPort]:
    """Put the runtime ports (the record's ``extra.ports``) back on the sandbox's endpoint
    after start re-created it (``Sandbox._provision``: HNS lost the endpoint of a stopped
    persistent sandbox; the planner's document carries only the spec's ports).  Each port
    gets its ``PortMapping`` policy and, internet-only, its inbound ACL rule when no port
    before it opens that guest port -- what :func:`publish` added, in the same order, one
    ``HcnModifyEndpoint`` per port (so an error names its port).  Returns the ports put
    back.

    If HCN refuses one, the start must not go on with ports the record lists but HCN does
    not forward: the error is raised (told again for the start, naming the port and, for
    ``HCN_E_PORT_ALREADY_EXISTS``, the sandbox holding it) and the caller's undo deletes
    the endpoint; the record keeps the port, which ``unpublish`` can take off while the
    sandbox is stopped.  ``progress`` is told before the first port.
    """
    from hcs_sandbox.sandbox import network

    runtime = [p for p in ports(sandbox) if p.runtime]
    if not runtime:
        return []
    if progress is not None:
        progress("re-applying the ports published with 'publish' on the new endpoint")
    done: list[PublishedPort] = [p for p in ports(sandbox) if not p.runtime]
    for port in runtime:
        policies = [port_policy(port)]
        if _needs_acl(sandbox, port, done):
            policies.append(acl_policy(port))
        try:
            network.modify_endpoint_policies(endpoint_id, "Add", policies)
        except errors.HcsError as exc:
            sandbox._log_line(f"could not re-apply published port {port}: {exc}")
            raise _reapply_error(sandbox, port, exc) from exc
        done.append(port)
    put_back = ", ".join(str(p) for p in runtime)
    sandbox._log_line(f"re-created the network endpoint; re-applied published ports {put_back}")
    return runtime


def _reapply_error(sandbox: Sandbox, port: PublishedPort, exc: errors.HcsError) -> errors.HcsError:
    """:func:`reapply`'s one error for ``port``: what failed, why, what to do."""
    from hcs_sandbox.sandbox import network

    doing = f"cannot start sandbox '{sandbox.name}'"
    cross_off = f"'hcs-sandbox port {sandbox.name} --unpublish {port.host_port}/{port.protocol}'"
    if exc.name == network.PORT_ALREADY_EXISTS:
        owner = _holder(sandbox, port)
        # The holder may have it from its spec (it cannot be unpublished there): say
        # where it is, not which command frees it.
        free = f"free it in sandbox '{owner}'" if owner else "free it on the host"
        return network.port_conflict(
            exc,
            f"{port.host_port}/{port.protocol}",
            f"{doing}: its published port {port} could not be put back on its re-created "
            "network endpoint",
            owner=owner,
            remedy=f"{free}, or take it off this sandbox with {cross_off}; then start it "
            "again (it was left stopped)",
        )
    return exc.restated(
        f"{doing}: its published port {port} could not be put back on its re-created network "
        f"endpoint: {exc.message}",
        remedy=f"start it again (it was left stopped); if this keeps failing, check the host "
        f"network service ('hcs-sandbox doctor'), or take the port off with {cross_off}",
    )
