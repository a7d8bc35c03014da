"""Backends run a prepared job somewhere: local processes, Docker containers, MPI, parameter-server clusters."""
