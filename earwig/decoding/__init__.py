"""Whisper's passes over windows of audio, shared by the model actors and ``earwig
transcribe``: the loaded model and its encode/detect/decode passes (``model``),
``transcribe()``'s rules on windows (``transcribe``), greedy decoding checked against a
draft (``draft``), the rules that drop Whisper's inventions (``hallucinations``), and the
file mode that runs them in-process over whole files (``files``, ``file_windows``)."""
