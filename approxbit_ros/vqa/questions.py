"""Templated questions about the synthetic action clips, and their answers.

Every answer follows from what the clip shows over time — where the object goes, whether it
turns, grows, is there at the start or the end, meets a second box, and where in the frame it
starts and ends — so a question is answered from the video, and the same clip gets different
answers to different questions. The facts per action class are in ``FACTS``; the two "place"
questions depend on the clip itself (its ``ClipLayout``), not only on its class.
``QUESTION_TYPES`` phrases each fact as questions (several phrasings each, so the answer head
has to read the words, not the question's index).

This stands in for the paper's MSVD questions answered by Video-LLaVA / LLaVA-OneVision, which
cannot be downloaded or run here; it exercises the same path (backbone features -> answer) on
clips we generate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from approxbit_ros.data.synthetic_actions import CLASSES, ClipLayout

# fact -> value for each action class; "direction" is where the object's position goes.
_FACT_TABLE = {
    # class: (direction, turn, size, start, end, boxes, hits)
    "moving left": ("left", "it does not turn", "the same", "yes", "yes", "one", "no"),
    "moving right": ("right", "it does not turn", "the same", "yes", "yes", "one", "no"),
    "moving up": ("up", "it does not turn", "the same", "yes", "yes", "one", "no"),
    "falling down": ("down", "it does not turn", "the same", "yes", "yes", "one", "no"),
    "approaching": ("nowhere", "it does not turn", "bigger", "yes", "yes", "one", "no"),
    "receding": ("nowhere", "it does not turn", "smaller", "yes", "yes", "one", "no"),
    "rotating clockwise": ("nowhere", "clockwise", "the same", "yes", "yes", "one", "no"),
    "rotating counter-clockwise": ("nowhere", "counter-clockwise", "the same", "yes", "yes", "one", "no"),
    "pushing something right into something": ("right", "it does not turn", "the same", "yes", "yes", "two", "yes"),
    "pushing something left into something": ("left", "it does not turn", "the same", "yes", "yes", "two", "yes"),
    "appearing": ("nowhere", "it does not turn", "the same", "no", "yes", "one", "no"),
    "disappearing": ("nowhere", "it does not turn", "the same", "yes", "no", "one", "no"),
    "bouncing": ("up and down", "it does not turn", "the same", "yes", "yes", "one", "no"),
}
_FACT_NAMES = ("direction", "turn", "size", "start", "end", "boxes", "hits")
FACTS: Dict[str, Dict[str, str]] = {c: dict(zip(_FACT_NAMES, v)) for c, v in _FACT_TABLE.items()}
assert set(FACTS) == set(CLASSES)


@dataclass(frozen=True)
class QuestionType:
    name: str                       # the fact it asks for, or "action"
    phrasings: Tuple[str, ...]


QUESTION_TYPES: Tuple[QuestionType, ...] = (
    QuestionType("action", ("what is happening?", "what does the object do?", "what is the action?")),
    QuestionType("direction", ("which way does the object move?", "in which direction does the box go?",
                               "where does the object move to?")),
    QuestionType("turn", ("which way does the object turn?", "does the box rotate, and which way?",
                          "in which sense does the object spin?")),
    QuestionType("size", ("does the object get bigger or smaller?", "how does the size of the box change?",
                          "does the object grow or shrink?")),
    QuestionType("start", ("is the object visible at the start?", "can you see the box at the beginning?",
                           "is the object there in the first frame?")),
    QuestionType("end", ("is the object visible at the end?", "can you see the box at the finish?",
                         "is the object there in the last frame?")),
    QuestionType("boxes", ("how many boxes are there?", "how many objects take part?",
                           "how many boxes do you see?")),
    QuestionType("hits", ("does the object hit something?", "does the box push another box?",
                          "does the object bump into anything?")),
    QuestionType("start place", ("where is the object at the start?", "where is the box in the first frame?",
                                 "in which part of the frame does the object begin?")),
    QuestionType("end place", ("where is the object at the end?", "where is the box in the last frame?",
                               "in which part of the frame does the object finish?")),
)
PLACES = ("on the left", "in the middle", "on the right", "it is not visible")
QUESTION_TYPE_NAMES = tuple(q.name for q in QUESTION_TYPES)
# (question type, phrasing) of every phrasing, in the one order answers per clip are listed in
PHRASINGS: Tuple[Tuple[str, str], ...] = tuple((q.name, p) for q in QUESTION_TYPES for p in q.phrasings)


def place(x: float, alpha: float) -> str:
    """Where an object at centre x (fraction of the frame width) with opacity alpha is: thirds."""
    if alpha < 0.5:
        return PLACES[3]
    return PLACES[0] if x < 1 / 3 else PLACES[2] if x > 2 / 3 else PLACES[1]


def answer(question_type: str, class_name: str, layout: ClipLayout = None) -> str:
    """The answer to a question of ``question_type`` about a clip of action ``class_name``
    (the place questions need the clip's ``layout``)."""
    if question_type == "action":
        return class_name
    if question_type == "start place":
        return place(layout.x_first, layout.alpha_first)
    if question_type == "end place":
        return place(layout.x_last, layout.alpha_last)
    return FACTS[class_name][question_type]


def question_type_of(question: str) -> str:
    """The type of a templated question (``PHRASINGS``, compared word by word); ValueError for
    any other question."""
    asked = words(question)
    for qtype, phrasing in PHRASINGS:
        if words(phrasing) == asked:
            return qtype
    raise ValueError(f"{question!r} is none of the templated questions ({', '.join(repr(p) for _, p in PHRASINGS[:2])}, "
                     f"...: approxbit_ros/vqa/questions.py)")


def answer_vocabulary() -> List[str]:
    """Every answer any question can have, in a fixed order (the answer head's classes)."""
    seen: Dict[str, None] = {}
    for q in QUESTION_TYPES:
        if q.name.endswith("place"):
            seen.update(dict.fromkeys(PLACES))
            continue
        for c in CLASSES:
            seen.setdefault(answer(q.name, c))
    return list(seen)


def qa_pairs(label: int, layout: ClipLayout) -> List[Tuple[str, str, str]]:
    """(question type, phrasing, answer) for every phrasing (``PHRASINGS``) about one clip."""
    return [(t, p, answer(t, CLASSES[label], layout)) for t, p in PHRASINGS]


_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def words(question: str) -> List[str]:
    """Lower-case words of a question (punctuation dropped, hyphenated words kept whole)."""
    return _WORD.findall(question.lower())


def question_vocabulary(phrasings: Sequence[str] = ()) -> List[str]:
    """Sorted words of every phrasing (default: all of ``PHRASINGS``)."""
    phrasings = phrasings or [p for _, p in PHRASINGS]
    return sorted({w for p in phrasings for w in words(p)})
