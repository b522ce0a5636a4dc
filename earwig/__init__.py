"""earwig: local live transcription of microphone and speakers, and hotkey dictation."""

__version__ = "0.1.0"
