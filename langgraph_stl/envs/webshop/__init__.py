"""WebShop environment: catalogue, goals, search engine, reward, server and agents' environments."""
