"""What a saved lateint folder offers other libraries (sentence-transformers, ``transformers``)."""

from lateint.export.sentence_transformers import (
    refusal_reason,
    write_sentence_transformers_layout,
)
from lateint.export.split_record import record_split

__all__ = ["record_split", "refusal_reason", "write_sentence_transformers_layout"]
