"""The outage drills' parts: steady traffic from worker processes, the modules' probes, and the
history check. ``harness/chaos_drills.py`` puts them together and runs the drills."""
