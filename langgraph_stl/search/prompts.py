"""Every prompt of the search: policy proposals, the base value prompt V0, the terminal judge, and the STL format.

Two families:

* **STL format** (:func:`stl_prompt`, :func:`stl_target`, :func:`terminal_prompt`, :func:`terminal_target`):
  byte-for-byte the layout of the reference's WebShop training data (spec §1b). Fine-tuned value models are
  prompted with it and trained on it, so the self-improvement code builds its targets with these functions.
* **Base prompts** written for this project (the reference's few-shot texts are not available): V0
  (rationale, then "Thus the correctness score is X" with X in {1, 2, 4, 6, 8, 10}), the terminal judge
  (one ``[SUCCESS]``/``[FAILURE]`` line per requirement) and the policy prompts, per environment.

Every value prompt puts the long shared trajectory first and the child's action/observation last, so the siblings
of a node share one prompt prefix that the llama.cpp server caches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SCORE_PHRASE = "the correctness score is "
"""Lower-case phrase whose last occurrence precedes the score (reference parser)."""

TERMINAL_OBSERVATION = "Terminal State"
BASE_SCALE = (1, 2, 4, 6, 8, 10)

_STL_HEADER = (
    "Determine the value / correctness score (1 - 10) of the current state.\n"
    "You must provide the best next action and the observation (in the same format as the current observation) "
    "for this best successor state. Then, you must provide a reflection on the best successor state and derive the "
    "correctness score of the current state.\nTrajectory: \n"
)
_STL_TERMINAL_HEADER = (
    "Determine the value / correctness score (1 - 10) of the terminal state.\n"
    "You must provide a reflection on the terminal state and determine the correctness score.\n\nTrajectory:\n\n"
)


def env_kind(env_name: str) -> str:
    """Which prompt family an environment gets: ``webshop``, ``game24`` or ``generic`` (by name prefix)."""
    name = env_name.lower()
    for kind in ("webshop", "game24"):
        if name.startswith(kind):
            return kind
    return "generic"


# ----------------------------------------------------------------------------------------------------------------
# Trajectories and the STL training/inference format


def format_trajectory(root_observation: str, steps: Sequence[tuple[str, str]]) -> str:
    """The reference's trajectory text: the first observation, then ``\\n\\nAction: a\\nObservation: o`` per step.

    Observations are kept verbatim (WebShop's start with a newline, end with a space); the STL prompt strips the
    whole text, the terminal prompt does not, exactly as in the reference data.
    """
    return root_observation + "".join(f"\n\nAction: {action}\nObservation: {obs}" for action, obs in steps)


def stl_prompt(trajectory: str, current_action: str, current_observation: str) -> str:
    """Prompt of a fine-tuned value model for a non-terminal state (the training records' human turn)."""
    return (
        f"{_STL_HEADER}{trajectory.strip()}\nCurrent Action: {current_action}\n"
        f"Current Observation: {current_observation}"
    )


def terminal_prompt(trajectory: str, current_action: str) -> str:
    """Prompt of a fine-tuned value model for a terminal state (``current_action`` is e.g. ``click[Buy Now]``)."""
    return (
        f"{_STL_TERMINAL_HEADER}{trajectory}\nCurrent Action: {current_action}\n"
        f"Current Observation: {TERMINAL_OBSERVATION}"
    )


def score_line(value: float) -> str:
    """``Thus the correctness score is 5.20 / 10.00.`` for ``value`` on the parser's [0, 1] scale."""
    return f"Thus the correctness score is {value * 10:.2f} / 10.00."


def stl_target(best_action: str, successor_observation: str, rationale: str, value: float) -> str:
    """Lookahead target: best successor (real observation or ``Terminal State``), V_k's rationale, value ×10."""
    return (
        "I will evaluate the best successor state from the current state:\n"
        f"Best Next Action: {best_action}\n"
        f"Observation of Best Successor State: {successor_observation}\n"
        f"Reflection of the Best Successor State: {rationale}\n{score_line(value)}"
    )


def terminal_target(rationale: str, value: float) -> str:
    """Target of a terminal state: the judge's rationale and its averaged value ×10."""
    return f"I will evaluate the terminal state:\nReflection of the Terminal State: {rationale}\n{score_line(value)}"


def strip_score_line(text: str) -> str:
    """The rationale of a value output: everything before the last score phrase (case-insensitive), stripped."""
    cut = text.lower().rfind("thus " + SCORE_PHRASE)
    if cut < 0:
        cut = text.lower().rfind(SCORE_PHRASE)
    return (text if cut < 0 else text[:cut]).strip()


# ----------------------------------------------------------------------------------------------------------------
# Generic base value prompts (any environment); per-environment headers and examples below.

_VALUE_TASK = (
    "Analyze the trajectory of an agent and judge how likely the current state leads to completing the task. "
    'Write a short reflection, then end with one line "Thus the correctness score is s", where s is one of '
    "1, 2, 4, 6, 8, 10 (10: the task is as good as solved; 1: this state cannot lead to success)."
)
_TERMINAL_TASK = (
    "The agent's episode has ended. List every requirement of the task as a numbered line, compare it with what "
    "the agent achieved and end each line with [SUCCESS] or [FAILURE]. Then end with one line "
    '"Thus the correctness score is s", where s is the share of [SUCCESS] lines times 10.'
)


def value_prompt(task: str, examples: str, trajectory: str, action: str, observation: str) -> str:
    """V0 prompt: task and examples, the shared trajectory, then the scored child last."""
    return (
        f"{task}\n\n{examples}\n\n(END OF EXAMPLES)\n\nTrajectory:\n{trajectory.strip()}\n\n"
        f"Current Action: {action}\nCurrent Observation: {observation}\nReflection:"
    )


def base_terminal_prompt(task: str, examples: str, trajectory: str, action: str) -> str:
    """Terminal judge prompt: one [SUCCESS]/[FAILURE] line per requirement; the value is the success share."""
    return (
        f"{task}\n\n{examples}\n\n(END OF EXAMPLES)\n\nTrajectory:\n{trajectory.strip()}\n\n"
        f"Current Action: {action}\nCurrent Observation: {TERMINAL_OBSERVATION}\nReflection:"
    )


GENERIC_VALUE_EXAMPLES = """Example:
Trajectory:
Task: put a clean mug in the cupboard.
Current Action: take mug from sink
Current Observation: You pick up the dirty mug.
Reflection: The agent holds the mug, but it is still dirty; it must be washed before it goes in the cupboard.
Thus the correctness score is 6"""

GENERIC_TERMINAL_EXAMPLES = """Example:
Trajectory:
Task: put a clean mug in the cupboard.

Action: put mug in cupboard
Observation: The dirty mug is in the cupboard.
Current Action: finish
Current Observation: Terminal State
Reflection:
1. Mug in the cupboard: the mug is in the cupboard. [SUCCESS]
2. Mug is clean: the mug was never washed. [FAILURE]
Thus the correctness score is 5"""


# ----------------------------------------------------------------------------------------------------------------
# WebShop

WEBSHOP_VALUE_TASK = (
    "You judge a web shopping agent. Given the instruction and the agent's trajectory, analyze how promising the "
    "current state is for buying an item that meets every requirement of the instruction (item type, attributes, "
    "options such as size and color, and the price limit). Write a short reflection, then end with one line "
    '"Thus the correctness score is s", where s is one of 1, 2, 4, 6, 8, 10 (10: the right item with the right '
    "options is selected and ready to buy; 1: this state cannot lead to a correct purchase)."
)
WEBSHOP_VALUE_EXAMPLES = """Example:
Trajectory:
WebShop
Instruction:
i need a long clip-in hair extension which is natural looking, and price lower than 40.00 dollars
[Search]

Action: search[natural looking long clip in hair extension]
Observation:
[Back to Search]
Page 1 (Total results: 50)
[Next >]
[B09QQLDJ6M]
Clip in Hair Extensions 22 Inch Long Straight Natural Looking Synthetic Hairpiece
$18.99
[B07GHJKL12]
Short Bob Wig Natural Looking Synthetic Hair
$25.00
Current Action: click[B09QQLDJ6M]
Current Observation:
[Back to Search]
[< Prev]
color [black][dark brown][light brown]
Clip in Hair Extensions 22 Inch Long Straight Natural Looking Synthetic Hairpiece
Price: $18.99
Rating: N.A.
[Description]
[Features]
[Reviews]
[Buy Now]
Reflection: The item is a long, natural looking clip-in hair extension priced at $18.99, below the $40.00 limit, so it
matches every stated requirement. The instruction names no color, so any option is acceptable; buying now is
likely correct.
Thus the correctness score is 8"""

WEBSHOP_TERMINAL_TASK = (
    "You judge a web shopping agent that has just bought an item. List every requirement of the instruction (item "
    "type, each attribute, each option, the price limit) as a numbered line, compare it with the purchased item and "
    "its selected options, and end each line with [SUCCESS] or [FAILURE]. Then end with one line "
    '"Thus the correctness score is s", where s is the share of [SUCCESS] lines times 10.'
)
WEBSHOP_TERMINAL_EXAMPLES = """Example:
Trajectory:
WebShop
Instruction:
i want a gluten free dark chocolate bar in a pack of 12, and price lower than 30.00 dollars
[Search]

Action: search[gluten free dark chocolate bar pack of 12]
Observation:
[Back to Search]
Page 1 (Total results: 50)
[Next >]
[B01N5T4YVB]
Organic Dark Chocolate Bar, Gluten Free, 3 oz (Pack of 6)
$21.50

Action: click[B01N5T4YVB]
Observation:
[Back to Search]
[< Prev]
Organic Dark Chocolate Bar, Gluten Free, 3 oz (Pack of 6)
Price: $21.50
Rating: N.A.
[Description]
[Features]
[Reviews]
[Buy Now]
Current Action: click[Buy Now]
Current Observation: Terminal State
Reflection: The purchased item is analyzed against the instruction as follows:
1. Dark chocolate bar: the item is a dark chocolate bar. [SUCCESS]
2. Gluten free: the title says gluten free. [SUCCESS]
3. Pack of 12: the item is a pack of 6, not 12. [FAILURE]
4. Price check: $21.50 < $30.00. [SUCCESS]
Thus the correctness score is 7.5"""

WEBSHOP_SEARCH_PROMPT = """You are a web shopping agent on WebShop. Read the instruction, write a one-sentence \
rationale naming the product and its key attributes, then write one search action.

Instruction: i would like a 3 ounce bottle of bright citrus deodorant for sensitive skin, and price lower than \
50.00 dollars
Rationale: The item is a deodorant with a bright citrus scent, 3 ounce, for sensitive skin; the query should name \
the product and its main attributes.
Action: search[3 ounce bright citrus deodorant sensitive skin]
Observation: ...

Instruction: i am looking for a queen sized bed that is black, and price lower than 140.00 dollars
Rationale: The item is a queen size bed frame in black; color and size go into the query, the price is checked on \
the results page.
Action: search[black queen size bed]
Observation: ...

Instruction: {instruction}
Rationale:"""

WEBSHOP_SELECT_PROMPT = """You are a web shopping agent on WebShop. Given the instruction and the current page, \
write a one-sentence rationale, then choose exactly one action from "Possible Next Actions". Never choose an \
action listed in "Actions Not Allowed".

Instruction: i need a long clip-in hair extension which is natural looking, and price lower than 40.00 dollars
Observation:
[Back to Search]
Page 1 (Total results: 50)
[Next >]
[B09QQLDJ6M]
Clip in Hair Extensions 22 Inch Long Straight Natural Looking Synthetic Hairpiece
$18.99
[B07GHJKL12]
Short Bob Wig Natural Looking Synthetic Hair
$25.00
Possible Next Actions: click[Back to Search], click[Next >], click[B09QQLDJ6M], click[B07GHJKL12]
Actions Not Allowed: click[B07GHJKL12]
Rationale: B09QQLDJ6M is a long natural looking clip-in extension under $40.
Action: click[B09QQLDJ6M]

Instruction: i want a black t-shirt in size large, and price lower than 30.00 dollars
Observation:
[Back to Search]
[< Prev]
size [small][medium][large][x-large]
color [black][white][navy]
Men's Cotton Crew Neck T-Shirt
Price: $14.99
[Buy Now]
Possible Next Actions: click[small], click[medium], click[large], click[x-large], click[black], click[white], \
click[navy], click[Buy Now]
Actions Not Allowed: click[Buy Now]
Rationale: The instruction asks for size large, which is not selected yet.
Action: click[large]

Instruction: {instruction}
Trajectory:
{trajectory}
Observation:
{observation}
Possible Next Actions: {possible}
Actions Not Allowed: {not_allowed}
Rationale:"""

WEBSHOP_SPECIAL_BUTTONS = frozenset(
    {"back to search", "next >", "< prev", "attributes", "description", "features", "reviews"}
)


def webshop_instruction(text: str) -> str:
    """The bare instruction from WebShop's first observation (drops ``WebShop``, ``Instruction:``, ``[Search]``)."""
    body = text.split("Instruction:", 1)[-1]
    body = body.replace("[Search]", "")
    return " ".join(body.split())


def webshop_rule_value(action: str, previous_actions: Sequence[str]) -> float | None:
    """The reference's rule-based −1: special buttons and repeated actions; None when the rule does not apply."""
    match = re.fullmatch(r"click\[(.*)\]", action.strip(), flags=re.DOTALL)
    if match and match.group(1).strip().lower() in WEBSHOP_SPECIAL_BUTTONS:
        return -1.0
    if action in previous_actions:
        return -1.0
    return None


# ----------------------------------------------------------------------------------------------------------------
# Game of 24

GAME24_VALUE_TASK = (
    "You judge a player of the Game of 24: combine the four input numbers with + - * / (each number used exactly "
    "once) to reach 24. Each step replaces two numbers by their result. Given the steps so far and the numbers "
    "left, judge whether 24 can still be reached. Write a short reflection (try a few combinations), then end with "
    'one line "Thus the correctness score is s", where s is one of 1, 2, 4, 6, 8, 10 (10: you found a way to '
    "reach 24 from the numbers left; 1: impossible, e.g. all results are too small or too big)."
)
GAME24_VALUE_EXAMPLES = """Example:
Trajectory:
Input: 4 4 6 8
Steps:
(none yet)
Left: 4 4 6 8

Action: 4 + 8 = 12
Observation: Input: 4 4 6 8
Steps:
4 + 8 = 12 (left: 4 6 12)
Left: 4 6 12
Current Action: 12 - 6 = 6
Current Observation: Input: 4 4 6 8
Steps:
4 + 8 = 12 (left: 4 6 12)
12 - 6 = 6 (left: 4 6)
Left: 4 6
Reflection: The numbers left are 4 and 6. 4 * 6 = 24 reaches 24.
Thus the correctness score is 10

Example:
Trajectory:
Input: 1 2 3 10
Steps:
(none yet)
Left: 1 2 3 10
Current Action: 1 + 2 = 3
Current Observation: Input: 1 2 3 10
Steps:
1 + 2 = 3 (left: 3 3 10)
Left: 3 3 10
Reflection: The numbers left are 3 3 10. 3 * 10 - 3 = 27, (10 - 3) * 3 = 21, 3 + 3 + 10 = 16, 3 * 3 + 10 = 19. \
None of these gives 24 and the numbers are small, so it is unlikely.
Thus the correctness score is 2"""

GAME24_TERMINAL_TASK = (
    "You judge a finished Game of 24: the four input numbers were combined step by step into one number. Check the "
    "requirements as numbered lines ending with [SUCCESS] or [FAILURE]: 1. every step is correct arithmetic; "
    '2. the final number is 24. Then end with one line "Thus the correctness score is s", where s is the share of '
    "[SUCCESS] lines times 10."
)
GAME24_TERMINAL_EXAMPLES = """Example:
Trajectory:
Input: 4 4 6 8
Steps:
(none yet)
Left: 4 4 6 8

Action: 4 + 8 = 12
Observation: Input: 4 4 6 8
Steps:
4 + 8 = 12 (left: 4 6 12)
Left: 4 6 12

Action: 12 - 6 = 6
Observation: Input: 4 4 6 8
Steps:
4 + 8 = 12 (left: 4 6 12)
12 - 6 = 6 (left: 4 6)
Left: 4 6
Current Action: 4 * 6 = 24
Current Observation: Terminal State
Reflection:
1. Arithmetic: 4 + 8 = 12, 12 - 6 = 6 and 4 * 6 = 24 are all correct. [SUCCESS]
2. Final number: the last step gives 24. [SUCCESS]
Thus the correctness score is 10"""

GAME24_PROPOSE_PROMPT = """Use the numbers and basic arithmetic operations (+ - * /) to propose possible next \
steps. Each step combines two of the numbers into one; write one step per line as "a op b = c (left: numbers)".
Input: 2 8 8 14
Possible next steps:
2 + 8 = 10 (left: 8 10 14)
8 / 2 = 4 (left: 4 8 14)
14 + 2 = 16 (left: 8 8 16)
2 * 8 = 16 (left: 8 14 16)
8 - 2 = 6 (left: 6 8 14)
14 - 8 = 6 (left: 2 6 8)
14 / 2 = 7 (left: 7 8 8)
14 - 2 = 12 (left: 8 8 12)
Input: {numbers}
Possible next steps:
"""

_NUM = r"-?\d+(?:\.\d+)?(?:/\d+)?"
_STEP_RE = re.compile(rf"({_NUM})\s*([+\-*/×÷xX])\s*({_NUM})\s*=\s*({_NUM})")
_OPS = {"×": "*", "x": "*", "X": "*", "÷": "/"}


def game24_numbers(observation: str) -> str:
    """The numbers still available: the last ``Left: ...`` line (or ``(left: ...)`` part), else the whole text."""
    matches = re.findall(r"(?im)^left:\s*(.*)$", observation) or re.findall(r"\(left:\s*([^)]*)\)", observation)
    return " ".join((matches[-1] if matches else observation).split())


def parse_game24_steps(text: str) -> list[str]:
    """Step lines (``a op b = c``) of a proposal, normalized to the environment's action format, in order."""
    steps: list[str] = []
    for line in text.splitlines():
        match = _STEP_RE.search(line)
        if match:
            a, op, b, c = match.groups()
            steps.append(f"{a} {_OPS.get(op, op)} {b} = {c}")
    return steps


# ----------------------------------------------------------------------------------------------------------------
# Generic policy prompt (user environments)

GENERIC_PROPOSE_PROMPT = """You are an agent solving a task step by step. Given the trajectory so far and the \
current observation, propose up to {n} different next actions, one per line, each written as "Action: <action>".
{legal}
Trajectory:
{trajectory}
"""


def parse_action_lines(text: str) -> list[str]:
    """Actions from ``Action: ...`` lines, in order (the generic and WebShop policies write them so)."""
    return [m.group(1).strip() for m in re.finditer(r"(?im)^\s*action:\s*(.+?)\s*$", text) if m.group(1).strip()]
