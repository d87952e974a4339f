"""The value model: any chat model turned into state values in [0, 1] (−1 = rule-based or unparseable).

Parsing follows the reference (`value_outputs_unwrap`): lower-case, take the text after the last "the correctness
score is ", then the fine-tuned path requires a '/' and reads the float before it, the base path reads the float of
the rest; divide by 10; the value is the mean of the valid samples, −1 when none parse. Base terminal values are
the share of ``[SUCCESS]`` lines (the reference's `get_success_proportion`). The rationale kept for a lookahead
target is the median-scored sample's text, as in the reference.

All siblings of a node are valued in one :class:`~langgraph_stl.search.calls.Generate` call: one batch for
transformers, concurrent requests for servers. Each prompt starts with the shared trajectory and ends with the
child's action and observation, so siblings share a long prefix. The valuation is written once as a generator of
its I/O (:mod:`.twins`): :meth:`ValueModel.aevaluate` and :meth:`ValueModel.evaluate` drive it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from langgraph_stl.search import prompts as P
from langgraph_stl.search.calls import CallStyle, ChatModelLike, Generate, base_chat_model, model_name, role_config
from langgraph_stl.search.twins import AsyncOnly, Steps, Twin, adrive, drive

ValueStyle = Literal["base", "stl"]
ValueMode = Literal["generate", "logits"]
SCORE_PREFIX = "Thus " + P.SCORE_PHRASE
"""Assistant prefix of the logits readout: the next token is the score."""
DIGITS = frozenset("0123456789")
ONE_THRESHOLD = 1e-3
"""Below this P("1") the logits readout skips its second step (1 vs 10): the answer cannot move the score."""


@dataclass(frozen=True, slots=True)
class ValueItem:
    """One state to value: the trajectory up to its parent, the action into it and what it shows."""

    trajectory: str
    action: str
    observation: str
    terminal: bool = False
    previous_actions: tuple[str, ...] = ()


@dataclass(slots=True)
class ValueEstimate:
    """A state's value, the rationale behind it, and per-sample bookkeeping."""

    value: float
    rationale: str
    samples: list[float | None] = field(default_factory=list)
    failures: int = 0
    rule: bool = False


def parse_value(text: str, *, finetuned: bool) -> float | None:
    """Score of one value output on [0, 1], or None when it does not parse (reference rules, see module doc)."""
    rest = text.lower().split(P.SCORE_PHRASE)[-1]
    try:
        if finetuned:
            if "/" not in rest:
                return None
            number = float(rest.split("/")[0])
        else:
            number = float(rest)
    except ValueError:
        return None
    return number / 10 if math.isfinite(number) else None


def parse_success_share(text: str) -> float | None:
    """Share of ``[SUCCESS]`` among the ``[SUCCESS]``/``[FAILURE]`` marks of a terminal judgement, or None."""
    low = text.lower()
    success, failure = low.count("[success]"), low.count("[failure]")
    return success / (success + failure) if success + failure else None


def aggregate(samples: Sequence[float | None]) -> float:
    """Mean of the valid samples; −1 when none parse (reference)."""
    valid = [s for s in samples if s is not None]
    return sum(valid) / len(valid) if valid else -1.0


def expected_score(first: Mapping[str, float], after_one: Mapping[str, float] | None = None) -> float | None:
    """Expected score on [0, 1] from the next-token log-probs after the score phrase (``first``) and, optionally,
    after the phrase plus ``"1"`` (``after_one``).

    Digits 0–9 are read as the score's leading digit, which covers V0's {1, 2, 4, 6, 8, 10} and the fine-tuned
    ``X.XX / 10.00`` form, for tokenizers that write numbers digit by digit (SmolLM2) and those with one token per
    number alike ("10" as one token counts as 10). A leading "1" is 10 with probability P("0" | "...is 1") when
    ``after_one`` is given, else 1. None when the top tokens hold no score.
    """
    probs: dict[int, float] = {}
    for token, logprob in first.items():
        text = token.strip()
        if text in DIGITS or text == "10":  # not str.isdigit: "²" is a digit to it
            probs[int(text)] = probs.get(int(text), 0.0) + math.exp(logprob)
    total = sum(probs.values())
    if total <= 0:
        return None
    p_ten = 0.0
    if after_one:
        mass = sum(math.exp(lp) for lp in after_one.values())
        zero = sum(math.exp(lp) for tok, lp in after_one.items() if tok.strip() == "0")
        p_ten = zero / mass if mass > 0 else 0.0
    one = probs.pop(1, 0.0)
    score = sum(d * p for d, p in probs.items()) + one * (1 + 9 * p_ten)
    return min(1.0, score / total / 10)


def _may_be_ten(first: Mapping[str, float]) -> bool:
    """Whether the leading "1" is likely enough that the second readout step is worth a request."""
    return sum(math.exp(lp) for tok, lp in first.items() if tok.strip() == "1") > ONE_THRESHOLD


@dataclass(frozen=True, slots=True)
class _EnvValuePrompts:
    task: str
    examples: str
    terminal_task: str
    terminal_examples: str
    rule: Callable[[str, Sequence[str]], float | None] | None = None


