"""The final model's greedy decoding, checked against a draft: the preview's text of the
same utterance.

Why: on a CPU the final pass is mostly the decoder, one step per token (about 30 ms a token
for base, most of it reading the 51,864-row output projection). The preview model has
already read the same audio, and the two models agree on most words. One decoder pass over
the draft's tokens checks them all at once (speculative decoding, Leviathan et al., 2023);
where the final model disagrees, its own token is taken and the draft is picked up again
after the last words decoded (prompt lookup decoding). A token is kept only where it is the
final model's own greedy choice after whisper's logit filters, so the text is whisper's
greedy text: the draft only saves steps.

What whisper does not have: a decoder step over several new tokens with a key/value cache
that can be cut back (``DecoderCache``). whisper's own cache appends through hooks, and its
attention mask is only right when all tokens, or only one, are new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from whisper.decoding import DecodingOptions, DecodingResult, DecodingTask
from whisper.model import Whisper
from whisper.utils import compression_ratio

#: Tokens of the draft tried at once: a whole sentence, and a bound on the work wasted
#: where the final model leaves the draft early.
MAX_PROPOSAL = 48
#: Rows of logits projected at once at first in a pass (then 2x, 4x ...).
FIRST_CHUNK = 8
#: Decoded tokens that must be found in the draft to pick it up again after a disagreement.
LOOKUP_NGRAMS = (3, 2, 1)


@dataclass
class _Layer:
    """One decoder block's keys and values: its self-attention's so far, its
    cross-attention's over the audio (computed once)."""

    cross_k: torch.Tensor
    cross_v: torch.Tensor
    k: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    v: torch.Tensor = field(default_factory=lambda: torch.empty(0))


