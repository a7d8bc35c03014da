"""The workspace database and the only SQL in the app: db.py (opening: WAL, busy timeout),
migrations.py (the one schema), transaction.py, and one repository module per table group:
runs, metrics, experiments, catalog (datasets), models, targets, environments, endpoints, info
(workspace facts and counts), changes (what other clients wrote); blobstore.py keeps file bodies."""
