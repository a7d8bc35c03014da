"""Dialogs of the window: workspace, dataset, compute, submit, register model, about."""
