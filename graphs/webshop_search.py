"""LangGraph Studio: STL search on WebShop over HTTP.

Input ``{"task_id": "fixed_0"}``. The shop is ``$STL_WEBSHOP_URL`` when set (any WebShop server), else an embedded
server over the local catalogue, started on the first run (not at import, so Studio starts fast). Context as in
``graphs/game24_search.py``; WebShop's defaults are the paper's (5 selected clickables, 10 root queries, depth 5,
forced Buy Now at the last step, 3 rollouts).
"""

import os

from langgraph_stl.envs.webshop.http_env import WebShopHttpEnv
from langgraph_stl.search import create_search_graph


def _shop() -> WebShopHttpEnv:
    return WebShopHttpEnv(base_url=os.environ.get("STL_WEBSHOP_URL") or None)


graph = create_search_graph(_shop, algorithm=None).compile(name="webshop_search")