class DecoderCache:
    """whisper's ``TextDecoder`` over one window's audio features, fed any number of new
    tokens at a time; ``length`` tokens are cached, and lowering it forgets the rest."""

    def __init__(self, model: Whisper, features: torch.Tensor) -> None:
        self.decoder = model.decoder
        self.length = 0
        self.layers = [_Layer(block.cross_attn.key(features), block.cross_attn.value(features))
                       for block in self.decoder.blocks]

    def hidden(self, tokens: list[int]) -> torch.Tensor:
        """The last hidden state ``(len(tokens), n_state)`` of each of the new ``tokens``."""
        decoder, offset, count = self.decoder, self.length, len(tokens)
        ids = torch.tensor([tokens], device=decoder.token_embedding.weight.device)
        x = decoder.token_embedding(ids) + decoder.positional_embedding[offset:offset + count]
        x = x.to(self.layers[0].cross_k.dtype)
        # New token i sees the cached tokens and the new ones up to itself.
        allowed = torch.ones(count, offset + count, dtype=torch.bool, device=x.device).tril(offset)
        for block, layer in zip(decoder.blocks, self.layers):
            h = block.attn_ln(x)
            k, v = block.attn.key(h), block.attn.value(h)
            layer.k = torch.cat((layer.k[:, :offset], k), dim=1) if offset else k
            layer.v = torch.cat((layer.v[:, :offset], v), dim=1) if offset else v
            x = x + block.attn.out(_attention(block.attn.query(h), layer.k, layer.v, block.attn.n_head, allowed))
            h = block.cross_attn_ln(x)
            x = x + block.cross_attn.out(_attention(block.cross_attn.query(h), layer.cross_k, layer.cross_v,
                                                    block.cross_attn.n_head, None))
            x = x + block.mlp(block.mlp_ln(x))
        self.length = offset + count
        return decoder.ln(x)[0]

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits of hidden states ``(n, n_state)``: the tied output projection."""
        return (hidden @ self.decoder.token_embedding.weight.to(hidden.dtype).T).float()

    def logit_rows(self, hidden: torch.Tensor):
        """Logits of each hidden state in turn, projected in chunks that double in size:
        the projection is most of a pass over many tokens, and a proposal rejected early
        then pays only for the rows read."""
        done, size = 0, FIRST_CHUNK
        while done < len(hidden):
            yield from self.logits(hidden[done:done + size])
            done, size = done + size, size * 2


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int,
               allowed: torch.Tensor | None) -> torch.Tensor:
    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(*t.shape[:2], heads, -1).permute(0, 2, 1, 3)
    out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=allowed)
    return out.permute(0, 2, 1, 3).flatten(start_dim=2)


class Abandoned(Exception):
    """The caller no longer wants this decoding (speech resumed after a speculative start)."""


def greedy_with_draft(model: Whisper, features: torch.Tensor, options: DecodingOptions, draft: str,
                      abandoned: Callable[[], bool] = lambda: False) -> tuple[DecodingResult, int]:
    """whisper's greedy decoding (temperature 0, a known language) of one window's
    ``features`` ``(1, n_audio_ctx, n_state)``; also returns the decoder passes it took.

    Every pass feeds the last token and a proposal from the draft, and keeps the proposed
    tokens the model chooses itself, plus the model's own next token: at least one token a
    pass, as many as the draft has right. The first pass also reads the prompt, and
    proposes the window's first timestamp (``<|0.00|>``) before the draft.
    """
    assert options.temperature == 0 and options.language is not None
    task = DecodingTask(model, options)
    tokenizer = task.tokenizer
    drafted = tokenizer.encode(" " + draft.strip()) if draft.strip() else []
    first = [] if options.without_timestamps else [tokenizer.timestamp_begin]
    tokens = list(task.initial_tokens)
    proposal, from_draft = first + drafted, -len(first)
    feed = tokens + proposal
    limit = min(task.n_ctx, task.sample_begin + task.sample_len)
    no_speech_prob, sum_logprob, passes = None, 0.0, 0
    with torch.inference_mode():
        cache = DecoderCache(model, features)
        while True:
            if abandoned():
                raise Abandoned
            hidden = cache.hidden(feed)
            passes += 1
            if no_speech_prob is None:
                no_speech_prob = _no_speech_prob(cache.logits(hidden[task.sot_index]), tokenizer)
            for i, after in enumerate(cache.logit_rows(hidden[len(feed) - len(proposal) - 1:])):
                chosen, logprob = _choose(task, after, tokens)
                tokens.append(chosen)
                sum_logprob += logprob
                if chosen == tokenizer.eot or len(tokens) >= limit or i == len(proposal) \
                        or chosen != proposal[i]:
                    break
            if tokens[-1] == tokenizer.eot or len(tokens) >= limit:
                break
            said = [t for t in tokens[task.sample_begin:] if t < tokenizer.eot]
            # A disagreement most often swaps a word: the draft goes on after the one swapped.
            from_draft = _lookup(drafted, said, from_draft + i + 1)
            proposal = drafted[from_draft:][:min(MAX_PROPOSAL, limit - len(tokens) - 1)]
            cache.length = len(tokens) - 1
            feed = [tokens[-1], *proposal]
    sampled = tokens[task.sample_begin:]
    if sampled and sampled[-1] == tokenizer.eot:
        sampled = sampled[:-1]
    text = tokenizer.decode(sampled).strip()
    return DecodingResult(audio_features=features[0], language=options.language, tokens=sampled,
                          text=text, avg_logprob=sum_logprob / (len(sampled) + 1),
                          no_speech_prob=no_speech_prob, temperature=0.0,
                          compression_ratio=compression_ratio(text)), passes


def _choose(task: DecodingTask, logits: torch.Tensor, tokens: list[int]) -> tuple[int, float]:
    """The greedy token after whisper's logit filters, and its log-probability."""
    logits = logits.clone()[None]
    context = torch.tensor([tokens], device=logits.device)
    for logit_filter in task.logit_filters:
        logit_filter.apply(logits, context)
    token = int(logits[0].argmax())
    return token, float(F.log_softmax(logits[0], dim=-1)[token])


def _no_speech_prob(logits: torch.Tensor, tokenizer) -> float:
    if tokenizer.no_speech is None:
        return float("nan")
    return float(logits.softmax(dim=-1)[tokenizer.no_speech])


def _lookup(drafted: list[int], said: list[int], expected: int) -> int:
    """Where in the draft to go on: after the occurrence nearest ``expected`` of the last
    tokens said, or at ``expected`` when the draft does not have them."""
    for n in LOOKUP_NGRAMS:
        if len(said) < n:
            continue
        tail = said[-n:]
        found = [start + n for start in range(len(drafted) - n + 1) if drafted[start:start + n] == tail]
        if found:
            return min(found, key=lambda after: abs(after - expected))
    return max(0, expected)
