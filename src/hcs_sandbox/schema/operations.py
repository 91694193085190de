"""Option and request documents for operations on a running compute system or process.

Sources: MicrosoftDocs/Virtualization-Documentation ``virtualization/api/hcs/SchemaReference.md``
(2021 revision; "NewInVersion" per field) and hcsshim ``internal/hcs/schema2/*.go``.
"""

# schema_field() returns dataclasses.field(default=None, ...): an immutable default.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hcs_sandbox.schema._base import SchemaModel, schema_field
from hcs_sandbox.schema.enums import (
    CrashType,
    ModifyOperation,
    ModifyRequestType,
    PauseReason,
    PauseSuspensionLevel,
    ProcessSignal,
    SaveType,
    ShutdownMechanism,
    ShutdownType,
    StdHandle,
)

__all__ = [
    "CloseHandle",
    "ConsoleSize",
    "CrashOptions",
    "GuestModifySettingRequest",
    "ModifySettingRequest",
    "PauseNotification",
    "PauseOptions",
    "ProcessModifyRequest",
    "ProcessParameters",
    "SaveOptions",
    "ShutdownOptions",
    "SignalProcessOptions",
]


@dataclass(kw_only=True)
class SaveOptions(SchemaModel):
    """SchemaReference.md#SaveOptions (``HcsSaveComputeSystem``)."""

    SOURCE = "SchemaReference.md#SaveOptions; hcsshim save_options.go"

    SaveType: SaveType | str | None = schema_field("SaveType", since=(2, 1))
    SaveStateFilePath: str | None = schema_field("SaveStateFilePath", since=(2, 1))


@dataclass(kw_only=True)
class PauseNotification(SchemaModel):
    """SchemaReference.md#PauseNotification (PauseOptions.HostedNotification)."""

    SOURCE = "SchemaReference.md#PauseNotification; hcsshim pause_notification.go"

    Reason: PauseReason | str | None = schema_field("Reason", since=(2, 1))


@dataclass(kw_only=True)
class PauseOptions(SchemaModel):
    """SchemaReference.md#PauseOptions (``HcsPauseComputeSystem``)."""

    SOURCE = "SchemaReference.md#PauseOptions; hcsshim pause_options.go"

    SuspensionLevel: PauseSuspensionLevel | str | None = schema_field("SuspensionLevel")
    HostedNotification: PauseNotification | None = schema_field("HostedNotification", since=(2, 1))


@dataclass(kw_only=True)
class ShutdownOptions(SchemaModel):
    """SchemaReference.md#ShutdownOptions (2.5; ``HcsShutDownComputeSystem``)."""

    SOURCE = "SchemaReference.md#ShutdownOptions; hcsshim shutdown_options.go"

    Mechanism: ShutdownMechanism | str | None = schema_field("Mechanism", since=(2, 5))
    Type: ShutdownType | str | None = schema_field("Type", since=(2, 5))
    Force: bool | None = schema_field("Force", since=(2, 5))
    Reason: str | None = schema_field("Reason", since=(2, 5))


@dataclass(kw_only=True)
class CrashOptions(SchemaModel):
    """SchemaReference.md#CrashOptions (2.3; ``HcsCrashComputeSystem``)."""

    SOURCE = "SchemaReference.md#CrashOptions; hcsshim crash_options.go"

    Type: CrashType | str | None = schema_field("Type", since=(2, 3))


@dataclass(kw_only=True)
class SignalProcessOptions(SchemaModel):
    """SchemaReference.md#SignalProcessOptions (``HcsSignalProcess``)."""

    SOURCE = "SchemaReference.md#SignalProcessOptions; hcsshim signal_process_options.go"

    Signal: ProcessSignal | str | None = schema_field("Signal", since=(2, 1))