_ENV_PROMPTS: dict[str, _EnvValuePrompts] = {
    "webshop": _EnvValuePrompts(
        P.WEBSHOP_VALUE_TASK,
        P.WEBSHOP_VALUE_EXAMPLES,
        P.WEBSHOP_TERMINAL_TASK,
        P.WEBSHOP_TERMINAL_EXAMPLES,
        P.webshop_rule_value,
    ),
    "game24": _EnvValuePrompts(
        P.GAME24_VALUE_TASK, P.GAME24_VALUE_EXAMPLES, P.GAME24_TERMINAL_TASK, P.GAME24_TERMINAL_EXAMPLES
    ),
}
_GENERIC = _EnvValuePrompts(P._VALUE_TASK, P.GENERIC_VALUE_EXAMPLES, P._TERMINAL_TASK, P.GENERIC_TERMINAL_EXAMPLES)


def _env_prompts(env_name: str) -> _EnvValuePrompts:
    return _ENV_PROMPTS.get(P.env_kind(env_name), _GENERIC)


class ValueModel:
    """A chat model (any chat-model Runnable) used as state-value function.

    ``style="base"`` prompts a general model with V0 (scale 1–10 in {1,2,4,6,8,10}) and the [SUCCESS]/[FAILURE]
    terminal judge; ``style="stl"`` prompts a fine-tuned model with the STL training format and parses the
    ``X / 10.00`` form. ``mode="logits"`` skips generation: one forward pass per state, reading the expected score
    from the next-token distribution after "Thus the correctness score is " (:func:`expected_score`; no rationale,
    so its lookahead targets carry none); it reads the chat model inside any wrappers (bind, retry, fallbacks do
    not apply to a readout). Its tokens reach the config's callbacks like any model call.

    Calls are named and tagged ``stl:value`` plus the environment, and tagged ``nostream`` unless
    ``stream_tokens=True``: a chat UI streaming ``stream_mode="messages"`` then shows the agent, not the rationales.
    """

    def __init__(
        self,
        model: ChatModelLike,
        *,
        style: ValueStyle = "base",
        mode: ValueMode = "generate",
        call_style: CallStyle = "auto",
        max_concurrency: int = 16,
        top_k: int = 20,
        stream_tokens: bool = False,
    ) -> None:
        if style not in ("base", "stl"):
            raise ValueError(f"value style must be 'base' or 'stl', got {style!r}")
        if mode not in ("generate", "logits"):
            raise ValueError(f"value mode must be 'generate' or 'logits', got {mode!r}")
        self.model = model
        self.style: ValueStyle = style
        self.mode: ValueMode = mode
        self.call_style: CallStyle = call_style
        self.max_concurrency = max_concurrency
        self.top_k = top_k
        self.stream_tokens = stream_tokens

    @property
    def name(self) -> str:
        """Model name for reports (``model_name``/``model`` attribute, else the class name)."""
        return model_name(self.model)

    def prompt(self, env_name: str, item: ValueItem) -> str:
        """The prompt for ``item``: trajectory first, the child's action and observation last."""
        if self.style == "stl":
            if item.terminal:
                return P.terminal_prompt(item.trajectory, item.action)
            return P.stl_prompt(item.trajectory, item.action, item.observation)
        env = _env_prompts(env_name)
        if item.terminal:
            return P.base_terminal_prompt(env.terminal_task, env.terminal_examples, item.trajectory, item.action)
        return P.value_prompt(env.task, env.examples, item.trajectory, item.action, item.observation)

    def parse(self, text: str, *, terminal: bool) -> float | None:
        """One sample's value: the '/' form for fine-tuned models, the success share for base terminal judges."""
        if self.style == "stl":
            return parse_value(text, finetuned=True)
        return parse_success_share(text) if terminal else parse_value(text, finetuned=False)

    async def aevaluate(
        self,
        env_name: str,
        items: Sequence[ValueItem],
        *,
        n_samples: int = 5,
        config: RunnableConfig | None = None,
    ) -> list[ValueEstimate]:
        """Values of sibling states, all model requests issued together. Rule-based −1s cost no call."""
        return await adrive(self.steps(env_name, items, n_samples=n_samples, config=config))

    def evaluate(
        self,
        env_name: str,
        items: Sequence[ValueItem],
        *,
        n_samples: int = 5,
        config: RunnableConfig | None = None,
    ) -> list[ValueEstimate]:
        """Sync twin of :meth:`aevaluate`."""
        return drive(self.steps(env_name, items, n_samples=n_samples, config=config))

    def steps(
        self,
        env_name: str,
        items: Sequence[ValueItem],
        *,
        n_samples: int = 5,
        config: RunnableConfig | None = None,
    ) -> Steps[list[ValueEstimate]]:
        """The valuation of sibling states as steps (see :mod:`.twins`)."""
        rule = _env_prompts(env_name).rule
        ruled: dict[int, float] = {}
        if rule is not None:
            for i, item in enumerate(items):
                verdict = rule(item.action, item.previous_actions)
                if verdict is not None:
                    ruled[i] = verdict
        scored = [i for i in range(len(items)) if i not in ruled]
        prompts = [self.prompt(env_name, items[i]) for i in scored]
        call_config = role_config(config, "value", env_name, stream=self.stream_tokens)
        model_estimates: list[ValueEstimate]
        if self.mode == "logits":
            model_estimates = yield AsyncOnly(lambda: self._logits(prompts, call_config))
        else:
            texts = yield Generate(
                self.model,
                [p for p in prompts for _ in range(n_samples)],
                call_config,
                call_style=self.call_style,
                max_concurrency=self.max_concurrency,
            )
            model_estimates = [
                self._estimate(texts[j * n_samples : (j + 1) * n_samples], terminal=items[i].terminal)
                for j, i in enumerate(scored)
            ]
        by_index = dict(zip(scored, model_estimates, strict=True))
        return [
            ValueEstimate(value=ruled[i], rationale="", rule=True) if i in ruled else by_index[i]
            for i in range(len(items))
        ]

    def _estimate(self, texts: Sequence[str], *, terminal: bool) -> ValueEstimate:
        samples = [self.parse(t, terminal=terminal) for t in texts]
        valid = sorted((s, k) for k, s in enumerate(samples) if s is not None)
        median_text = texts[valid[(len(valid) - 1) // 2][1]] if valid else texts[0]
        return ValueEstimate(
            value=aggregate(samples),
            rationale=P.strip_score_line(median_text),
            samples=samples,
            failures=sum(s is None for s in samples),
        )

    async def _logits(self, prompts: Sequence[str], config: RunnableConfig | None) -> list[ValueEstimate]:
        """One forward step per state after :data:`SCORE_PREFIX`, plus a prefix-cached "1" step where 10 is likely."""
        from langgraph_stl.models.logprobs import aread_logprobs
        from langgraph_stl.models.usage import areport_usage

        model = base_chat_model(self.model)
        if model is None:
            raise TypeError(f"logits mode needs a chat model inside {type(self.model).__name__}, found none")
        if not prompts:
            return []
        messages: list[list[BaseMessage]] = [[HumanMessage(content=p)] for p in prompts]
        readouts = await aread_logprobs(model, messages, SCORE_PREFIX, self.top_k, follow_up="1", ask=_may_be_ten)
        if readouts:
            await areport_usage(
                model,
                config,
                messages,
                input_tokens=sum(r.prompt_tokens for r in readouts),
                output_tokens=sum(r.reads for r in readouts),
            )
        estimates = []
        for r in readouts:
            score = expected_score(r.first, r.second)
            estimates.append(
                ValueEstimate(
                    value=-1.0 if score is None else score, rationale="", samples=[score], failures=int(score is None)
                )
            )
        return estimates


class ProgrammaticValue(ValueModel):
    """A value model without a language model (baselines, oracles, heuristics): :meth:`score` values each state;
    no calls, no tokens."""

    def __init__(self, label: str) -> None:
        self.style = "base"
        self.mode = "logits"
        self.label = label

    @property
    def name(self) -> str:
        return self.label

    def score(self, item: ValueItem) -> float:
        raise NotImplementedError

    def steps(
        self,
        env_name: str,
        items: Sequence[ValueItem],
        *,
        n_samples: int = 5,
        config: RunnableConfig | None = None,
    ) -> Steps[list[ValueEstimate]]:
        """One :meth:`score` per state, in order."""
        scores: list[float] = yield Twin(lambda: [self.score(item) for item in items])
        return [ValueEstimate(value=v, rationale="", samples=[v]) for v in scores]


class DepthValue(ValueModel):
    """One value model per depth, as the reference served its per-depth STL models: a state after d actions (its
    parent's actions plus its own) is valued by ``models[d]``, or by the nearest trained depth below (above when
    none is below) when d has no model of its own."""

    def __init__(self, models: Mapping[int, ValueModel]) -> None:
        if not models:
            raise ValueError("a per-depth value model needs at least one depth")
        self.models = dict(sorted(models.items()))
        first = next(iter(self.models.values()))
        self.style, self.mode = first.style, first.mode

    @property
    def name(self) -> str:
        return "per-depth(" + ", ".join(f"{d}: {m.name}" for d, m in self.models.items()) + ")"

    def for_depth(self, depth: int) -> ValueModel:
        below = [d for d in self.models if d <= depth]
        return self.models[below[-1] if below else next(iter(self.models))]

    def steps(
        self,
        env_name: str,
        items: Sequence[ValueItem],
        *,
        n_samples: int = 5,
        config: RunnableConfig | None = None,
    ) -> Steps[list[ValueEstimate]]:
        """Items grouped by depth (siblings share one), each group valued by its depth's model."""
        groups: dict[int, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(len(item.previous_actions) + 1, []).append(i)
        out: dict[int, ValueEstimate] = {}
        for depth, idx in groups.items():
            group = [items[i] for i in idx]
            estimates = yield from self.for_depth(depth).steps(env_name, group, n_samples=n_samples, config=config)
            out.update(zip(idx, estimates, strict=True))
        return [out[i] for i in range(len(items))]
