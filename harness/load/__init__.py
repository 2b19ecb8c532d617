"""Generating load: Locust run headless as a subprocess (one process, local workers, or a
master with remote workers), and the acknowledged-writes files its processes leave."""
