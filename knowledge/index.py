"""Search over the chunks of a set of documents: cosine similarity of the embeddings, mixed with
BM25 keyword scores (hybrid), by ``document_retrieval_strategy``.

The vectors live in the database (``Chunk.embedding``) on every backend; a process loads the
chunks of the documents a call uses into one float32 matrix and keeps it, keyed by each
document's id and ``updated_at``. A document re-ingested by a worker changes its ``updated_at``,
so every process reloads it on its next search: the index follows the table across processes.
The search itself is exact (a matrix product: ~1.5 ms for 20,000 chunks), which is what a
knowledge base of a few hundred documents needs; no approximate index is involved.
"""
from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

import numpy as np

#: strategy -> (passages kept, candidates considered, weight of the keyword score, token budget)
STRATEGIES = {
    "speed": (3, 3, 0.0, 350),
    "balanced": (4, 12, 0.35, 700),
    "quality": (6, 30, 0.35, 1100),
}
DEFAULT_STRATEGY = "balanced"
#: below this cosine a passage is not about the question at all
MIN_SIMILARITY = 0.2
_WORD = re.compile(r"[\w'’]+", re.UNICODE)
_STOP = frozenset("""a an the and or but if of to in on at by for with from as is are was were be been it its
this that these those i you he she we they me my your our their what which who whom how when where why do
does did can could would should will shall may might must not no yes so than then there here about into""".split())


def words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP]


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    document_id: str
    document_name: str
    heading: str
    text: str
    source_url: str
    tokens: int
    score: float = 0.0


class ChunkIndex:
    """The chunks of some documents, in memory: vectors as one matrix, words for BM25."""

    K1, B = 1.5, 0.75

    def __init__(self, passages: list[Passage], vectors: np.ndarray) -> None:
        self.passages = passages
        self.vectors = vectors.astype(np.float32).reshape(len(passages), -1) if passages else np.zeros((0, 1), np.float32)
        self._terms = [Counter(words(f"{p.heading} {p.text}")) for p in passages]
        self._lengths = np.array([sum(t.values()) for t in self._terms], np.float32)
        self._avg = float(self._lengths.mean()) if passages else 1.0
        df: Counter[str] = Counter()
        for terms in self._terms:
            df.update(terms.keys())
        n = len(passages)
        self._idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}

    def __len__(self) -> int:
        return len(self.passages)

    def bm25(self, query: str) -> np.ndarray:
        scores = np.zeros(len(self.passages), np.float32)
        for word in set(words(query)):
            idf = self._idf.get(word)
            if idf is None:
                continue
            tf = np.array([t.get(word, 0) for t in self._terms], np.float32)
            scores += idf * tf * (self.K1 + 1) / (tf + self.K1 * (1 - self.B + self.B * self._lengths / self._avg))
        return scores

    def search(self, query_vector: np.ndarray, query_text: str, *, strategy: str = DEFAULT_STRATEGY) -> list[Passage]:
        """The best passages for a question, best first, within the strategy's token budget."""
        if not self.passages:
            return []
        keep, candidates, keyword_weight, budget = STRATEGIES[strategy]
        cosine = self.vectors @ query_vector.astype(np.float32).reshape(-1)
        score = cosine.copy()
        if keyword_weight:
            keyword = self.bm25(query_text)
            if keyword.max() > 0:
                score = (1 - keyword_weight) * cosine + keyword_weight * (keyword / keyword.max())
        order = [int(i) for i in np.argsort(-score)[:candidates] if cosine[i] >= MIN_SIMILARITY]
        if strategy == "quality":
            order = self._diverse(order, score, keep)
        chosen: list[Passage] = []
        used = 0
        for i in order[:keep]:
            passage = self.passages[i]
            if chosen and used + passage.tokens > budget:
                break
            chosen.append(Passage(**{**passage.__dict__, "score": round(float(score[i]), 4)}))
            used += passage.tokens
        return chosen

    def _diverse(self, order: list[int], score: np.ndarray, keep: int) -> list[int]:
        """Maximal marginal relevance: each next passage relevant, and unlike those chosen."""
        chosen: list[int] = []
        rest = list(order)
        while rest and len(chosen) < keep:
            def mmr(i: int) -> float:
                overlap = max((float(self.vectors[i] @ self.vectors[j]) for j in chosen), default=0.0)
                return 0.75 * float(score[i]) - 0.25 * overlap
            best = max(rest, key=mmr)
            chosen.append(best)
            rest.remove(best)
        return chosen


_cache: OrderedDict[tuple, ChunkIndex] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_SIZE = 32


def load_index(documents: list[tuple[str, str, float]], loader) -> ChunkIndex:  # noqa: ANN001 - a callable
    """The index of ``documents`` ((id, name, updated_at timestamp) of each ready document),
    from the process's cache or built with ``loader(document_ids) -> (passages, vectors)``."""
    key = tuple(sorted(documents))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    passages, vectors = loader([d[0] for d in documents])
    index = ChunkIndex(passages, vectors)
    with _cache_lock:
        _cache[key] = index
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return index
