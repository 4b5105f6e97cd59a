"""Base models and finetune modes: Hub id / local folder / `tiny` → (Q)LoRA or full model for a strategy."""

from __future__ import annotations

from pathlib import Path

import torch

from sentiment_ray.config import LoraConfig, ModelConfig
from sentiment_ray.errors import ModelLoadError
from sentiment_ray.models.shapes import is_random_shape, materialize_shape


def resolve_base(name: str, tiny_seed: int = 0) -> str:
    """What `from_pretrained` gets: the built folder of `tiny` or a `random:` shape, a local folder, or a Hub id."""
    if name == "tiny":
        from sentiment_ray.models.tiny import materialize_tiny

        return str(materialize_tiny(seed=tiny_seed))
    if is_random_shape(name):
        return str(materialize_shape(name, seed=tiny_seed))
    return name


def prepare_base(name: str, tiny_seed: int = 0) -> str:
    """Driver side, before any Ray worker starts: build the shared cache entries a base needs, once.

    For `tiny` that is the model folder and the Qwen tokenizer in it; a Hub id or a local folder needs
    nothing. Workers then find complete entries and only read them (`sentiment_ray.cache`). A local folder is
    checked here too (it exists, its config.json runs no code), so that a wrong `--model` fails before Ray starts.
    """
    from sentiment_ray.models.folder_check import check_base_name

    check_base_name(name)
    return resolve_base(name, tiny_seed)


def _hub_hint(name: str, err: Exception) -> ModelLoadError:
    where = "is not a local folder, and " if not Path(name).exists() else "exists but "
    return ModelLoadError(
        f"could not load model '{name}': it {where}loading failed ({type(err).__name__}: {str(err)[:300]}). "
        "If this machine cannot reach the Hugging Face Hub, download the model elsewhere and pass its folder "
        "(--model /path/to/Qwen2.5-1.5B), or use --model tiny for the offline preset."
    )


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)  # never code from a folder
    except (OSError, ValueError) as err:
        raise _hub_hint(path, err) from None
    if tokenizer.pad_token_id is None:  # Qwen2.5 defines one; other bases may not
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def pick_device(use_gpu: bool) -> torch.device:
    if use_gpu:
        if not torch.cuda.is_available():
            raise ModelLoadError("use_gpu is set but torch sees no CUDA device on this worker")
        try:
            import ray.train.torch

            return ray.train.torch.get_device()
        except (ImportError, RuntimeError):  # outside a Ray Train worker
            return torch.device("cuda")
    return torch.device("cpu")


def compute_dtype(precision: str, device: torch.device, inference: bool = False) -> torch.dtype:
    """The one precision rule: bf16 or fp32 where asked; for `auto`, bf16 where the hardware does it natively.

    Training's `auto` takes bf16 only on a GPU; on CPU it stays fp32, the only CPU training precision this
    project has measured. Inference's `auto` also takes bf16 on a CPU with native bf16 matmuls (AVX512-BF16 /
    AMX), where results/bench/predictor_precision.json compares it with fp32.
    """
    if precision in ("bf16", "fp32"):
        return torch.bfloat16 if precision == "bf16" else torch.float32
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if inference and cpu_has_fast_bf16() else torch.float32


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matmul instructions (AVX512-BF16 or AMX)."""
    from sentiment_ray.provenance import cpu_flags

    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def _quantization_config(dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype
    )


def load_base_model(strategy, path: str, *, pad_token_id: int, finetune: str, device, dtype, specialize=True):
    """The strategy's HF model class on `path`, quantised to 4-bit NF4 when finetune is qlora.

    `specialize=False` keeps the stock model (e.g. the label-scoring lm_head over the whole vocabulary).
    """
    import transformers

    model_class = getattr(transformers, strategy.model_class_name)
    kwargs = {"dtype": dtype, "pad_token_id": pad_token_id, "trust_remote_code": False, **strategy.model_kwargs}
    if finetune == "qlora":
        kwargs["quantization_config"] = _quantization_config(dtype)
        kwargs["device_map"] = {"": device}
    try:
        model = model_class.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        raise _hub_hint(path, err) from None
    model.config.pad_token_id = pad_token_id  # the classifier pools at the last non-pad token
    if specialize:
        model = strategy.specialize(model)
    return model if finetune == "qlora" else model.to(device)


def prepare_for_training(model, strategy, model_cfg: ModelConfig, lora: LoraConfig):
    """Wrap in LoRA adapters (after k-bit preparation for qlora); full finetuning trains every weight."""
    if model_cfg.finetune == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=model_cfg.gradient_checkpointing)
        _keep_4bit_training_layout(model)
    elif model_cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if model_cfg.finetune == "full":
        return model
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    if model_cfg.gradient_checkpointing:
        model.enable_input_require_grads()  # frozen embeddings would otherwise cut the graph under checkpointing
    peft_config = PeftLoraConfig(
        task_type=strategy.peft_task_type,
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
    )
    return get_peft_model(model, peft_config)


def _keep_4bit_training_layout(model) -> None:
    """Stop bitsandbytes repacking 4-bit weights for CPU inference during training.

    On AVX512-BF16 CPUs, bitsandbytes 0.50 repacks a Linear4bit's weight on its first eval-mode forward
    and never packs it back; the next training step then fails ("a view of a leaf Variable ... in-place").
    Evaluation between training steps is exactly that sequence, so training keeps the training layout.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def count_parameters(model) -> dict[str, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": sum(p.numel() for p in model.parameters())}
