"""QLoRA on CPU: the base really is 4-bit NF4 (bitsandbytes), and forward + backward train only the adapters."""

import pytest
import torch
import torch.nn.functional as F

from sentiment_ray.config import LoraConfig, ModelConfig, PromptConfig
from sentiment_ray.models.loading import load_base_model, prepare_for_training
from sentiment_ray.models.strategies import make_strategy, pad_batch


@pytest.mark.parametrize("name", ["label_scoring", "classifier"])
def test_qlora_forward_backward_on_cpu(tiny_path, tokenizer, name):
    import bitsandbytes as bnb

    strategy = make_strategy(name, tokenizer, PromptConfig(), 64)
    model = load_base_model(
        strategy,
        tiny_path,
        pad_token_id=tokenizer.pad_token_id,
        finetune="qlora",
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    model = prepare_for_training(model, strategy, ModelConfig(name="tiny", finetune="qlora"), LoraConfig())
    four_bit = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert four_bit and all(m.weight.quant_state.quant_type == "nf4" for m in four_bit)
    assert all(m.weight.quant_state.nested for m in four_bit)  # double quantisation
    batch = pad_batch([strategy.encode("很好用"), strategy.encode("质量太差，退货")], tokenizer.pad_token_id)
    model.eval()  # an evaluation between training steps (as the Trainer does) must not break the next step
    with torch.no_grad():
        strategy.scores(model, batch)
    model.train()
    loss = F.cross_entropy(strategy.scores(model, batch), torch.tensor([1, 0]))
    loss.backward()
    assert torch.isfinite(loss)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in n or "score" in n for n in trained)
    # lora_B starts at zero, so at step 0 the gradient flows into lora_B (lora_A's is zero by construction).
    lora_b = [p for n, p in trained.items() if "lora_B" in n]
    assert lora_b and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_b)
