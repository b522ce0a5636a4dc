"""The Textual monitor: spectrogram, level meters, mic and speaker columns."""
