"""The desktop, audio server and scoring the tests and the benchmarks share: a headless
X server and PulseAudio, a real X text field, word error rate. Development tools in the
repository, not part of the installed package."""
