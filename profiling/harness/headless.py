"""The desktop a dictation runs on, without one: an X server (Xvfb), a PulseAudio with a
speaker sink and a fake microphone (../shared/ENVIRONMENT.md), and a real text field to type
into. Used by the dictation benchmark and by the tests, so both run them the same way.

Each is a context manager that starts the daemon, waits until it answers, sets the
environment for this process (and every process it starts), and ends it by its PID.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PULSE_MODULES = [
    "module-native-protocol-unix",
    "module-null-sink sink_name=sysout rate=48000 sink_properties=device.description=SystemOut",
    "module-null-sink sink_name=micfeed rate=16000 channels=1",
    "module-remap-source source_name=fakemic master=micfeed.monitor channels=1 "
    "source_properties=device.description=FakeMic",
]


@contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """These variables set (None: unset) for this process and what it starts, then restored."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def x_server() -> Iterator[str]:
    """An Xvfb on a free display number (it picks one and says which when it is ready)."""
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                              pass_fds=(write,), stderr=subprocess.DEVNULL)
    os.close(write)
    answer = b""
    try:  # read to the newline: closing early would fail Xvfb's second write (it exits)
        while not answer.endswith(b"\n") and (chunk := os.read(read, 16)):
            answer += chunk
    finally:
        os.close(read)
    number = answer.decode().strip()
    if not number:
        server.kill()
        raise RuntimeError("Xvfb did not start")
    try:
        with environment(DISPLAY=f":{number}"):
            yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


@contextmanager
def pulse_server(runtime: Path | None = None) -> Iterator[dict[str, str]]:
    """A PulseAudio with speakers ``sysout`` (loopback ``sysout.monitor``) and a fake
    microphone ``fakemic`` fed by playing into ``micfeed``; yields its environment."""
    with tempfile.TemporaryDirectory() as scratch:
        runtime = runtime or Path(scratch)
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        runtime.chmod(0o700)
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
        env.pop("PULSE_SERVER", None)
        command = ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--log-target=stderr"]
        for module in PULSE_MODULES:
            command += ["-L", module]
        with open(runtime / "pulse.log", "wb") as log:
            server = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 15
                while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"PulseAudio did not start: {(runtime / 'pulse.log').read_text()[-2000:]}")
                    time.sleep(0.1)
                with environment(XDG_RUNTIME_DIR=str(runtime), PULSE_SERVER=None):
                    yield env
            finally:
                server.terminate()
                server.wait(10)


@contextmanager
def unplugged(source: str = "fakemic") -> Iterator[None]:
    """The PulseAudio source ``source`` (one of ``PULSE_MODULES``) is gone, as if its
    device were unplugged, until the block ends."""
    def pactl(*args: str) -> str:
        return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout

    module = next(line.split()[0] for line in pactl("list", "short", "modules").splitlines()
                  if f"source_name={source} " in line)
    pactl("unload-module", module)
    try:
        yield
    finally:
        pactl("load-module", *next(m for m in PULSE_MODULES if f"source_name={source} " in m).split())


@contextmanager
def bleed(latency_ms: int, volume: float) -> Iterator[None]:
    """What the speakers play reaches the fake microphone, ``latency_ms`` later at
    ``volume`` (1.0: as loud as played), as laptop speakers reach their microphone: a
    PulseAudio loopback from ``sysout.monitor`` into ``micfeed``, until the block ends."""
    def pactl(*args: str) -> str:
        return subprocess.run(["pactl", *args], check=True, capture_output=True, text=True).stdout

    module = pactl("load-module", "module-loopback", "source=sysout.monitor", "sink=micfeed",
                   f"latency_msec={latency_ms}", "source_dont_move=true", "sink_dont_move=true").strip()
    try:
        deadline = time.monotonic() + 5
        while not (inputs := [line.split()[0] for line in pactl("list", "short", "sink-inputs").splitlines()
                              if "module-loopback" in line]):
            if time.monotonic() > deadline:
                raise RuntimeError("PulseAudio's loopback has no sink input")
            time.sleep(0.05)
        pactl("set-sink-input-volume", inputs[-1], f"{round(volume * 65536)}")
        yield
    finally:
        pactl("unload-module", module)


async def talk_over(speakers: Path, talker: Path, after_s: float) -> None:
    """``speakers`` played on the speakers and, ``after_s`` into it, ``talker`` into the fake
    microphone; returns when both have played."""
    import asyncio

    played = await asyncio.create_subprocess_exec("paplay", "--device=sysout", str(speakers))
    await asyncio.sleep(after_s)
    talked = await asyncio.create_subprocess_exec("paplay", "--device=micfeed", str(talker))
    if await played.wait() or await talked.wait():
        raise RuntimeError("paplay could not play into the headless PulseAudio")


