"""The only place the workspace schema is defined: numbered migrations, applied in order.

``PRAGMA user_version`` records the last applied migration. Each migration runs in one
transaction, so a crash leaves the database at the previous version. A database whose
version is newer than this code knows is refused, never altered.
"""
from __future__ import annotations

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "initial schema", """
CREATE TABLE workspace_info (key TEXT PRIMARY KEY, value TEXT);

CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);

CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);

CREATE TABLE dataset_versions (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id),
    version INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    file_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    sources TEXT NOT NULL DEFAULT '[]',
    UNIQUE (dataset_id, version)
);

CREATE TABLE dataset_files (
    version_id INTEGER NOT NULL REFERENCES dataset_versions(id),
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (version_id, path)
);

CREATE TABLE compute_targets (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    config TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'Unknown',
    state_detail TEXT NOT NULL DEFAULT '',
    probe TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    updated REAL NOT NULL
);

CREATE TABLE environments (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    location TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'Building',
    created REAL NOT NULL,
    last_used REAL
);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    compute TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    spec TEXT NOT NULL DEFAULT '{}',
    exit_code INTEGER,
    error TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    supervisor_pid INTEGER,
    supervisor_started REAL,
    backend_state TEXT NOT NULL DEFAULT '{}',
    environment_hash TEXT,
    UNIQUE (experiment_id, number)
);
CREATE INDEX runs_status ON runs(status);
CREATE INDEX runs_created ON runs(created);

CREATE TABLE run_events (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    status TEXT NOT NULL,
    at REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX run_events_run ON run_events(run_id);

CREATE TABLE run_inputs (
    run_id TEXT NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    dataset_version_id INTEGER NOT NULL REFERENCES dataset_versions(id),
    mode TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE metric_series (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    rank INTEGER NOT NULL DEFAULT 0,
    UNIQUE (run_id, name, rank)
);

CREATE TABLE metrics (
    series_id INTEGER NOT NULL,  -- metric_series.id (no foreign-key check: ingestion is the hot path)
    step INTEGER NOT NULL,
    value REAL,
    text TEXT,
    wall REAL NOT NULL
);
CREATE INDEX metrics_series_step ON metrics(series_id, step);

CREATE TABLE metric_rows (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    row TEXT NOT NULL,
    wall REAL NOT NULL,
    rank INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX metric_rows_run ON metric_rows(run_id, name);

CREATE TABLE ingest_offsets (
    run_id TEXT NOT NULL,
    file TEXT NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (run_id, file)
);

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    framework TEXT,
    framework_version TEXT,
    resource_configuration TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    description TEXT NOT NULL DEFAULT '',
    run_id TEXT REFERENCES runs(id),
    source_path TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL,
    file_count INTEGER NOT NULL DEFAULT 0,
    total_bytes INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    UNIQUE (name, version)
);

CREATE TABLE endpoints (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT 'local',
    state TEXT NOT NULL,
    state_detail TEXT NOT NULL DEFAULT '',
    model_ids TEXT NOT NULL DEFAULT '[]',
    config TEXT NOT NULL DEFAULT '{}',
    host TEXT NOT NULL DEFAULT '127.0.0.1',
    port INTEGER,
    pid INTEGER,
    pid_started REAL,
    container_id TEXT,
    key TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
"""),
    (2, "sweep parents and their child runs", """
ALTER TABLE runs ADD COLUMN parent_id TEXT REFERENCES runs(id);
ALTER TABLE runs ADD COLUMN run_type TEXT NOT NULL DEFAULT 'run';
CREATE INDEX runs_parent ON runs(parent_id);
"""),
]

LATEST = MIGRATIONS[-1][0]
