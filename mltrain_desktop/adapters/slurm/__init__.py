"""Slurm: batch-script generation, parsing of Slurm's command output, state mapping, commands.

``script`` and ``parse`` and ``states`` are pure functions (tested without a cluster);
``commands`` runs ``sinfo``/``sbatch``/``squeue``/``sacct``/``scancel`` on this machine or on a
login host over SSH.
"""