class SpeakersRecorder:
    """What the speakers play, recorded from their monitor (``parec``, 16 kHz mono float32)
    by a thread that stamps each block as it arrives: the tests compare what was played,
    the play benchmark times when its first sample came out. Counted in samples taken, so
    a slow start or a long output buffer never cuts a recording short."""

    RATE = 16000
    BLOCK = 160

    def __init__(self) -> None:
        self._process = subprocess.Popen(["parec", "--device=sysout.monitor", f"--rate={self.RATE}",
                                          "--channels=1", "--format=float32le", "--latency-msec=10"],
                                         stdout=subprocess.PIPE)
        self._blocks: list[tuple[int, bytes]] = []  # (arrival, monotonic ns; the block)
        self._taken = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.wait_for(self.RATE // 10)  # recording for real before anything plays

    def _read(self) -> None:
        while block := self._process.stdout.read(self.BLOCK * 4):
            with self._taken:
                self._blocks.append((time.monotonic_ns(), block))
                self._taken.notify_all()

    @property
    def samples(self) -> int:
        return sum(len(block) for _, block in self._blocks) // 4

    def wait_for(self, samples: int) -> None:
        """Until ``samples`` more are taken (the monitor streams silence when nothing
        plays, so they always come), or parec has ended."""
        with self._taken:
            wanted = self.samples + samples
            self._taken.wait_for(lambda: self.samples >= wanted or not self._thread.is_alive(), timeout=60)

    def audio(self) -> np.ndarray:
        return np.frombuffer(b"".join(block for _, block in self._blocks), np.float32)

    def first_sound_ns(self, after_ns: int, threshold: float = 1e-3) -> int | None:
        """When the first sample louder than ``threshold`` of a block that came after
        ``after_ns`` left the speakers: its block's arrival less the samples behind it."""
        for arrived, block in self._blocks:
            loud = np.flatnonzero(np.abs(np.frombuffer(block, np.float32)) > threshold)
            if arrived > after_ns and len(loud):
                return arrived - int((len(block) // 4 - loud[0]) * 1e9 / self.RATE)
        return None

    def close(self, after_s: float = 1.0) -> None:
        """Record ``after_s`` more (what the output still held), then stop."""
        self.wait_for(int(after_s * self.RATE))
        self._process.terminate()
        self._process.wait(10)
        self._thread.join(10)


@contextmanager
def speakers_recorded() -> Iterator[SpeakersRecorder]:
    recorder = SpeakersRecorder()
    try:
        yield recorder
    finally:
        recorder.close()


class TextField:
    """A Tk window titled ``title`` holding one text field (``tk_field``), and every change
    of its text with its time: ``changes`` as (monotonic ns, text), ``text`` the latest."""

    def __init__(self, title: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "earwig.profiling.harness.tk_field", title],
                                        stdout=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the Tk text field did not start")
        found = subprocess.run(["xdotool", "search", "--name", f"^{title}$"], check=True,
                               capture_output=True, text=True)
        self.window = found.stdout.split()[0]
        self.changes: list[tuple[int, str]] = []
        threading.Thread(target=self._follow, daemon=True).start()

    def _follow(self) -> None:
        for line in self.process.stdout:
            stamp, text = line.rstrip("\n").split("\t", 1)
            self.changes.append((int(stamp), json.loads(text)))

    @property
    def text(self) -> str:
        return self.changes[-1][1] if self.changes else ""

    def focus(self) -> None:
        subprocess.run(["xdotool", "windowfocus", "--sync", self.window], check=True)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


SWAY_CONFIG = "output HEADLESS-1 resolution 1280x720\ndefault_border none\nfocus_follows_mouse no\nxwayland disable\n"


@dataclass(frozen=True)
class WaylandSession:
    """``env``: what the compositor's own clients run with; ``as_user``: the prefix that runs
    a command as the compositor's user; ``home``: that user's folder, removed at the end."""

    env: dict[str, str]
    as_user: list[str]
    home: Path


@contextmanager
def wayland_session() -> Iterator[WaylandSession]:
    """A headless sway (pixman rendering, no input devices), started as ``nobody`` when this
    process is root (sway refuses root); this process and what it starts reach it through
    ``WAYLAND_DISPLAY`` (an absolute path) and ``SWAYSOCK``. A ``DISPLAY`` set too is left
    as it is: a Wayland session's XWayland, which dictation must not type into."""
    home = Path(tempfile.mkdtemp(prefix="earwig-sway-"))
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    (home / "config").write_text(SWAY_CONFIG)
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    if as_user:
        subprocess.run(["chown", "-R", "65534:65534", str(home)], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": str(runtime),
           "WLR_BACKENDS": "headless", "WLR_RENDERER": "pixman", "WLR_LIBINPUT_NO_DEVICES": "1"}
    with open(home / "sway.log", "w") as log:
        sway = subprocess.Popen([*as_user, "sway", "-c", str(home / "config")], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    try:
        display, ipc = _sway_sockets(sway, runtime, home)
        env.update(WAYLAND_DISPLAY=str(display), SWAYSOCK=str(ipc))
        with environment(WAYLAND_DISPLAY=str(display), SWAYSOCK=str(ipc), XDG_SESSION_TYPE="wayland"):
            yield WaylandSession(env, as_user, home)
    finally:
        sway.terminate()
        sway.wait(10)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def weston_session() -> Iterator[WaylandSession]:
    """A headless weston: a Wayland compositor that, like GNOME's and KDE's, offers no
    virtual keyboard (and, headless, no seat: its clipboard cannot be used either). Reached
    as ``wayland_session``'s sway is; ``SWAYSOCK`` is unset meanwhile."""
    home = Path(tempfile.mkdtemp(prefix="earwig-weston-"))
    runtime = home / "runtime"
    runtime.mkdir(mode=0o700)
    as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    if as_user:
        subprocess.run(["chown", "-R", "65534:65534", str(home)], check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": str(runtime)}
    with open(home / "weston.log", "w") as log:
        weston = subprocess.Popen([*as_user, "weston", "--backend=headless-backend.so", "--socket=wayland-1",
                                   "--idle-time=0"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        display = runtime / "wayland-1"
        deadline = time.monotonic() + 60
        while not display.is_socket():
            if weston.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"weston did not start: {(home / 'weston.log').read_text()[-2000:]}")
            time.sleep(0.05)
        env.update(WAYLAND_DISPLAY=str(display))
        with environment(WAYLAND_DISPLAY=str(display), SWAYSOCK=None, XDG_SESSION_TYPE="wayland"):
            yield WaylandSession(env, as_user, home)
    finally:
        weston.terminate()
        weston.wait(10)
        shutil.rmtree(home, ignore_errors=True)


def _sway_sockets(sway: subprocess.Popen, runtime: Path, home: Path) -> tuple[Path, Path]:
    """Its Wayland and IPC sockets, once both exist (sway makes them as it starts)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sway.poll() is None:
        displays, ipcs = sorted(runtime.glob("wayland-[0-9]")), sorted(runtime.glob("sway-ipc.*.sock"))
        if displays and ipcs:
            return displays[0], ipcs[0]
        time.sleep(0.05)
    sway.kill()
    raise RuntimeError(f"sway did not start: {(home / 'sway.log').read_text()[-2000:]}")


@contextmanager
def notification_service(session: WaylandSession) -> Iterator[Callable[[], list[dict[str, str]]]]:
    """A session bus of its own, with mako (a Wayland notification daemon, in ``session``'s
    sway) answering the freedesktop Notifications interface on it; this process and what it
    starts reach it through ``DBUS_SESSION_BUS_ADDRESS``. Yields what lists the
    notifications on screen (each one's ``summary`` and ``body``)."""
    folder = Path(tempfile.mkdtemp(prefix="earwig-bus-"))
    bus = subprocess.Popen(["dbus-daemon", "--session", f"--address=unix:path={folder / 'bus'}", "--nofork",
                            "--print-address"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = bus.stdout.readline().strip()
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
    # Shown until dismissed, whatever timeout the sender asks for: a busy machine reads them late.
    mako = subprocess.Popen(["mako", "--ignore-timeout", "1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def shown() -> list[dict[str, str]]:
        listed = subprocess.run(["makoctl", "list"], env=env, capture_output=True, text=True, timeout=10)
        if listed.returncode:
            raise RuntimeError(f"makoctl list failed: {listed.stderr.strip()}")
        return [{key: value["data"] for key, value in note.items()} for note in json.loads(listed.stdout)["data"][0]]

    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["makoctl", "list"], env=env, capture_output=True, timeout=10).returncode:
            if mako.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mako did not start on the session bus")
            time.sleep(0.05)
        with environment(DBUS_SESSION_BUS_ADDRESS=address):
            yield shown
    finally:
        for process in (mako, bus):
            process.terminate()
            process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


#: ctrl+v pastes, as in a text field (a terminal's own binding is ctrl+shift+v).
FOOT_CONFIG = "[key-bindings]\nclipboard-paste=Control+v Control+Shift+v\n"


class WaylandWindow:
    """A foot terminal with app id ``name`` in ``session``'s sway whose every typed or pasted
    character goes, as it comes (a raw terminal), into a file: ``text`` reads it back."""

    def __init__(self, session: WaylandSession, name: str) -> None:
        self.name = name
        self.path = session.home / f"{name}.typed"
        self.path.touch()
        config = session.home / "foot.ini"
        config.write_text(FOOT_CONFIG)
        if session.as_user:
            os.chown(self.path, 65534, 65534)
            os.chown(config, 65534, 65534)
        self.process = subprocess.Popen([*session.as_user, "foot", f"--config={config}", f"--app-id={name}", "sh", "-c",
                                         f"stty raw -echo; exec cat > '{self.path}'"],
                                        env=session.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not self.window_id():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"foot ({name}) did not open a window")
            time.sleep(0.05)

    def window_id(self) -> int:
        """Its window's id in sway's tree (0 until it has one)."""
        from earwig.actors.dictation_wayland import sway_nodes

        tree = json.loads(subprocess.run(["swaymsg", "-t", "get_tree", "-r"], check=True, capture_output=True,
                                         text=True).stdout)
        return next((node["id"] for node in sway_nodes(tree) if node.get("app_id") == self.name), 0)

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def focus(self) -> None:
        subprocess.run(["swaymsg", f"[app_id={self.name}] focus"], check=True, capture_output=True)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
