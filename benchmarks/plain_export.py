"""An exported folder (`sentiment-ray export`) read with plain transformers and its own files only: no sentiment-ray
import on this path. The export test and the GPU check compare its probabilities with the model folder's."""

from __future__ import annotations

import json


def encode(tok, card: dict, text: str) -> list[int]:
    """The model card's rule, written from scratch: the review is cut, never the prompt."""
    prefix, suffix = card["template"].split("{text}")
    ids = tok(card["template"].format(text=text), add_special_tokens=False).input_ids
    if len(ids) <= card["max_length"]:
        return ids
    head, tail = tok(prefix, add_special_tokens=False).input_ids, tok(suffix, add_special_tokens=False).input_ids
    return head + tok(text, add_special_tokens=False).input_ids[: card["max_length"] - len(head) - len(tail)] + tail


def plain_transformers_p_positive(folder, texts: list[str], device: str = "cpu", dtype=None) -> list[float]:
    """P(second class) of each text, one row per forward (no padding, so no position-id convention to agree on)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    card = json.loads((folder / "sentiment_prompt.json").read_text(encoding="utf-8"))
    tok = AutoTokenizer.from_pretrained(folder)
    classifier = card["model_class"] == "AutoModelForSequenceClassification"
    model_class = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
    model = model_class.from_pretrained(folder, **({"dtype": dtype} if dtype else {})).to(device).eval()
    neg, pos = (ids[0] for ids in card["label_token_ids"])
    out = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([encode(tok, card, text)], device=device)
            logits = model(input_ids=ids).logits
            two = logits[0] if classifier else logits[0, -1, [neg, pos]]
            out.append(two.float().softmax(-1)[1].item())
    return out
