"""The job engine: one detached supervisor process per run, and the backends it drives."""
