"""WebShop (Yao et al. 2022), reimplemented locally: catalogue, goals, reward, search, server, envs, tools."""
