"""A tiny random Llama with a locally trained BPE tokenizer and a ChatML chat template: SFT tests without the hub.

Same architecture family and chat format as SmolLM2 (the embedded model), so the training code paths are the ones
real runs take, at ~100k parameters.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "Determine the value / correctness score (1 - 10) of the current state.",
    "Determine the value / correctness score (1 - 10) of the terminal state.",
    "I will evaluate the best successor state from the current state:",
    "Best Next Action: 4 + 8 = 12 (left: 12 6)",
    "Observation of Best Successor State: Terminal State",
    "Reflection of the Best Successor State: 12 * 2 = 24, the numbers can reach 24. sure",
    "Thus the correctness score is 7.50 / 10.00.",
    "Trajectory: Current Action: Current Observation: Input: 4 4 6 8 Steps: left: impossible likely",
    "0123456789 + - * / = ( ) user assistant system",
]


def build_tiny_llama(folder: Path, *, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny random ``LlamaForCausalLM`` and its tokenizer to ``folder`` and return the folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(CORPUS, trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.chat_template = CHATML

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
