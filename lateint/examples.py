"""A few built-in query-passage examples: each query has one relevant passage and distractors
that share its words, so that a ranker must do better than word overlap."""

from __future__ import annotations

#: (query, [(passage, relevant)]).
EXAMPLES: list[tuple[str, list[tuple[str, bool]]]] = [
    (
        "what causes the northern lights",
        [
            ("Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere, "
             "which then glow green and red near the poles.", True),
            ("Northern Lights is a 2009 television film starring Nora Roberts characters set in Alaska.", False),
            ("The lights in northern European cities are switched on early in winter because days are short.", False),
        ],
    ),
    (
        "how long should you boil an egg",
        [
            ("For a soft yolk, lower the egg into boiling water and cook it for six minutes; for a hard yolk, "
             "ten to twelve minutes.", True),
            ("An egg is an organic vessel in which an embryo develops; birds, reptiles and fish lay eggs.", False),
            ("Water boils at 100 degrees Celsius at sea level and at lower temperatures at altitude.", False),
        ],
    ),
    (
        "symptoms of vitamin d deficiency",
        [
            ("Low vitamin D can cause tiredness, bone pain, muscle weakness and, in children, rickets.", True),
            ("Vitamin D is made in the skin when it is exposed to sunlight and is found in oily fish.", False),
            ("Symptoms of the common cold include a runny nose, a sore throat and sneezing.", False),
        ],
    ),
]


def example_pairs() -> tuple[list[str], list[str], list[bool]]:
    """The examples as aligned lists: queries, passages, relevance."""
    queries, docs, labels = [], [], []
    for query, passages in EXAMPLES:
        for passage, relevant in passages:
            queries.append(query)
            docs.append(passage)
            labels.append(relevant)
    return queries, docs, labels
