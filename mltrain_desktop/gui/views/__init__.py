"""The pages of the main window (one per core object) and what they share."""
