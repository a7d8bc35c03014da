"""The local inference service: the server (server.py entry point; model_discovery, model_loading,
entry_script, auth, http_handler, protocol, stats) and endpoint containers (container.py)."""
