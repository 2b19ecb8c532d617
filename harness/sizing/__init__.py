"""Container sizing's I/O side: kernel memory cgroups (cgroup) and the proof under a limit
(proof). The model itself is pure: harness.analysis.sizing."""
