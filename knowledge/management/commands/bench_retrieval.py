"""What the knowledge base costs: reading documents (pages per second through the ingestion's own
parse, chunk and embed steps), and the per-turn retrieval a live call runs (embed the turn, search
every passage) at several knowledge-base sizes and each ``document_retrieval_strategy``. The same
parser, embedder, index and retrieval code as a live call (knowledge.retrieval.KnowledgeBase)."""
from __future__ import annotations

import os
import time

import numpy as np
from django.core.management.base import BaseCommand

from bench.live import stats, write_json

QUESTIONS = ["How much does the premium plan cost per month?", "Can I get a refund after thirty days?",
             "Which countries do you ship to?", "How do I reset my password?", "What are your opening hours?",
             "Is the blender dishwasher safe?", "Who do I call when my order is late?", "Do you have a student discount?"]
TOPICS = ["pricing", "refunds", "shipping", "accounts", "opening hours", "products", "orders", "discounts",
          "warranty", "returns", "payments", "privacy"]


def _passages(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        out.append(f"Section {i} about {topic}. " + " ".join(
            rng.choice(["The", "customer", "can", "ask", "our", "team", "about", topic, "within", "days", "of",
                        "the", "purchase", "and", "we", "answer", "by", "email", "or", "phone"], size=60)) + ".")
    return out


class Command(BaseCommand):
    help = "Measure the knowledge base: passages embedded per second, and per-turn retrieval time by size and strategy."

    def add_arguments(self, parser):
        parser.add_argument("--chunks", default="200,2000,10000", help="knowledge-base sizes in passages")
        parser.add_argument("--json", default="bench-results/retrieval.json")

    def handle(self, *args, chunks: str, json: str, **options):
        from conversations.realtime.engines.embeddings import embedded_embedder
        from knowledge.index import STRATEGIES, ChunkIndex, Passage
        from knowledge.retrieval import KnowledgeBase

        load0 = os.getloadavg()[0]
        embedder = embedded_embedder()
        sample = _passages(256)
        started = time.perf_counter()
        embedder.embed(sample)
        per_s = len(sample) / (time.perf_counter() - started)
        self.stdout.write(f"embedding while a document is read: {per_s:.0f} passages/s (60-word passages, 1 thread)")
        pages_per_s = self._ingest_pages_per_s(embedder)
        self.stdout.write(f"reading a website: {pages_per_s:.1f} pages/s (parse, chunk, embed; ~400 words a page)")
        data = {"embed_passages_per_s": round(per_s, 1), "ingest_pages_per_s": round(pages_per_s, 2), "sizes": {}}
        base = embedder.embed(_passages(512))
        for size in (int(s) for s in chunks.split(",")):
            texts = _passages(size)
            # vectors: the 512 real ones repeated with a little noise (embedding 10,000 passages here
            # would only measure the embedder again)
            vectors = base[np.arange(size) % len(base)] + np.random.default_rng(1).normal(0, 0.01, (size, base.shape[1]))
            vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
            passages = [Passage(chunk_id=i, document_id="d", document_name="Bench", heading=TOPICS[i % len(TOPICS)],
                                text=t, source_url="", tokens=80) for i, t in enumerate(texts)]
            index = ChunkIndex(passages, vectors)
            row = {}
            for strategy in STRATEGIES:
                kb = KnowledgeBase(index, embedder, strategy)
                times = []
                for _ in range(3):
                    for q in QUESTIONS:
                        times.append(kb.retrieve(q).ms)
                row[strategy] = stats(times)
                self.stdout.write(f"{size:>6} passages, {strategy:<8}: retrieval p50 {row[strategy]['p50']} ms, "
                                  f"p95 {row[strategy]['p95']} ms")
            data["sizes"][str(size)] = row
        data["load_avg"] = {"start": round(load0, 2), "end": round(os.getloadavg()[0], 2)}
        self.stdout.write(f"load average {data['load_avg']['start']} → {data['load_avg']['end']}")
        write_json(json, data)

    @staticmethod
    def _ingest_pages_per_s(embedder) -> float:  # noqa: ANN001
        """Twenty HTML pages of ~400 words through the ingestion's parse, chunk and embed steps."""
        from knowledge.parsing import chunk_sections, parse

        pages = []
        for i in range(20):
            body = "".join(f"<h2>{TOPICS[(i + j) % len(TOPICS)]}</h2><p>{p}</p>" for j, p in enumerate(_passages(7)))
            pages.append(f"<html><head><title>Page {i}</title></head><body><h1>Page {i}</h1>{body}</body></html>".encode())
        started = time.perf_counter()
        for page in pages:
            chunks = chunk_sections(parse(page, "html"))
            embedder.embed([f"{c.heading}\n{c.text}" for c in chunks])
        return len(pages) / (time.perf_counter() - started)
