"""End-to-end tests start the real site through the same helper the benchmarks use."""
from bench.livesite import ROOT, LiveSite, free_port, start_site

__all__ = ["ROOT", "LiveSite", "free_port", "start_site"]
