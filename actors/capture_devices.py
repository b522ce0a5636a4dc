"""Which device a capture actor opens, decided before it is spawned.

Why resolve in the supervisor's process: an unknown device name must be one clear error
before anything starts, not a crash loop of a capture actor.

Linux: PortAudio reaches PulseAudio/PipeWire through the ALSA ``pulse`` plugin and sees only
``pulse``/``default``, so sources (microphones and the ``.monitor`` of every output, the
speakers' loopback) are listed with pulsectl and picked per capture process with
``PULSE_SOURCE``. Without PulseAudio/PipeWire, PortAudio's own input devices are used.
Windows (WASAPI loopback) and macOS (a loopback device such as BlackHole) are described in
the README; there a loopback device is picked by name like any input.
"""

from __future__ import annotations

from dataclasses import dataclass

from earwig.errors import EarwigError
from earwig.messages import Source

NO_SERVER_FIX = ("start PulseAudio or PipeWire (e.g. `pulseaudio --start`), "
                 "or replay a file with --replay-mic/--replay-speakers FILE")


@dataclass(frozen=True)
class Device:
    """An input a capture actor can open: a PulseAudio source or a PortAudio device."""

    name: str
    description: str
    samplerate: int
    channels: int
    #: PulseAudio source name (opened through PortAudio's ``pulse`` device), or "".
    pulse_source: str = ""
    #: PortAudio device index, when not a PulseAudio source.
    portaudio_index: int = -1
    is_loopback: bool = False
    is_default: bool = False

    @property
    def portaudio_device(self) -> int | str:
        return "pulse" if self.pulse_source else self.portaudio_index


def _pulse_sources() -> list[Device] | None:
    """PulseAudio/PipeWire sources, or None when no server answers (never autospawns one)."""
    try:
        import pulsectl
    except (ImportError, OSError):  # not Linux, or libpulse missing
        return None
    try:
        with pulsectl.Pulse("earwig-devices", connect=False) as pulse:
            pulse.connect(autospawn=False)
            info = pulse.server_info()
            default_monitor = f"{info.default_sink_name}.monitor"
            # Read every field inside the connection: the objects point into its memory.
            return [
                Device(
                    name=s.name, description=s.description, samplerate=s.sample_spec.rate,
                    channels=min(s.channel_count, 2), pulse_source=s.name,
                    is_loopback=bool(getattr(s, "monitor_of_sink_name", None)),
                    is_default=s.name in (info.default_source_name, default_monitor),
                )
                for s in pulse.source_list()
            ]
    except pulsectl.PulseError:
        return None


def _portaudio_inputs() -> list[Device]:
    import sounddevice as sd

    default_input = sd.default.device[0]
    return [
        Device(
            name=d["name"], description=f"{sd.query_hostapis(d['hostapi'])['name']} input",
            samplerate=int(d["default_samplerate"]), channels=min(d["max_input_channels"], 2),
            portaudio_index=i, is_loopback="loopback" in d["name"].lower(),
            is_default=i == default_input,
        )
        for i, d in enumerate(sd.query_devices())
        if d["max_input_channels"] > 0
    ]


def list_devices() -> list[Device]:
    """Every input earwig could capture: PulseAudio sources first, then PortAudio's own."""
    pulse = _pulse_sources() or []
    plain = [d for d in _portaudio_inputs() if not (pulse and d.name in ("pulse", "default"))]
    return pulse + plain


def find_again(device: Device) -> Device | None:
    """``device`` as it is listed now, or None while it is gone. PortAudio sees a device
    that came back only after it is initialised again, so a capture actor asks this with
    its stream closed (PulseAudio sources are listed by the server and need no rescan)."""
    if device.pulse_source:
        listed = _pulse_sources() or []
    else:
        import sounddevice as sd

        sd._terminate()
        sd._initialize()
        listed = _portaudio_inputs()
    return next((d for d in listed if d.name == device.name), None)


def resolve(source: Source, wanted: str) -> Device:
    """The device for ``source`` from a name, index or part of a description ("" = default)."""
    devices = list_devices()
    if not devices:
        raise EarwigError("no audio server or input device found", NO_SERVER_FIX)
    if not wanted:
        return _default(source, devices)
    if wanted.isdigit():
        matches = [d for d in devices if d.portaudio_index == int(wanted)]
    else:
        matches = [d for d in devices if d.name == wanted] or [
            d for d in devices
            if wanted.lower() in d.name.lower() or wanted.lower() in d.description.lower()
        ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise EarwigError(f"unknown {source} device {wanted!r}",
                          "run `earwig devices` for the names you can use")
    names = ", ".join(d.name for d in matches)
    raise EarwigError(f"{source} device {wanted!r} is ambiguous: {names}",
                      "give the full name from `earwig devices`")


def _default(source: Source, devices: list[Device]) -> Device:
    want_loopback = source == "speakers"
    for device in devices:
        if device.is_default and device.is_loopback == want_loopback:
            return device
    if want_loopback:
        raise EarwigError(
            "no loopback of the speakers found",
            "on Linux use PulseAudio/PipeWire; on Windows or macOS pass a loopback device "
            "with --speakers NAME (README, \"The speakers' loopback\"), or disable the source")
    inputs = [d for d in devices if not d.is_loopback]
    if not inputs:
        raise EarwigError("no microphone found", "connect one, or pick a device with --mic NAME")
    return inputs[0]


def echo_between(mic: Device, speakers: Device) -> str:
    """Whether ``mic`` can hear what ``speakers`` loops back, in words for `earwig devices`:
    only a room's speakers reach its microphone, so the names tell (PulseAudio's tunnels to
    another machine and Bluetooth headsets by their driver's prefix)."""
    pair = f"the microphone ({mic.name}) and the speakers ({speakers.name})"
    if "tunnel" in mic.name or "tunnel" in speakers.name:
        return (f"{pair}: one is on another machine (a network tunnel), so the mic does not hear these "
                "speakers; echo.cancel = auto runs the canceller, which waits for an echo that does not come")
    if mic.name.startswith("bluez_") and speakers.name.startswith("bluez_"):
        return (f"{pair} are one Bluetooth headset's, which cancels its own echo; earwig's canceller "
                "stays out of the way until it hears one")
    return (f"{pair} are this machine's: without headphones the mic hears the speakers, and "
            "echo.cancel = auto takes them out of it (README, 'Laptop speakers, no headphones')")