@dataclass(kw_only=True)
class ProcessParameters(SchemaModel):
    """SchemaReference.md#ProcessParameters (``HcsCreateProcess``).

    ``ConsoleSize`` is ``[height, width]``.  ``CommandArgs`` is only honoured by the Linux
    guest agent.  ``EmulateConsole`` (a pty) ignores the StdErr pipe.
    """

    SOURCE = "SchemaReference.md#ProcessParameters; hcsshim process_parameters.go"

    ApplicationName: str | None = schema_field("ApplicationName")
    CommandLine: str | None = schema_field("CommandLine")
    CommandArgs: list[str] | None = schema_field("CommandArgs")
    User: str | None = schema_field("User")
    WorkingDirectory: str | None = schema_field("WorkingDirectory")
    Environment: dict[str, str] | None = schema_field("Environment")
    RestrictedToken: bool | None = schema_field("RestrictedToken")
    EmulateConsole: bool | None = schema_field("EmulateConsole")
    CreateStdInPipe: bool | None = schema_field("CreateStdInPipe")
    CreateStdOutPipe: bool | None = schema_field("CreateStdOutPipe")
    CreateStdErrPipe: bool | None = schema_field("CreateStdErrPipe")
    ConsoleSize: list[int] | None = schema_field("ConsoleSize")
    UseExistingLogin: bool | None = schema_field("UseExistingLogin")
    UseLegacyConsole: bool | None = schema_field("UseLegacyConsole")


@dataclass(kw_only=True)
class ConsoleSize(SchemaModel):
    """SchemaReference.md#ConsoleSize (ProcessModifyRequest.ConsoleSize)."""

    SOURCE = "SchemaReference.md#ConsoleSize; hcsshim console_size.go"

    Height: int | None = schema_field("Height")
    Width: int | None = schema_field("Width")


@dataclass(kw_only=True)
class CloseHandle(SchemaModel):
    """SchemaReference.md#CloseHandle (ProcessModifyRequest.CloseHandle)."""

    SOURCE = "SchemaReference.md#CloseHandle; hcsshim close_handle.go"

    Handle: StdHandle | str | None = schema_field("Handle")


@dataclass(kw_only=True)
class ProcessModifyRequest(SchemaModel):
    """SchemaReference.md#ProcessModifyRequest (``HcsModifyProcess``)."""

    SOURCE = "SchemaReference.md#ProcessModifyRequest; hcsshim process_modify_request.go"

    Operation: ModifyOperation | str | None = schema_field("Operation")
    ConsoleSize: ConsoleSize | None = schema_field("ConsoleSize")
    CloseHandle: CloseHandle | None = schema_field("CloseHandle")

    @classmethod
    def resize(cls, height: int, width: int) -> ProcessModifyRequest:
        """A ``ConsoleSize`` request."""
        return cls(
            Operation=ModifyOperation.CONSOLE_SIZE,
            ConsoleSize=ConsoleSize(Height=height, Width=width),
        )

    @classmethod
    def close(cls, handle: StdHandle | str) -> ProcessModifyRequest:
        """A ``CloseHandle`` request (``StdHandle.STD_IN`` closes the child's stdin)."""
        return cls(Operation=ModifyOperation.CLOSE_HANDLE, CloseHandle=CloseHandle(Handle=handle))


@dataclass(kw_only=True)
class GuestModifySettingRequest(SchemaModel):
    """SchemaReference.md#GuestModifySettingRequest (forwarded to the guest agent)."""

    SOURCE = "SchemaReference.md#GuestModifySettingRequest; hcsshim guest/... modify requests"

    ResourceType: str | None = schema_field("ResourceType", since=(2, 1))
    RequestType: ModifyRequestType | str | None = schema_field("RequestType", since=(2, 1))
    Settings: Any = schema_field("Settings", since=(2, 1))


@dataclass(kw_only=True)
class ModifySettingRequest(SchemaModel):
    """SchemaReference.md#ModifySettingRequest (``HcsModifyComputeSystem``).

    ``Settings`` may hold any model (``NetworkAdapter``, ``Attachment``, ...) or plain
    JSON; a bare number is valid for memory resizes.  Resource paths:
    HcsModifyComputeSystem.md (``VirtualMachine/Devices/...``).
    """

    SOURCE = "SchemaReference.md#ModifySettingRequest; hcsshim modify_setting_request.go"

    ResourcePath: str | None = schema_field("ResourcePath", since=(2, 1))
    RequestType: ModifyRequestType | str | None = schema_field("RequestType")
    Settings: Any = schema_field("Settings")
    GuestRequest: Any = schema_field("GuestRequest", since=(2, 1))
