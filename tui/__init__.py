"""The Textual monitor (issue 5): spectrogram, level meters, mic and speaker columns."""
