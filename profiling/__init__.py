"""The profiling mode, ``earwig profile``: a real run recorded (``profile_run``), where every
millisecond went (``profile_report``), a Perfetto trace and a latency plot; the per-process
CPU and memory the monitor's panel shows too (``process_usage``). The benchmarks are in
``bench/``, the harness they share with the tests in ``harness/``."""
