"""The config file (models, loading, its messages and checks) and the runtime
settings. The connectors' config classes come from their registries."""
