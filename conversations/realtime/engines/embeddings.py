"""Sentence embeddings for retrieval (the knowledge base and memories).

- ``MiniLMEmbedder`` (embedded): all-MiniLM-L6-v2 as int8 ONNX on onnxruntime, tokenized with
  Hugging Face ``tokenizers`` from its ``tokenizer.json``; mean-pooled over the attention mask and
  L2-normalised, 384 dimensions. About 5 ms for one sentence, 100 ms for 32 on one thread.

It returns float32 arrays of unit rows, so a dot product is the cosine similarity. Every vector
is stored with its model's ``model_id``, so vectors of different models are never compared.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np


#: the longest input the model was trained on (sentence-transformers' max_seq_length)
MAX_TOKENS = 256
BATCH = 32


class MiniLMEmbedder:
    model_id = "all-MiniLM-L6-v2-int8"
    dimensions = 384

    def __init__(self, *, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from .models import embedder_files

        files = embedder_files()
        self._tokenizer = Tokenizer.from_file(str(files["tokenizer"]))
        # The shipped file pads every input to 128: pad to the longest of a batch instead.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer.enable_truncation(max_length=MAX_TOKENS)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(files["model"]), options, providers=["CPUExecutionProvider"])
        self._lock = threading.Lock()  # one run at a time: the session's threads are the budget

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text (blocking: call it in a thread from async code)."""
        if not texts:
            return np.zeros((0, self.dimensions), np.float32)
        rows = []
        for start in range(0, len(texts), BATCH):
            encodings = self._tokenizer.encode_batch([t or " " for t in texts[start: start + BATCH]])
            ids = np.array([e.ids for e in encodings], np.int64)
            mask = np.array([e.attention_mask for e in encodings], np.int64)
            with self._lock:
                hidden = self._session.run(["last_hidden_state"], {
                    "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            rows.append(pooled)
        vectors = np.concatenate(rows).astype(np.float32)
        return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


_embedded: MiniLMEmbedder | None = None
_embedded_lock = threading.Lock()


def embedded_embedder() -> MiniLMEmbedder:
    """The process's embedded model, loaded once."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            _embedded = MiniLMEmbedder()
        return _embedded
