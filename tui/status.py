"""The status bar: each model's state (evicted / loading / ready / failed, device, memory),
where the kept text is written (a transcription server, which hears each utterance, or
this machine), the last end-of-speech -> Final latency, the dictation state, and the echo
canceller's return loss and delay where it runs. It wraps onto a second
line in a narrow terminal rather than cut the latency off."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

from earwig.messages import EchoState, Final, ModelState, ServerState

_STATE_COLOURS = {"ready": "green", "loading": "yellow", "evicted": "dim", "failed": "bold red"}


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: auto;
        background: $panel;
        padding: 0 1;
    }
    """

    #: Seconds from the end of the speech (its capture) to the Final, for the last Final.
    final_after_s: reactive[float | None] = reactive(None)
    dictation: reactive[str] = reactive("off")
    #: How dictated text gets into the window (``DesktopChoice.typing``), shown while dictation is on.
    dictation_via: reactive[str] = reactive("")
    #: The echo canceller, where it runs (empty: it does not).
    echo: reactive[str] = reactive("")
    #: Who wrote the last Final, with a transcription server set ("": none is set).
    engine: reactive[str] = reactive("")

    def __init__(self) -> None:
        super().__init__("")
        self.models: dict[str, ModelState] = {}

    def show_model(self, state: ModelState) -> None:
        self.models[state.role] = state
        self.refresh_text()

    def watch_final_after_s(self) -> None:
        self.refresh_text()

    def watch_dictation(self) -> None:
        self.refresh_text()

    def watch_dictation_via(self) -> None:
        self.refresh_text()

    def watch_echo(self) -> None:
        self.refresh_text()

    def watch_engine(self) -> None:
        self.refresh_text()

    def show_server(self, state: ServerState) -> None:
        """Said plainly, since earwig's promise is that nothing leaves the machine otherwise."""
        self.engine = (f"[yellow]audio sent to[/] {state.model}" if state.up
                       else "[bold red]server down[/]: final on this machine")

    def show_writer(self, final: Final) -> None:
        """Who wrote the last Final, where a server is set: it, or this machine's model."""
        if self.engine:
            self.engine = (f"[yellow]audio sent to[/] {final.model}" if final.model
                           else "[yellow]server set[/], last Final by this machine")

    def show_echo(self, state: EchoState) -> None:
        """The return loss it reaches (as a loss: -30 dB) and how late the echo is."""
        if not state.heard:
            self.echo = "echo cancel on, none heard"
        elif state.erle_db is None:
            self.echo = f"echo cancel at {state.delay_ms:.0f} ms"
        else:
            self.echo = f"echo cancel {-state.erle_db:.0f} dB at {state.delay_ms:.0f} ms"

    def refresh_text(self) -> None:
        parts = []
        for role in ("preview", "final", "retry"):
            state = self.models.get(role)
            if state is None and role == "retry":
                continue  # shown once a retry loads a model of its own
            if state is None:
                parts.append(f"{role} [dim]not loaded[/]")
                continue
            memory = f" {state.memory_bytes / 2**20:.0f} MB" if state.state == "ready" and state.memory_bytes else ""
            device = f" {state.device}" if state.device else ""
            parts.append(f"{role} {state.model} [{_STATE_COLOURS[state.state]}]{state.state}[/]{device}{memory}")
        latency = "-" if self.final_after_s is None else f"{self.final_after_s:.2f} s"
        parts.append(f"speech end → Final {latency}")
        via = f" ({self.dictation_via})" if self.dictation_via and self.dictation not in ("off", "unavailable") else ""
        parts.append(f"dictation {self.dictation}{via}")
        if self.echo:
            parts.append(self.echo)
        if self.engine:
            parts.append(self.engine)
        self.update(" │ ".join(parts))

    def on_mount(self) -> None:
        self.refresh_text()
