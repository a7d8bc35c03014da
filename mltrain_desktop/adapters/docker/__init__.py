"""The one Docker adapter, used by jobs (engine.backends.docker*) and endpoints (serving.container).

engine: target validation, the one client factory (api_client / docker_client), probing, engine silence;
labels: the label namespace (workspace, owner run|endpoint|build); containers: the hardened builder;
logs: the log pump and its cursor; cleanup: removes only our containers whose owner is over;
images: environment images (build, cache, lock).
"""
