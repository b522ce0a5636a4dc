"""A model of the store as a Hugging Face transformers folder, which a transcription server
(vLLM) serves: ``earwig models export base DIR``. With it the server reads with the very
weights this machine's final model has, so that their texts can be compared (and the
fallback writes what the server would have).

How: the openai-whisper checkpoint's tensors under transformers' names (the mapping of
transformers' own ``convert_openai_to_hf``, whose function itself downloads a generation
config from the Hugging Face hub), ``WhisperForConditionalGeneration.save_pretrained``;
the tokenizer from the bundled model's ``tokenizer.json`` with the 1501 timestamp tokens
(``<|0.00|>``..``<|30.00|>``) it lacks and which a server's segment times need; whisper's
feature extractor for the model's mel bins; a generation config with whisper's token ids.

Only the bundled models can be exported (their folder has the tokenizer); a GPU server
serves the official checkpoints from the hub instead (``openai/whisper-large-v3-turbo``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from earwig import model_store
from earwig.errors import EarwigError

#: openai-whisper's parameter names -> transformers', in order (transformers' mapping).
_NAMES = (
    ("blocks", "layers"), ("mlp.0", "fc1"), ("mlp.2", "fc2"), ("mlp_ln", "final_layer_norm"),
    (".attn.query", ".self_attn.q_proj"), (".attn.key", ".self_attn.k_proj"),
    (".attn.value", ".self_attn.v_proj"), (".attn_ln", ".self_attn_layer_norm"),
    (".attn.out", ".self_attn.out_proj"), (".cross_attn.query", ".encoder_attn.q_proj"),
    (".cross_attn.key", ".encoder_attn.k_proj"), (".cross_attn.value", ".encoder_attn.v_proj"),
    (".cross_attn_ln", ".encoder_attn_layer_norm"), (".cross_attn.out", ".encoder_attn.out_proj"),
    ("decoder.ln.", "decoder.layer_norm."), ("encoder.ln.", "encoder.layer_norm."),
    ("token_embedding", "embed_tokens"), ("encoder.positional_embedding", "encoder.embed_positions.weight"),
    ("decoder.positional_embedding", "decoder.embed_positions.weight"), ("ln_post", "layer_norm"),
)
#: Seconds per timestamp token, and how many there are (0.00 to 30.00).
TIME_PRECISION = 0.02
TIMESTAMPS = 1501


def export(model: str, target: Path) -> Path:
    """Write ``model`` as a transformers folder in ``target`` (made; it must be empty)."""
    try:
        import transformers
    except ImportError:
        raise EarwigError("exporting a model needs the transformers package",
                          "pip install 'earwig[serve]' (or: pip install transformers)") from None
    tokenizer_json = model_store.bundled_tokenizer(model)
    if tokenizer_json is None:
        raise EarwigError(f"{model!r} cannot be exported: only the bundled models have their tokenizer here "
                          f"({', '.join(model_store.BUNDLED)})",
                          "export one of those; a server serves the official models from Hugging Face "
                          "(e.g. openai/whisper-large-v3-turbo)")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise EarwigError(f"{target} is not an empty folder", "give a new folder to write the model to")
    checkpoint = torch.load(model_store.checkpoint_path(model), map_location="cpu", weights_only=True)
    dims, state = checkpoint["dims"], checkpoint["model_state_dict"]
    multilingual = dims["n_vocab"] >= 51865
    tokenizer = transformers.WhisperTokenizerFast(tokenizer_file=str(tokenizer_json))
    tokenizer.add_tokens([f"<|{i * TIME_PRECISION:.2f}|>" for i in range(TIMESTAMPS)])
    end_of_text = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = transformers.WhisperConfig(
        vocab_size=dims["n_vocab"], num_mel_bins=dims["n_mels"], d_model=dims["n_audio_state"],
        encoder_layers=dims["n_audio_layer"], encoder_attention_heads=dims["n_audio_head"],
        decoder_layers=dims["n_text_layer"], decoder_attention_heads=dims["n_text_head"],
        encoder_ffn_dim=4 * dims["n_audio_state"], decoder_ffn_dim=4 * dims["n_text_state"],
        max_source_positions=dims["n_audio_ctx"], max_target_positions=dims["n_text_ctx"],
        eos_token_id=end_of_text, bos_token_id=end_of_text, pad_token_id=end_of_text,
        decoder_start_token_id=end_of_text + 1)
    whisper = transformers.WhisperForConditionalGeneration(config)
    missing, unexpected = whisper.model.load_state_dict({_renamed(k): v for k, v in state.items()}, strict=False)
    if unexpected or set(missing) - {"encoder.embed_positions.weights", "decoder.embed_positions.weights"}:
        raise EarwigError(f"{model!r} does not map onto transformers' Whisper (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})", "report this; export another model")
    whisper.tie_weights()  # the output projection is the token embedding, as in whisper
    whisper.generation_config = _generation_config(transformers, tokenizer, multilingual, end_of_text)
    target.mkdir(parents=True, exist_ok=True)
    whisper.save_pretrained(target)
    transformers.WhisperProcessor(feature_extractor=transformers.WhisperFeatureExtractor(feature_size=dims["n_mels"]),
                                  tokenizer=tokenizer).save_pretrained(target)
    return target


def _renamed(name: str) -> str:
    for old, new in _NAMES:
        name = name.replace(old, new)
    return name


def _generation_config(transformers, tokenizer, multilingual: bool, end_of_text: int):
    """Whisper's token ids for generation, as the hub's configs hold them."""
    ids = tokenizer.convert_tokens_to_ids
    config = transformers.GenerationConfig(
        decoder_start_token_id=end_of_text + 1, eos_token_id=end_of_text, pad_token_id=end_of_text,
        bos_token_id=end_of_text, max_length=448, is_multilingual=multilingual,
        no_timestamps_token_id=ids("<|notimestamps|>"), prev_sot_token_id=ids("<|startofprev|>"),
        begin_suppress_tokens=[220, end_of_text])
    if multilingual:
        from whisper.tokenizer import LANGUAGES

        config.lang_to_id = {f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES
                             if ids(f"<|{code}|>") != tokenizer.unk_token_id}
        config.task_to_id = {"transcribe": ids("<|transcribe|>"), "translate": ids("<|translate|>")}
    return config
