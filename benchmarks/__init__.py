"""The benchmarks: scripts run as `python benchmarks/<name>.py`, never imported by the package.

`benchmarks.submissions` is also where the test corpus takes the hostile code it shares with
the flood benchmark (the benchmarks may import nothing from tests/, so the shared pieces live here).
"""
