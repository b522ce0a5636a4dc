"""Audio every part reads the same way: files decoded to 16 kHz mono (``files``), whisper's
log-mel frames computed incrementally (``log_mel``), Silero's voice activity and where an
utterance ends (``vad``). The mel actor runs the last two live; ``earwig transcribe`` runs
them on files; the model actors and the monitor read the frames."""
