"""The workspace database: opening it (WAL, busy timeout) and its one schema with migrations."""
