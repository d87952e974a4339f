"""Chat models for search and training: ``load_chat_model(spec)`` over llama.cpp, transformers and OpenAI APIs.

Importing this package is light (no torch/transformers): backends are imported when a model is loaded.
"""

from langgraph_stl.models.embedded import CHATML_TEMPLATE, embedded_gguf_path, embedded_hf_folder
from langgraph_stl.models.loader import SPEC_FORMS, ModelSpec, load_chat_model, parse_spec
from langgraph_stl.models.logprobs import anext_token_logprobs, next_token_logprobs
from langgraph_stl.models.server import LlamaServerError, close_all_servers
from langgraph_stl.models.usage import TokenUsageCallback

__all__ = [
    "CHATML_TEMPLATE",
    "SPEC_FORMS",
    "LlamaServerError",
    "ModelSpec",
    "TokenUsageCallback",
    "anext_token_logprobs",
    "close_all_servers",
    "embedded_gguf_path",
    "embedded_hf_folder",
    "load_chat_model",
    "next_token_logprobs",
    "parse_spec",
]
