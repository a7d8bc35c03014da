"""The parts of benchmarks/chaos.py: plan, setup, faults, clients, observation, checks, engines."""
