"""Running a target: its process tree started on free loopback ports, watched until healthy,
and stopped (SIGINT, then SIGTERM, then SIGKILL to the process group) on every exit path."""
